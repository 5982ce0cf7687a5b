"""Ranking metrics: exact parity with LightGBM, trec_eval (pytrec_eval), scikit-learn and ranx."""

from __future__ import annotations

import inspect
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from labworks.ltr import metrics as M

TOL = 1e-9
KS = (1, 3, 5, 10)


# ----------------------------------------------------------------------------- fixtures / helpers
def make_lists(
    seed: int = 0, n_queries: int = 60, max_len: int = 15, ties: bool = True, min_len: int = 1
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Ragged lists with graded labels 0–4, some all-zero queries, and (optionally) many tied scores."""
    rng = np.random.default_rng(seed)
    scores, labels = [], []
    for q in range(n_queries):
        n = int(rng.integers(min_len, max_len + 1))
        y = rng.integers(0, 5, n).astype(np.float64) * (rng.random(n) < 0.6)
        if q % 7 == 0:
            y[:] = 0.0  # empty query
        s = np.round(rng.normal(size=n), 0) if ties else rng.normal(size=n) + 1e-6 * np.arange(n)
        scores.append(s)
        labels.append(y)
    return scores, labels


def per_query(fn, scores, labels, **kw) -> np.ndarray:  # type: ignore[no-untyped-def]
    return fn(scores, labels, reduction="none", **kw).numpy()


def docnos(n: int) -> list[str]:
    return [f"d{j:03d}" for j in range(n)]


def trec_eval(scores, labels, measures, doc_ids=None):  # type: ignore[no-untyped-def]
    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels, run = {}, {}
    for q, (s, y) in enumerate(zip(scores, labels, strict=True)):
        ids = doc_ids[q] if doc_ids is not None else docnos(len(s))
        qrels[f"q{q}"] = {d: int(r) for d, r in zip(ids, y, strict=True)}
        run[f"q{q}"] = {d: float(v) for d, v in zip(ids, s, strict=True)}
    res = pytrec_eval.RelevanceEvaluator(qrels, set(measures)).evaluate(run)
    return {m: np.array([res[f"q{q}"][m] for q in range(len(scores))]) for m in res["q0"]}


# ----------------------------------------------------------------------------- trec_eval
@pytest.mark.parametrize("ties", [True, False])
def test_trec_eval_parity(ties: bool) -> None:
    scores, labels = make_lists(1, ties=ties)
    ref = trec_eval(
        scores,
        labels,
        {"ndcg_cut.1,3,5,10", "recip_rank", "map", "map_cut.5,10", "P.1,5,10", "recall.5,10", "ndcg"},
    )
    for k in KS:
        np.testing.assert_allclose(
            per_query(M.ndcg, scores, labels, k=k, preset="trec_eval"), ref[f"ndcg_cut_{k}"], atol=TOL
        )
    np.testing.assert_allclose(per_query(M.ndcg, scores, labels, preset="trec_eval"), ref["ndcg"], atol=TOL)
    np.testing.assert_allclose(
        per_query(M.mrr, scores, labels, preset="trec_eval"), ref["recip_rank"], atol=TOL
    )
    np.testing.assert_allclose(per_query(M.map, scores, labels, preset="trec_eval"), ref["map"], atol=TOL)
    for k in (5, 10):
        np.testing.assert_allclose(
            per_query(M.map, scores, labels, k=k, preset="trec_eval"), ref[f"map_cut_{k}"], atol=TOL
        )
        np.testing.assert_allclose(
            per_query(M.recall, scores, labels, k=k, preset="trec_eval"), ref[f"recall_{k}"], atol=TOL
        )
    for k in (1, 5, 10):
        np.testing.assert_allclose(
            per_query(M.precision, scores, labels, k=k, preset="trec_eval"), ref[f"P_{k}"], atol=TOL
        )


def test_ir_measures_parity() -> None:
    ir_measures = pytest.importorskip("ir_measures")
    from ir_measures import AP, RR, P, R, nDCG

    scores, labels = make_lists(11, ties=True)
    qrels, run = [], []
    for q, (s, y) in enumerate(zip(scores, labels, strict=True)):
        for d, sv, yv in zip(docnos(len(s)), s, y, strict=True):
            qrels.append(ir_measures.Qrel(f"q{q}", d, int(yv)))
            run.append(ir_measures.ScoredDoc(f"q{q}", d, float(sv)))
    measures = {"nDCG@5": nDCG @ 5, "nDCG@10": nDCG @ 10, "RR": RR, "AP": AP, "P@5": P @ 5, "R@5": R @ 5}
    ref = {name: np.zeros(len(scores)) for name in measures}
    for res in ir_measures.iter_calc(list(measures.values()), qrels, run):
        ref[str(res.measure)][int(res.query_id[1:])] = res.value
    ours = {
        "nDCG@5": per_query(M.ndcg, scores, labels, k=5, preset="ir_measures"),
        "nDCG@10": per_query(M.ndcg, scores, labels, k=10, preset="ir_measures"),
        "RR": per_query(M.mrr, scores, labels, preset="ir_measures"),
        "AP": per_query(M.map, scores, labels, preset="ir_measures"),
        "P@5": per_query(M.precision, scores, labels, k=5, preset="ir_measures"),
        "R@5": per_query(M.recall, scores, labels, k=5, preset="ir_measures"),
    }
    for name in measures:
        np.testing.assert_allclose(ours[name], ref[name], atol=TOL, err_msg=name)


def test_trec_eval_ties_with_string_doc_ids() -> None:
    """Ties break by docno descending in *string* order: pass the ids and the order follows them."""
    scores, labels = make_lists(2, ties=True)
    rng = np.random.default_rng(3)
    ids = [[f"doc{int(v)}" for v in rng.permutation(1000)[: len(s)]] for s in scores]
    ref = trec_eval(scores, labels, {"ndcg_cut.1,5", "recip_rank", "map"}, doc_ids=ids)
    for k in (1, 5):
        ours = per_query(M.ndcg, scores, labels, k=k, preset="trec_eval", doc_ids=ids)
        np.testing.assert_allclose(ours, ref[f"ndcg_cut_{k}"], atol=TOL)
    np.testing.assert_allclose(
        per_query(M.mrr, scores, labels, preset="trec_eval", doc_ids=ids), ref["recip_rank"], atol=TOL
    )
    np.testing.assert_allclose(
        per_query(M.map, scores, labels, preset="trec_eval", doc_ids=ids), ref["map"], atol=TOL
    )
    # without the ids (reverse input order) the tied lists differ somewhere
    assert not np.allclose(per_query(M.map, scores, labels, preset="trec_eval"), ref["map"])


def test_ltr_md_tie_example() -> None:
    """ltr.md §3: labels a:1 b:0 c:2, equal scores, NDCG@1 per tool."""
    s, y = torch.ones(1, 3), torch.tensor([[1.0, 0.0, 2.0]])
    assert M.ndcg(s, y, k=1, preset="trec_eval").item() == 1.0
    assert M.ndcg(s, y, k=1, preset="sklearn").item() == 0.5
    assert M.ndcg(s, y, k=1, preset="ranx").item() == 0.5
    assert M.ndcg(s, y, k=1, preset="ranx_burges").item() == pytest.approx(1 / 3, abs=TOL)
    assert M.ndcg(s, y, k=1, gain="linear", ties="pessimistic").item() == 0.0
    assert M.ndcg(s, y, k=1, gain="linear", ties="optimistic").item() == 1.0


# ----------------------------------------------------------------------------- scikit-learn
@pytest.mark.parametrize("ties", [True, False])
def test_sklearn_parity(ties: bool) -> None:
    from sklearn.metrics import ndcg_score

    scores, labels = make_lists(4, ties=ties, min_len=2)
    for k in (*KS, None):
        ref = np.array([ndcg_score(y[None], s[None], k=k) for s, y in zip(scores, labels, strict=True)])
        np.testing.assert_allclose(per_query(M.ndcg, scores, labels, k=k, preset="sklearn"), ref, atol=TOL)
        if not ties:
            ref_it = np.array(
                [
                    ndcg_score(y[None], s[None], k=k, ignore_ties=True)
                    for s, y in zip(scores, labels, strict=True)
                ]
            )
            ours = per_query(M.ndcg, scores, labels, k=k, gain="linear", ties="stable", empty="zero")
            np.testing.assert_allclose(ours, ref_it, atol=TOL)
    # the batch mean over equal-length lists, straight from sklearn
    s2 = np.round(np.random.default_rng(5).normal(size=(40, 12)), 0)
    y2 = np.random.default_rng(6).integers(0, 4, (40, 12)).astype(float)
    y2[3] = 0.0
    assert M.ndcg(s2, y2, k=5, preset="sklearn").item() == pytest.approx(ndcg_score(y2, s2, k=5), abs=TOL)


# ----------------------------------------------------------------------------- ranx
def test_ranx_parity() -> None:
    ranx = pytest.importorskip("ranx")
    scores, labels = make_lists(7, ties=False)
    qrels = ranx.Qrels(
        {f"q{q}": {d: int(r) for d, r in zip(docnos(len(y)), y, strict=True)} for q, y in enumerate(labels)}
    )
    run = ranx.Run(
        {f"q{q}": {d: float(v) for d, v in zip(docnos(len(s)), s, strict=True)} for q, s in enumerate(scores)}
    )
    names = [
        "ndcg@5",
        "ndcg@10",
        "ndcg_burges@5",
        "ndcg_burges@10",
        "mrr",
        "map",
        "map@5",
        "precision@5",
        "recall@5",
    ]
    ref = ranx.evaluate(qrels, run, names, return_mean=False, make_comparable=True)
    # ranx orders queries by id (string order): reorder ours the same way
    idx = np.array(sorted(range(len(scores)), key=lambda q: f"q{q}"))
    ours = {
        "ndcg@5": per_query(M.ndcg, scores, labels, k=5, preset="ranx"),
        "ndcg@10": per_query(M.ndcg, scores, labels, k=10, preset="ranx"),
        "ndcg_burges@5": per_query(M.ndcg, scores, labels, k=5, preset="ranx_burges"),
        "ndcg_burges@10": per_query(M.ndcg, scores, labels, k=10, preset="ranx_burges"),
        "mrr": per_query(M.mrr, scores, labels, preset="ranx"),
        "map": per_query(M.map, scores, labels, preset="ranx"),
        "map@5": per_query(M.map, scores, labels, k=5, preset="ranx"),
        "precision@5": per_query(M.precision, scores, labels, k=5, preset="ranx"),
        "recall@5": per_query(M.recall, scores, labels, k=5, preset="ranx"),
    }
    for name in names:
        np.testing.assert_allclose(ours[name][idx], np.asarray(ref[name]), atol=TOL, err_msg=name)


# ----------------------------------------------------------------------------- LightGBM
def lightgbm_eval(scores: list[np.ndarray], labels: list[np.ndarray]) -> dict[str, float]:
    """LightGBM's own NDCG eval on given predictions: a model that outputs 0 plus valid init_score."""
    lgb = pytest.importorskip("lightgbm")
    groups = [len(s) for s in scores]
    y = np.concatenate(labels).astype(int)
    x = np.random.default_rng(0).normal(size=(len(y), 2))
    params = {"verbose": -1, "min_data_in_bin": 1, "num_threads": 1}
    train = lgb.Dataset(x, label=y, group=groups, params=params)
    valid = lgb.Dataset(x, label=y, group=groups, init_score=np.concatenate(scores), reference=train)
    res: dict = {}
    lgb.train(
        {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": list(KS),
            "min_data_in_leaf": 10**6,
            "learning_rate": 1e-300,
            **params,
        },
        train,
        num_boost_round=1,
        valid_sets=[valid],
        valid_names=["v"],
        callbacks=[lgb.record_evaluation(res)],
    )
    return {name: vals[-1] for name, vals in res["v"].items()}


def test_lightgbm_parity_ties_and_empty_queries() -> None:
    scores, labels = make_lists(8, ties=True)
    ref = lightgbm_eval(scores, labels)
    for k in KS:
        assert M.ndcg(scores, labels, k=k, preset="lightgbm").item() == pytest.approx(
            ref[f"ndcg@{k}"], abs=TOL
        )


def _read_split(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_svmlight_file

    x, y = load_svmlight_file(str(folder / name), n_features=300)
    groups = np.loadtxt(folder / f"{name}.query", dtype=np.int64)
    return x, y, groups


def test_six_tool_table_on_shared_data(shared_data: Path) -> None:
    """ltr.md §4: LGBMRanker on rank.train → rank.test predictions; every tool agrees under its preset."""
    lgb = pytest.importorskip("lightgbm")
    from sklearn.metrics import ndcg_score

    folder = shared_data / "ltr" / "lightgbm-lambdarank"
    if not (folder / "rank.train").is_file():
        pytest.skip(f"LightGBM lambdarank example data not found in {folder}")
    xtr, ytr, gtr = _read_split(folder, "rank.train")
    xte, yte, gte = _read_split(folder, "rank.test")
    model = lgb.LGBMRanker(
        n_estimators=100, learning_rate=0.1, num_leaves=31, min_child_samples=50, verbose=-1, n_jobs=1
    )
    new_api = "eval_X" in inspect.signature(model.fit).parameters  # lightgbm >= 4.7 deprecates eval_set
    evals = {"eval_X": (xte,), "eval_y": (yte,)} if new_api else {"eval_set": [(xte, yte)]}
    model.fit(xtr, ytr, group=gtr, eval_group=[gte], eval_at=list(KS), **evals)
    pred = model.predict(xte)
    off = np.concatenate([[0], np.cumsum(gte)])
    scores = [pred[a:b] for a, b in itertools.pairwise(off)]
    labels = [yte[a:b] for a, b in itertools.pairwise(off)]
    lgb_eval = {k: model.evals_result_["valid_0"][f"ndcg@{k}"][-1] for k in KS}
    trec = trec_eval(scores, labels, {"ndcg_cut.1,3,5,10"})
    exp_table = {1: 0.6230, 5: 0.6933, 10: 0.7526}
    lin_table = {1: 0.6767, 5: 0.7326, 10: 0.7822}
    for k in KS:
        ours_exp = M.ndcg(scores, labels, k=k, preset="lightgbm").item()
        assert ours_exp == pytest.approx(lgb_eval[k], abs=TOL)
        ours_lin = M.ndcg(scores, labels, k=k, preset="trec_eval").item()
        assert ours_lin == pytest.approx(trec[f"ndcg_cut_{k}"].mean(), abs=TOL)
        sk = np.mean([ndcg_score(y[None], s[None], k=k) for s, y in zip(scores, labels, strict=True)])
        assert M.ndcg(scores, labels, k=k, preset="sklearn").item() == pytest.approx(sk, abs=TOL)
        if k in exp_table:  # the table itself: allow a LightGBM-build difference in the last digits
            assert ours_exp == pytest.approx(exp_table[k], abs=5e-3)
            assert ours_lin == pytest.approx(lin_table[k], abs=5e-3)


# ----------------------------------------------------------------------------- layout and conventions
ALL_METRICS = [M.ndcg, M.dcg, M.mrr, M.map, M.precision, M.recall, M.arp, M.opa]


@pytest.mark.parametrize("fn", ALL_METRICS, ids=lambda f: f.__name__)
def test_padded_equals_ragged(fn) -> None:  # type: ignore[no-untyped-def]
    scores, labels = make_lists(9, n_queries=25, ties=True)
    n = max(len(s) for s in scores) + 3
    s_pad = torch.full((len(scores), n), float("nan"), dtype=torch.float32)
    y_pad = torch.full((len(scores), n), -1.0)
    mask = torch.zeros((len(scores), n), dtype=torch.bool)
    for i, (s, y) in enumerate(zip(scores, labels, strict=True)):
        s_pad[i, : len(s)] = torch.from_numpy(s)
        y_pad[i, : len(y)] = torch.from_numpy(y)
        mask[i, : len(s)] = True
    kw = {} if fn in (M.arp, M.opa) else {"k": 5}
    for empty in ("zero", "one", "skip"):
        ragged = fn(scores, labels, empty=empty, reduction="none", **kw)
        padded = fn(s_pad, y_pad, mask, empty=empty, reduction="none", **kw)
        torch.testing.assert_close(padded, ragged, atol=TOL, rtol=0, equal_nan=True)
        assert fn(s_pad, y_pad, mask, empty=empty, **kw).item() == pytest.approx(
            fn(scores, labels, empty=empty, **kw).item()
        )


def test_mask_in_the_middle_and_dtypes() -> None:
    s = torch.tensor([[0.5, 9.0, 0.1, 0.3]], dtype=torch.float32)
    y = torch.tensor([[1.0, 4.0, 0.0, 2.0]])
    m = torch.tensor([[True, False, True, True]])
    assert M.ndcg(s, y, m).item() == pytest.approx(
        M.ndcg([[0.5, 0.1, 0.3]], [[1.0, 0.0, 2.0]]).item(), abs=TOL
    )
    assert M.ndcg(np.array([[0.5, 0.1, 0.3]]), np.array([[1, 0, 2]])).dtype == torch.float64


def test_empty_policies() -> None:
    s = torch.tensor([[0.3, 0.2, 0.1], [0.1, 0.2, 0.3]])
    y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    for fn in (M.ndcg, M.mrr, M.map, M.recall):
        assert fn(s, y, empty="one").item() == 1.0
        assert fn(s, y, empty="zero").item() == 0.5
        assert fn(s, y, empty="skip").item() == 1.0
        v = fn(s, y, empty="skip", reduction="none")
        assert v[0].item() == 1.0 and torch.isnan(v[1])
    assert torch.isnan(M.ndcg(s[1:], y[1:], empty="skip"))
    assert M.ndcg(s, y, preset="lightgbm").item() == 1.0
    assert M.ndcg(s, y, preset="paper", reduction="none")[1].isnan()


def test_hand_computed_values() -> None:
    s = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5]])
    y = torch.tensor([[0.0, 2.0, 0.0, 1.0, 0.0]])
    d = 1 / np.log2(np.arange(2, 7))
    assert M.dcg(s, y).item() == pytest.approx(3 * d[1] + 1 * d[3], abs=TOL)
    assert M.dcg(s, y, gain="linear", k=2).item() == pytest.approx(2 * d[1], abs=TOL)
    assert M.ndcg(s, y, k=3).item() == pytest.approx(3 * d[1] / (3 + 1 * d[1]), abs=TOL)
    assert M.mrr(s, y).item() == 0.5
    assert M.mrr(s, y, k=1).item() == 0.0
    assert M.mrr(s, y, relevance_threshold=1.0).item() == 0.5
    assert M.map(s, y).item() == pytest.approx((1 / 2 + 2 / 4) / 2, abs=TOL)
    assert M.precision(s, y, k=2).item() == 0.5
    assert M.precision(s, y).item() == pytest.approx(2 / 5)
    assert M.recall(s, y, k=2).item() == 0.5
    assert M.arp(s, y).item() == pytest.approx((2 * 2 + 4 * 1) / 3, abs=TOL)
    # pairs with y_i > y_j: (1,0),(1,2),(1,4),(1,3),(3,0),(3,2),(3,4) → correct: (1,2),(1,3),(1,4),(3,4)
    assert M.opa(s, y).item() == pytest.approx(4 / 7, abs=TOL)
    assert M.mean_average_precision is M.map


