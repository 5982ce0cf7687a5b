"""Inference throughput in km² per second at 50 cm (streaming tiled prediction over a GeoTIFF, with
overlap and blending) and the post-processing share, for the small U-Net and a ResNet34 U-Net.

    python benchmarks/openbuildings/bench_inference.py [--km2 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from labworks.openbuildings.config import DetectConfig
from labworks.openbuildings.inference import footprints_from_probability, predict_raster
from labworks.openbuildings.model import UNet
from labworks.openbuildings.synthetic import SceneConfig, make_scene, write_scene


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--km2", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--encoders", default="small,resnet34")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    side = round((args.km2 * 1e6) ** 0.5 / 0.5)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        scene = make_scene(SceneConfig(size=side, terrain="urban", seed=0))
        tif, _ = write_scene(scene, Path(tmp), "bench")
        km2 = (side * 0.5) ** 2 / 1e6
        print(
            f"scene {side}x{side} px = {km2:.2f} km² at 0.5 m, tile {args.tile}/overlap {args.overlap}, {device}"
        )
        for enc in args.encoders.split(","):
            model = UNet(enc).eval()
            for dtype in ["float32"] + (["bfloat16"] if device == "cuda" else []):
                cfg = DetectConfig(
                    tile=args.tile, overlap=args.overlap, device=device, dtype=dtype, batch_size=4
                )
                predict_raster(model, tif, Path(tmp) / "warm.tif", cfg=cfg)  # warm-up
                t0 = time.perf_counter()
                prob = predict_raster(model, tif, Path(tmp) / f"{enc}.tif", cfg=cfg)
                t1 = time.perf_counter()
                fp = footprints_from_probability(prob, cfg=cfg)
                t2 = time.perf_counter()
                print(
                    f"{enc:9s} {dtype:8s}: predict {t1 - t0:7.2f} s = {km2 / (t1 - t0):.4f} km²/s "
                    f"({side * side / (t1 - t0) / 1e6:.2f} Mpx/s); post-process {t2 - t1:.2f} s "
                    f"({len(fp)} buildings, {100 * (t2 - t1) / (t2 - t0):.1f}% of total)"
                )


if __name__ == "__main__":
    main()
