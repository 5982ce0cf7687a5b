"""Training throughput on CPU (or GPU): documents per second of forward + backward + step.

1. DASALC (136 features, list size 200, batch 64 lists, softmax loss) — the issue's CPU figure.
2. Packed vs padded layout for a per-document DNN on skewed (MSLR-like) list lengths: the packed
   layout scores only real documents; padding scores up to the longest list of every batch.

    python benchmarks/ltr/bench_training.py [--steps N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from labworks.core import get_device, seed_everything
from labworks.ltr.losses import softmax_loss
from labworks.ltr.models import DASALC, DNNScorer
from labworks.ltr.synthetic import make_mslr_like


def _time_steps(step, n: int) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = get_device(args.device)
    seed_everything(0)

    # 1. DASALC at list size 200
    ds = make_mslr_like(400, min_list_size=200, max_list_size=200, seed=0)
    model = DASALC(136, hidden=512, n_attention_layers=4, n_heads=2, head_size=100).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = ds.padded(np.arange(64)).to(device)

    def dasalc_step() -> None:
        loss = softmax_loss(model(batch.features, batch.mask), batch.labels, batch.mask)
        opt.zero_grad()
        loss.backward()
        opt.step()

    sec = _time_steps(dasalc_step, args.steps)
    print(
        f"DASALC (hidden 512, 4x2-head attention, list 200, batch 64) on {device}: {64 * 200 / sec:,.0f} docs/s ({sec * 1e3:.0f} ms/step)"
    )

    # 2. packed vs padded on skewed lengths
    ds = make_mslr_like(2000, max_list_size=1000, seed=1)
    dnn = DNNScorer(136, (512, 256, 128)).to(device)
    opt = torch.optim.Adam(dnn.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    batches = [rng.choice(ds.n_queries, 32, replace=False) for _ in range(args.steps + 1)]
    it = {"packed": iter(batches), "padded": iter(batches)}
    real_docs = np.mean([ds.list_sizes[q].sum() for q in batches])

    def packed_step() -> None:
        pb = ds.packed(next(it["packed"])).to(device)
        scores, mask = pb.pad(dnn.score_docs(pb.features))
        labels, _ = pb.pad(pb.labels)
        loss = softmax_loss(scores, labels, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def padded_step() -> None:
        b = ds.padded(next(it["padded"])).to(device)
        x = torch.log1p(b.features.abs()) * b.features.sign()
        s = dnn.head(dnn.mlp(dnn.norm(x.flatten(0, 1)))).view(b.mask.shape)  # scores every slot, padding too
        loss = softmax_loss(s, b.labels, b.mask)
        opt.zero_grad()
        loss.backward()
        opt.step()

    t_packed = _time_steps(packed_step, args.steps)
    t_padded = _time_steps(padded_step, args.steps)
    print(f"DNN on skewed lists (32 queries/batch, {real_docs:,.0f} real docs/batch):")
    print(
        f"  packed {real_docs / t_packed:,.0f} docs/s, padded {real_docs / t_padded:,.0f} docs/s -> packed is {t_padded / t_packed:.2f}x faster"
    )


if __name__ == "__main__":
    main()