def test_average_ties_and_random_ties() -> None:
    s = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    y = torch.tensor([[2.0, 0.0, 1.0, 0.0]])
    d = 1 / np.log2(np.arange(2, 6))
    expect = 1.0 * (d[0] + d[1]) + 0.5 * (d[2] + d[3])
    assert M.dcg(s, y, gain="linear", ties="average").item() == pytest.approx(expect, abs=TOL)
    # group straddling the cutoff k=1: mean gain 1.0 × first discount
    assert M.dcg(s, y, gain="linear", ties="average", k=1).item() == pytest.approx(1.0, abs=TOL)
    assert M.precision(s, y, ties="average", k=1).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="average"):
        M.mrr(s, y, ties="average")
    # random ties: seeded and reproducible, and averaging many draws approaches "average"
    g = torch.Generator().manual_seed(1)
    r1 = M.ndcg(s, y, ties="random", generator=g).item()
    assert r1 == M.ndcg(s, y, ties="random", generator=torch.Generator().manual_seed(1)).item()
    big_s, big_y = s.expand(4000, 4), y.expand(4000, 4)
    rnd = M.dcg(big_s, big_y, gain="linear", ties="random").item()
    assert rnd == pytest.approx(expect, abs=0.02)


def test_alpha_ndcg() -> None:
    # 3 docs, 2 subtopics: d0 {t0}, d1 {t0}, d2 {t1}; ranking d0, d1, d2
    sub = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    s = torch.tensor([[3.0, 2.0, 1.0]])
    d = 1 / np.log2(np.arange(2, 5))
    dcg_ = 1 * d[0] + 0.5 * d[1] + 1 * d[2]
    ideal = 1 * d[0] + 1 * d[1] + 0.5 * d[2]  # greedy: d0, d2, d1
    assert M.alpha_dcg(s, sub).item() == pytest.approx(dcg_, abs=TOL)
    assert M.alpha_ndcg(s, sub).item() == pytest.approx(dcg_ / ideal, abs=TOL)
    assert M.alpha_ndcg(s, sub, k=1).item() == pytest.approx(1.0, abs=TOL)
    assert M.alpha_ndcg(torch.tensor([[1.0, 2.0, 3.0]]), sub, alpha=0.0).item() == pytest.approx(1.0, abs=TOL)
    # padding does not leak; ragged input works
    s_pad = torch.tensor([[3.0, 2.0, float("nan"), 1.0]])
    sub_pad = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [9.0, 9.0], [0.0, 1.0]]])
    m = torch.tensor([[True, True, False, True]])
    assert M.alpha_ndcg(s_pad, sub_pad, m).item() == pytest.approx(dcg_ / ideal, abs=TOL)
    assert M.alpha_ndcg([np.array([3.0, 2.0, 1.0])], [sub[0].numpy()]).item() == pytest.approx(
        dcg_ / ideal, abs=TOL
    )
    assert M.alpha_ndcg(s, torch.zeros(1, 3, 2), empty="one").item() == 1.0


