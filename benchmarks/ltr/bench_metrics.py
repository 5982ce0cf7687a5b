"""Metric throughput: labworks.ltr.metrics vs ranx (numba) and pytrec_eval (trec_eval in C).

Synthetic queries × docs (continuous scores, so no tie conventions interfere), graded labels 0–4,
some all-zero queries. Each tool is timed on data already in its own format (tensors for us,
``Qrels``/``Run`` for ranx, dicts + a built evaluator for pytrec_eval); a ranx ``Run`` is rebuilt
(untimed) for every repetition because ranx sorts a run on its first evaluation and caches it. Values are
asserted equal (1e-9) under the matching preset before timing is reported.

Threads default to 1 for torch and numba alike: on a shared, busy CPU multi-threaded elementwise
kernels spend most of their time in barriers, which says nothing about the libraries.

Usage: ``python benchmarks/ltr/bench_metrics.py --queries 10000 --docs 100 [--repeat 3] [--threads 1]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from labworks.ltr import metrics as M


def best_of(fn: Callable[[], object], repeat: int, setup: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def time_ranx(ranx: object, qrels: object, run_d: dict, metric: str, repeat: int) -> tuple[float, np.ndarray]:
    """Best time of ``ranx.evaluate`` on a freshly built (unsorted) run, and its per-query values."""
    times, out = [], None
    for _ in range(repeat):
        run = ranx.Run(run_d)  # type: ignore[attr-defined]  # built outside the timer
        t0 = time.perf_counter()
        out = ranx.evaluate(qrels, run, metric, return_mean=False)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - t0)
    return min(times), np.asarray(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch and numba threads (pytrec_eval is single-threaded)"
    )
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    q, n = args.queries, args.docs
    scores = rng.normal(size=(q, n))
    labels = (rng.integers(0, 5, (q, n)) * (rng.random((q, n)) < 0.3)).astype(np.float64)
    labels[:: max(q // 50, 1)] = 0.0  # ~2% empty queries
    s_t, y_t = torch.from_numpy(scores), torch.from_numpy(labels)
    qids = [f"q{i:07d}" for i in range(q)]  # insertion order = sorted order (ranx)
    docs = [f"d{j:04d}" for j in range(n)]
    qrels_d = {
        qid: {d: int(r) for d, r in zip(docs, row, strict=True)}
        for qid, row in zip(qids, labels, strict=True)
    }
    run_d = {
        qid: {d: float(v) for d, v in zip(docs, row, strict=True)}
        for qid, row in zip(qids, scores, strict=True)
    }
    torch.set_num_threads(args.threads)

    # name: (ours, ranx metric, pytrec_eval measure, pytrec_eval key)
    cases = {
        "ndcg@10": (
            lambda p: M.ndcg(s_t, y_t, k=10, preset=p, reduction="none"),
            "ndcg@10",
            "ndcg_cut.10",
            "ndcg_cut_10",
        ),
        "mrr": (lambda p: M.mrr(s_t, y_t, preset=p, reduction="none"), "mrr", "recip_rank", "recip_rank"),
        "map": (lambda p: M.map(s_t, y_t, preset=p, reduction="none"), "map", "map", "map"),
    }
    print(f"{q} queries × {n} docs, torch threads={torch.get_num_threads()}, best of {args.repeat}")
    print(
        f"{'metric':<9} {'ours (s)':>9} {'ranx (s)':>9} {'trec (s)':>9} {'ranx/ours':>10} {'trec/ours':>10}"
    )

    try:
        import numba
        import ranx

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        ranx = None
    try:
        import pytrec_eval
    except ImportError:
        pytrec_eval = None

    if ranx is not None:
        qrels = ranx.Qrels(qrels_d)
        small = {k: run_d[k] for k in qids[:5]}
        warm = ranx.Qrels({k: qrels_d[k] for k in small})
        ranx.evaluate(warm, ranx.Run(small), ["ndcg@10", "mrr", "map"])  # numba warm-up
    for label, (ours, ranx_name, trec_measure, trec_key) in cases.items():
        ours(None)  # warm-up
        t_ours = best_of(lambda ours=ours: ours("trec_eval"), args.repeat)
        v_trec = ours("trec_eval").numpy()
        t_ranx = t_trec = float("nan")
        if ranx is not None:
            t_ranx, ref = time_ranx(ranx, qrels, run_d, ranx_name, args.repeat)
            order = np.argsort(np.array(qids))  # ranx sorts queries by id
            np.testing.assert_allclose(ours("ranx").numpy()[order], ref, atol=1e-9, err_msg=label)
        if pytrec_eval is not None:
            evaluator = pytrec_eval.RelevanceEvaluator(qrels_d, {trec_measure})
            out: dict = {}
            t_trec = best_of(
                lambda evaluator=evaluator, out=out: out.update(r=evaluator.evaluate(run_d)), args.repeat
            )
            ref = np.array([out["r"][qid][trec_key] for qid in qids])
            np.testing.assert_allclose(v_trec, ref, atol=1e-9, err_msg=label)
        print(
            f"{label:<9} {t_ours:9.4f} {t_ranx:9.4f} {t_trec:9.4f} {t_ranx / t_ours:10.2f} {t_trec / t_ours:10.2f}"
        )
    print("values equal to 1e-9 under the matching presets (ranx: 'ranx', pytrec_eval: 'trec_eval')")


if __name__ == "__main__":
    main()
