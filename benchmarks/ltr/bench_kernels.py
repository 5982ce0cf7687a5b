"""Triton kernels vs their PyTorch references on packed lists with MSLR-like lengths (CUDA only).

    python benchmarks/ltr/bench_kernels.py [--queries 2000]

Prints the time of each op per call and the speed-up of the Triton kernel over the reference
(which pads to the longest list and, for the lambda loss, builds the n x n pair tensors).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from labworks.ltr.ops import packed_ndcg, pairwise_lambda_loss
from labworks.ltr.synthetic import make_mslr_like


def _time(fn, reps: int = 20) -> float:
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(
            "no CUDA device: the Triton kernels only run on GPUs (CPU uses the references); nothing to compare"
        )
        sys.exit(0)
    ds = make_mslr_like(args.queries, max_list_size=1000, seed=0)
    scores = torch.randn(ds.n_docs, device="cuda")
    labels = torch.from_numpy(ds.labels).cuda()
    offsets = torch.from_numpy(ds.offsets).cuda()
    print(f"{ds.n_queries} lists, {ds.n_docs} docs, longest {ds.list_sizes.max()}")
    for name, op in (("packed_ndcg@10", packed_ndcg), ("pairwise_lambda_loss@10", pairwise_lambda_loss)):
        ref = _time(lambda op=op: op(scores, labels, offsets, 10, backend="reference"))
        ker = _time(lambda op=op: op(scores, labels, offsets, 10, backend="triton"))
        torch.testing.assert_close(
            op(scores, labels, offsets, 10, backend="triton"),
            op(scores, labels, offsets, 10, backend="reference"),
            atol=1e-4,
            rtol=1e-3,
        )
        print(
            f"{name:26} reference {ref * 1e3:8.2f} ms  triton {ker * 1e3:8.2f} ms  speed-up {ref / ker:6.1f}x"
        )


if __name__ == "__main__":
    main()