def test_presets_and_overrides() -> None:
    s, y = torch.ones(1, 3), torch.tensor([[1.0, 0.0, 2.0]])
    assert M.ndcg(s, y, k=1, preset="trec_eval", gain="exp").item() == 1.0
    assert M.ndcg(s, y, k=1, preset="lightgbm", ties="trec_eval").item() == 1.0
    assert set(M.PRESETS) >= {"lightgbm", "trec_eval", "sklearn", "tfr", "ranx", "ranx_burges", "paper"}
    assert M.PRESETS["lightgbm"] == {"gain": "exp", "ties": "stable", "empty": "one"}


def test_neg_inf_scores_rank_above_padding() -> None:
    s = torch.tensor([[float("-inf"), 0.0, 5.0]])
    y = torch.tensor([[3.0, 0.0, 0.0]])
    m = torch.tensor([[True, False, True]])
    assert M.mrr(s, y, m).item() == 0.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k must be"),
        ({"k": -2}, "k must be"),
        ({"preset": "nope"}, "nope"),
        ({"gain": "cubic"}, "cubic"),
        ({"ties": "coin"}, "coin"),
        ({"empty": "maybe"}, "maybe"),
        ({"reduction": "sum_of_squares"}, "sum_of_squares"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        M.ndcg(torch.rand(2, 3), torch.ones(2, 3), **kwargs)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="shape"):
        M.ndcg(torch.rand(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match="mask shape"):
        M.ndcg(torch.rand(2, 3), torch.ones(2, 3), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="NaN"):
        M.ndcg(torch.tensor([[0.1, float("nan")]]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="-1"):
        M.mrr(torch.rand(1, 2), torch.tensor([[1.0, -1.0]]))
    # the same values under the mask are fine
    m = torch.tensor([[True, False]])
    assert M.ndcg(torch.tensor([[0.1, float("nan")]]), torch.tensor([[1.0, -1.0]]), m).item() == 1.0


def test_vectorised_scale() -> None:
    """10k queries × 100 docs run in well under a second per metric (no loop over queries)."""
    import time

    g = torch.Generator().manual_seed(0)
    s = torch.rand(10_000, 100, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (10_000, 100), generator=g).double()
    t0 = time.perf_counter()
    for fn in (M.ndcg, M.mrr, M.map):
        fn(s, y, k=10)
    assert time.perf_counter() - t0 < 5.0


# ----------------------------------------------------------------------------- shared sort helper
@pytest.mark.parametrize("ties", ["stable", "trec_eval", "pessimistic", "optimistic", "random"])
def test_topk_order_equals_full_sort_prefix(ties: str) -> None:
    from labworks.ltr._lists import sort_order

    g = torch.Generator().manual_seed(0)
    s = torch.randint(0, 6, (300, 12), generator=g).double()  # many ties, also at the k boundary
    s[::3] = torch.randn(100, 12, generator=g, dtype=torch.float64)  # some rows without ties
    y = torch.randint(0, 3, (300, 12), generator=g).double()
    m = torch.rand(300, 12, generator=g) < 0.8
    for k in (1, 3, 5, 11):
        full = sort_order(s, m, ties=ties, labels=y, generator=torch.Generator().manual_seed(1))
        part = sort_order(s, m, ties=ties, labels=y, generator=torch.Generator().manual_seed(1), k=k)
        # positions holding real documents must agree; padded slots may differ among themselves
        real = m.gather(1, full[:, :k])
        assert torch.equal(part[real], full[:, :k][real])
        assert torch.equal(m.gather(1, part), real)


def test_numeric_doc_ids_and_neg_inf_with_ties() -> None:
    s = torch.tensor([[1.0, 1.0, 1.0, float("-inf"), float("-inf")]])
    y = torch.tensor([[0.0, 2.0, 1.0, 0.0, 3.0]])
    m = torch.tensor([[True, True, True, True, True]])
    ids = torch.tensor([[5, 9, 7, 1, 2]])  # trec_eval: larger id first among ties → 9, 7, 5, then 2, 1
    assert M.mrr(s, y, m, preset="trec_eval", doc_ids=ids).item() == 1.0
    assert M.ndcg(s, y, m, k=2, gain="linear", preset="trec_eval", doc_ids=ids).item() == pytest.approx(
        (2 + 1 / np.log2(3)) / (3 + 2 / np.log2(3)), abs=TOL
    )
    # real −inf docs rank above padding, and the −inf tie follows the policy
    m2 = torch.tensor([[True, True, True, True, True, False]])
    s2 = torch.cat([s, torch.tensor([[float("nan")]])], 1)
    y2 = torch.cat([y, torch.tensor([[-1.0]])], 1)
    r = M.map(s2, y2, m2, preset="trec_eval", doc_ids=torch.cat([ids, torch.tensor([[0]])], 1))
    # ranking: 9(2), 7(1), 5(0), 2(3), 1(0) → AP = (1/1 + 2/2 + 3/4) / 3
    assert r.item() == pytest.approx((1 + 1 + 3 / 4) / 3, abs=TOL)


def test_degenerate_batches() -> None:
    assert torch.isnan(M.ndcg(torch.zeros(0, 5), torch.zeros(0, 5)))  # no query: mean is NaN
    assert M.ndcg(torch.zeros(0, 5), torch.zeros(0, 5), reduction="none").shape == (0,)
    assert M.opa(torch.zeros(0, 3), torch.zeros(0, 3), reduction="none").shape == (0,)
    v = M.ndcg([np.array([0.5]), np.array([])], [np.array([1.0]), np.array([])], k=3, reduction="none")
    assert v.tolist() == [1.0, 0.0]  # a query without documents is an empty query
    assert M.precision([[0.1, 0.2]], [[1, 0]], k=100).item() == pytest.approx(0.01)  # P@k divides by k
