"""Ranking losses: hand-computed values (rax / TF-Ranking test cases), closed forms, padding, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from labworks.ltr import losses as L
from labworks.ltr import metrics as M

exp, log = math.exp, math.log


def logloss(x: float) -> float:
    return log(1.0 + exp(-x))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + exp(-x))


def t(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


ALL = [
    L.softmax_loss,
    L.listmle_loss,
    L.pairwise_logistic_loss,
    L.pairwise_hinge_loss,
    L.pairwise_soft_zero_one_loss,
    L.pairwise_mse_loss,
    L.sigmoid_cross_entropy_loss,
    L.mse_loss,
    L.approx_ndcg_loss,
    L.approx_mrr_loss,
    L.neural_sort_cross_entropy_loss,
    L.neural_ndcg_loss,
    L.get_loss("lambda_ndcg"),
    L.get_loss("lambda_ndcg2", topn=2),
    L.get_loss("softmax_ndcg", topn=2),
    L.get_loss("lambda_labeldiff"),
]
POINTWISE_LIKE = {"sigmoid_cross_entropy_loss", "mse_loss", "pairwise_mse_loss"}


def name(fn) -> str:  # type: ignore[no-untyped-def]
    return getattr(fn, "__name__", None) or f"{fn.func.__name__}[{fn.keywords}]"


# ----------------------------------------------------------------------------- rax-style values
S1, Y1 = t([0.0, 3.0, 1.0, 2.0]), t([0.0, 0.0, 1.0, 1.0])
Z = exp(0.0) + exp(3.0) + exp(1.0) + exp(2.0)


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (L.softmax_loss, -(0.5 * log(exp(2.0) / Z) + 0.5 * log(exp(1.0) / Z))),
        (L.pairwise_hinge_loss, ((3.0 - 1.0 + 1.0) + (3.0 - 2.0 + 1.0)) / 4),
        (L.pairwise_logistic_loss, (logloss(1.0) + logloss(-2.0) + logloss(-1.0) + logloss(2.0)) / 4),
        (L.pairwise_soft_zero_one_loss, (sigmoid(-1.0) + sigmoid(2.0) + sigmoid(1.0) + sigmoid(-2.0)) / 4),
        (
            L.sigmoid_cross_entropy_loss,
            (-log(1.0 - sigmoid(0.0)) - log(1.0 - sigmoid(3.0)) - log(sigmoid(1.0)) - log(sigmoid(2.0))) / 4,
        ),
        (L.mse_loss, (0.0 + 9.0 + 0.0 + 1.0) / 4),
        (
            L.pairwise_mse_loss,
            (
                ((0.0 - 3.0) - 0.0) ** 2 + ((0.0 - 1.0) - -1.0) ** 2 + ((0.0 - 2.0) - -1.0) ** 2
                + ((3.0 - 0.0) - 0.0) ** 2 + ((3.0 - 1.0) - -1.0) ** 2 + ((3.0 - 2.0) - -1.0) ** 2
                + ((1.0 - 0.0) - 1.0) ** 2 + ((1.0 - 3.0) - 1.0) ** 2 + ((1.0 - 2.0) - 0.0) ** 2
                + ((2.0 - 0.0) - 1.0) ** 2 + ((2.0 - 3.0) - 1.0) ** 2 + ((2.0 - 1.0) - 0.0) ** 2
            ) / 12,
        ),
    ],
    ids=lambda v: name(v) if callable(v) else "",
)  # fmt: skip
def test_rax_values(fn, expected: float) -> None:  # type: ignore[no-untyped-def]
    assert fn(S1, Y1).item() == pytest.approx(expected, abs=1e-12)


def test_rax_weighted_values() -> None:
    s, y, w = t([0.0, 3.0, 2.0, 1.0]), t([0.0, 0.0, 1.0, 1.0]), t([1.0, 1.0, 2.0, 1.0])
    assert L.pairwise_hinge_loss(s, y, weights=w).item() == pytest.approx(7.0 / 4)
    assert L.pairwise_logistic_loss(s, y, weights=w).item() == pytest.approx(5.320569 / 4, abs=1e-6)
    sig = -log(1.0 - sigmoid(0.0)) - log(1.0 - sigmoid(3.0)) - 2.0 * log(sigmoid(2.0)) - log(sigmoid(1.0))
    assert L.sigmoid_cross_entropy_loss(s, y, weights=w).item() == pytest.approx(sig / 4)
    assert L.mse_loss(s, y, weights=w).item() == pytest.approx((9.0 + 2.0 * 1.0) / 4)


def test_rax_batch_values_reduction_none_and_sum() -> None:
    s = t([0.0, 3.0, 1.0, 2.0], [3.0, 1.0, 4.0, 2.0])
    y = t([0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 1.0, 0.0])
    z2 = exp(3.0) + exp(1.0) + exp(4.0) + exp(2.0)
    soft = [
        -(0.5 * log(exp(2.0) / Z) + 0.5 * log(exp(1.0) / Z)),
        -((2.0 / 3.0) * log(exp(3.0) / z2) + (1.0 / 3.0) * log(exp(4.0) / z2)),
    ]
    torch.testing.assert_close(L.softmax_loss(s, y, reduction="none"), t(soft)[0])
    hinge = torch.tensor([5.0 / 4, 2.0 / 5], dtype=torch.float64)
    torch.testing.assert_close(L.pairwise_hinge_loss(s, y, reduction="none"), hinge)
    logi = [
        logloss(1.0) + logloss(-2.0) + logloss(-1.0) + logloss(2.0),
        logloss(2.0) + logloss(-1.0) + logloss(1.0) + logloss(3.0) + logloss(2.0),
    ]
    torch.testing.assert_close(
        L.pairwise_logistic_loss(s, y, reduction="none"), t([logi[0] / 4, logi[1] / 5])[0]
    )
    assert L.pairwise_logistic_loss(s, y, reduction="sum").item() == pytest.approx(logi[0] / 4 + logi[1] / 5)
    assert L.pairwise_logistic_loss(s, y).item() == pytest.approx((logi[0] / 4 + logi[1] / 5) / 2)
    # per-list weights: weighted mean over lists
    w = torch.tensor([1.0, 3.0], dtype=torch.float64)
    assert L.softmax_loss(s, y, weights=w).item() == pytest.approx((soft[0] + 3 * soft[1]) / 4)


def test_rax_extreme_inputs_stay_finite() -> None:
    s = torch.tensor([[0.0, -2.1e26, 3.4e37, 42.0]], requires_grad=True)
    y = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    assert L.pairwise_logistic_loss(s, y).item() == pytest.approx((2.1e26 + 2.1e26) / 4, rel=1e-5)
    assert L.pairwise_hinge_loss(s, y).item() == pytest.approx(
        ((1.0 + 2.1e26) + (1.0 + 2.1e26 + 42.0)) / 4, rel=1e-5
    )
    soft = -(0.5 * (-2.1e26 - 3.4e37) + 0.5 * 0.0)
    assert L.softmax_loss(s, y).item() == pytest.approx(soft, rel=1e-5)
    for fn in ALL:
        (g,) = torch.autograd.grad(fn(s, y), s)
        assert torch.isfinite(g).all(), name(fn)


def test_tfr_approx_ndcg_value() -> None:
    """TF-Ranking losses_test ApproxNDCGLoss (temperature 0.1, SUM reduction, label −1 = padding)."""
    s = torch.tensor([[1.4, -2.8, -0.4], [0.0, 1.8, 10.2], [1.0, 1.2, -3.2]])
    y = torch.tensor([[0.0, 2.0, 1.0], [1.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    ln = math.log
    expected = -((1 / (3 / ln(2) + 1 / ln(3))) * (3 / ln(4) + 1 / ln(3)) + ln(2) * (1 / ln(3)))
    got = L.approx_ndcg_loss(s, y, y >= 0, temperature=0.1, reduction="sum").item()
    assert got == pytest.approx(expected, abs=1e-5)


def _py_neural_sort(v: list[float], tau: float = 1.0) -> list[list[float]]:
    """NeuralSort from its formula, in plain Python: row i = softmax(((n + 1 − 2i)·v − Σ_k |v − v_k|) / τ)."""
    n = len(v)
    b = [sum(abs(x - z) for z in v) for x in v]
    rows = []
    for i in range(1, n + 1):
        logits = [((n + 1 - 2 * i) * x - bx) / tau for x, bx in zip(v, b, strict=True)]
        mx = max(logits)
        e = [exp(x - mx) for x in logits]
        rows.append([x / sum(e) for x in e])
    return rows


def test_tfr_neural_sort_with_mask() -> None:
    """TF-Ranking losses_impl_test: neural_sort with masked items (rows of the real documents)."""
    p = L.neural_sort(
        torch.tensor([[3.0, 1.0, -1.0, 1000.0, 5.0, 2.0]]),
        torch.tensor([[True, True, True, False, False, True]]),
    )
    expected = torch.tensor(
        [
            [0.72140, 0.01321, 0.00000, 0.0, 0.0, 0.26539],
            [0.21183, 0.21183, 0.00053, 0.0, 0.0, 0.57581],
            [0.01204, 0.65723, 0.08895, 0.0, 0.0, 0.24178],
            [0.00004, 0.11849, 0.87557, 0.0, 0.0, 0.0059],
        ]
    )
    torch.testing.assert_close(p[0, :4], expected, atol=1e-4, rtol=0)


def test_tfr_neural_sort_cross_entropy_value() -> None:
    """TF-Ranking: Σ_lists CE(NeuralSort(y), NeuralSort(s)) / n_real; the all-zero list is ignored."""
    s = [[1.4, -2.8, -0.4], [0.0, 1.8, 10.2], [1.0, 1.2, -3.2]]
    y = [[0.0, 2.0, 1.0], [1.0, 0.0, -3.0], [0.0, 0.0, 0.0]]

    def ce(pt: list[list[float]], pp: list[list[float]]) -> float:
        return sum(-a * log(b) for rt, rp in zip(pt, pp, strict=True) for a, b in zip(rt, rp, strict=True))

    expected = ce(_py_neural_sort(y[0]), _py_neural_sort(s[0])) / 3
    expected += ce(_py_neural_sort(y[1][:2]), _py_neural_sort(s[1][:2])) / 2
    st, yt = t(*s), t(*y)
    got = L.neural_sort_cross_entropy_loss(st, yt, yt >= 0, reduction="sum").item()
    assert got == pytest.approx(expected, abs=1e-9)


def test_tfr_approx_mrr_values() -> None:
    s = t([1.4, -2.8, -0.4], [0.0, 1.8, 10.2], [1.0, 1.2, -3.2])
    y = t([0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0])
    expected = -((1 / 2.0) + 1 / 2.0 * (1 / 3.0 + 1 / 1.0))
    assert L.approx_mrr_loss(s, y, temperature=0.1, reduction="sum").item() == pytest.approx(
        expected, abs=1e-5
    )
    w = torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64)
    expected_w = -(2 * 1 / 2.0 + 1 * 1 / 2.0 * (1 / 3.0 + 1 / 1.0))
    assert L.approx_mrr_loss(s, y, weights=w, reduction="sum").item() == pytest.approx(expected_w, abs=1e-5)
    # with a mask and temperature 1: rank of the relevant doc = 1 + σ(s_0 − s_2)
    got = L.approx_mrr_loss(
        t([1.0, 3.0, 2.0]), t([0.0, 0.0, 1.0]), torch.tensor([[True, False, True]]), temperature=1.0
    )
    assert got.item() == pytest.approx(-1.0 / (1.0 + sigmoid(1.0 - 2.0)))


# ----------------------------------------------------------------------------- closed forms
def test_softmax_gradient_closed_form() -> None:
    s = t([0.3, -1.2, 2.0, 0.5]).requires_grad_()
    y = t([1.0, 0.0, 3.0, 0.0])
    (g,) = torch.autograd.grad(L.softmax_loss(s, y), s)
    torch.testing.assert_close(g, torch.softmax(s.detach(), 1) - y / y.sum())


def test_listmle_closed_form_and_topn() -> None:
    s = t([1.0, 2.0, 3.0])
    y = t([2.0, 1.0, 0.0])

    def lse(*v: float) -> float:
        return log(sum(exp(x) for x in v))

    full = (lse(1, 2, 3) - 1) + (lse(2, 3) - 2) + (3 - 3)
    assert L.listmle_loss(s, y).item() == pytest.approx(full)
    assert L.listmle_loss(s, y, topn=1).item() == pytest.approx(lse(1, 2, 3) - 1)
    assert L.listmle_loss(s, y, topn=10).item() == pytest.approx(full)
    # the label order, not input order, defines π
    perm = [2, 0, 1]
    assert L.listmle_loss(s[:, perm], y[:, perm]).item() == pytest.approx(full)


def test_pairwise_logistic_gradient_is_lambda() -> None:
    """d/ds of λ-weighted RankNet: ∂/∂s_i = −Σ_j λ_ij σ(−(s_i − s_j)) / #pairs (the LambdaRank λ)."""
    s = t([0.1, 0.3, 0.2]).requires_grad_()
    y = t([2.0, 1.0, 0.0])
    lw = L.NDCGLambdaWeight()
    (g,) = torch.autograd.grad(L.pairwise_logistic_loss(s, y, lambda_weight=lw), s)
    # current ranks: doc1 → 1, doc2 → 2, doc0 → 3; gains 3, 1, 0; IDCG = 3 + 1/log2(3)
    idcg = 3 + 1 / math.log2(3)
    d = {0: 1 / math.log2(4), 1: 1.0, 2: 1 / math.log2(3)}
    gains = [3.0, 1.0, 0.0]
    lam = {(i, j): abs(gains[i] - gains[j]) * abs(d[i] - d[j]) / idcg for i, j in [(0, 1), (0, 2), (1, 2)]}
    sv = s.detach()[0].tolist()
    grad = [0.0, 0.0, 0.0]
    for (i, j), lij in lam.items():
        rho = sigmoid(-(sv[i] - sv[j]))
        grad[i] -= lij * rho / 3
        grad[j] += lij * rho / 3
    torch.testing.assert_close(g[0], torch.tensor(grad, dtype=torch.float64))


def test_ndcg_lambda_weights_values() -> None:
    y = t([2.0, 1.0, 0.0])
    ranks = torch.tensor([[3, 1, 2]])
    m = torch.ones(1, 3, dtype=torch.bool)
    idcg = 3 + 1 / math.log2(3)
    pw = L.NDCGLambdaWeight().pair_weights(y, ranks, m)[0]
    assert pw[0, 1].item() == pytest.approx(2 * abs(0.5 - 1.0) / idcg)
    assert pw[0, 2].item() == pytest.approx(3 * abs(0.5 - 1 / math.log2(3)) / idcg)
    assert pw[1, 0].item() == pw[0, 1].item()
    # topn=1: only pairs involving the top document keep a weight; IDCG@1 = 3
    pw1 = L.NDCGLambdaWeight(topn=1).pair_weights(y, ranks, m)[0]
    assert pw1[0, 2].item() == 0.0
    assert pw1[0, 1].item() == pytest.approx(2 * 1.0 / 3)
    iw = L.NDCGLambdaWeight(topn=2, gain="linear").individual_weights(y, ranks, m)[0]
    torch.testing.assert_close(iw, t([0.0, 1.0, 0.0])[0] / (2 + 1 / math.log2(3)))
    # V2: |G_i − G_j| · |D(|Δr|) − D(|Δr| + 1)| / IDCG
    v2 = L.NDCGLambdaWeightV2().pair_weights(y, ranks, m)[0]
    assert v2[0, 1].item() == pytest.approx(2 * abs(1 / math.log2(3) - 1 / math.log2(4)) / idcg)
    assert v2[0, 2].item() == pytest.approx(3 * abs(1.0 - 1 / math.log2(3)) / idcg)
    assert v2[0, 0].item() == 0.0
    ld = L.LabelDiffLambdaWeight().pair_weights(y, ranks, m)[0]
    assert ld[0, 2].item() == 2.0


def test_pairwise_topn_truncation_skips_pairs_below_k() -> None:
    s = t([4.0, 3.0, 2.0, 1.0]).requires_grad_()
    y = t([0.0, 1.0, 2.0, 3.0])
    # topn=1: only pairs with doc0 (rank 1): (1,0), (2,0), (3,0)
    expected = (logloss(3.0 - 4.0) + logloss(2.0 - 4.0) + logloss(1.0 - 4.0)) / 3
    assert L.pairwise_logistic_loss(s, y, topn=1).item() == pytest.approx(expected)
    (g,) = torch.autograd.grad(L.pairwise_logistic_loss(s, y, topn=1), s)
    assert g[0, 0] > 0 and (g[0, 1:] < 0).all()
    assert L.pairwise_logistic_loss(s, y, topn=4).item() == pytest.approx(
        L.pairwise_logistic_loss(s, y).item()
    )


def test_softmax_with_ndcg_lambda_weight_topn() -> None:
    s = t([3.0, 2.0, 1.0])
    y = t([0.0, 1.0, 2.0])
    # ranks 1,2,3; topn=2 keeps doc1 only as target: −log softmax(s)_1
    got = L.softmax_loss(s, y, lambda_weight=L.NDCGLambdaWeight(topn=2)).item()
    assert got == pytest.approx(-torch.log_softmax(s, 1)[0, 1].item())
    assert L.get_loss("softmax_ndcg", topn=2)(s, y).item() == pytest.approx(got)
    assert L.softmax_loss(s, y, lambda_weight=L.LabelDiffLambdaWeight()).item() == pytest.approx(
        L.softmax_loss(s, y).item()
    )


def test_approx_losses_tend_to_exact_metrics() -> None:
    g = torch.Generator().manual_seed(0)
    s = torch.randn(6, 8, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 4, (6, 8), generator=g).double()
    y[0] = 0.0
    ndcg = M.ndcg(s, y, empty="skip", reduction="none")
    approx = -L.approx_ndcg_loss(s, y, temperature=1e-4, reduction="none")
    keep = ~ndcg.isnan()
    torch.testing.assert_close(approx[keep], ndcg[keep], atol=1e-6, rtol=0)
    neural = -L.neural_ndcg_loss(s, y, temperature=1e-4, k=3, reduction="none")
    torch.testing.assert_close(neural[keep], M.ndcg(s, y, k=3, reduction="none")[keep], atol=1e-6, rtol=0)
    # one relevant doc: ApproxMRR → −MRR
    y1 = torch.zeros_like(y)
    y1[:, 3] = 1.0
    torch.testing.assert_close(
        -L.approx_mrr_loss(s, y1, temperature=1e-4, reduction="none"),
        M.mrr(s, y1, reduction="none"),
        atol=1e-6,
        rtol=0,
    )


def test_neural_sort_closed_forms() -> None:
    s = t([0.4, 1.1])
    tau = 0.7
    p = L.neural_sort(s, temperature=tau)[0]
    torch.testing.assert_close(p[0], torch.softmax(s[0] / tau, 0))
    torch.testing.assert_close(p[1], torch.softmax(-s[0] / tau, 0))
    # labels [1, 0]: target rows softmax(±y/τ); loss = mean over rows of −Σ_j P[i,j] log P̂[i,j]
    a = sigmoid(1.0 / tau)
    lp1, lp2 = torch.log_softmax(s[0] / tau, 0).tolist(), torch.log_softmax(-s[0] / tau, 0).tolist()
    expected = -(a * lp1[0] + (1 - a) * lp1[1] + (1 - a) * lp2[0] + a * lp2[1]) / 2
    got = L.neural_sort_cross_entropy_loss(s, t([1.0, 0.0]), temperature=tau).item()
    assert got == pytest.approx(expected)
    # hard limit: rows become the sorting permutation; padding ignored
    p0 = L.neural_sort(
        torch.tensor([[3.0, 1.0, 9.0, 2.0]]), torch.tensor([[True, True, False, True]]), temperature=1e-3
    )
    expected = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]])
    torch.testing.assert_close(p0[0], expected, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- invariances and safety
@pytest.mark.parametrize("fn", ALL, ids=name)
def test_padding_invariance(fn) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(1)
    s = torch.randn(3, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (3, 5), generator=g).double()
    y[1] = torch.tensor([0.0, 0.0, 0.0, 0.0, 2.0])
    s1 = s.clone().requires_grad_()
    base = fn(s1, y)
    (g_base,) = torch.autograd.grad(base, s1)
    pad_s = torch.cat([s, torch.full((3, 3), float("nan"), dtype=torch.float64)], 1)
    pad_y = torch.cat([y, torch.full((3, 3), -1.0, dtype=torch.float64)], 1)
    mask = torch.cat([torch.ones(3, 5, dtype=torch.bool), torch.zeros(3, 3, dtype=torch.bool)], 1)
    # padding in the middle too
    perm = torch.tensor([0, 5, 1, 2, 6, 3, 4, 7])
    pad_s, pad_y, mask = pad_s[:, perm], pad_y[:, perm], mask[:, perm]
    s2 = pad_s.clone().requires_grad_()
    out = fn(s2, pad_y, mask)
    (g_pad,) = torch.autograd.grad(out, s2)
    torch.testing.assert_close(out, base)
    torch.testing.assert_close(g_pad[mask].view(3, 5), g_base)
    assert (g_pad[~mask] == 0).all()


@pytest.mark.parametrize("fn", ALL, ids=name)
def test_zero_positive_and_fully_masked_lists(fn) -> None:  # type: ignore[no-untyped-def]
    s = t([0.0, 3.0, 1.0, 2.0], [1.0, -1.0, 0.5, 2.0]).requires_grad_()
    y = t([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0])
    out = fn(s, y)
    (g,) = torch.autograd.grad(out, s)
    assert torch.isfinite(out) and torch.isfinite(g).all()
    if name(fn) not in POINTWISE_LIKE:
        assert out.item() == 0.0 and (g == 0).all()
        assert (fn(s, y, reduction="none") == 0).all()
    m = torch.zeros(2, 4, dtype=torch.bool)
    out = fn(s, t([1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, 0.0]), m)
    (g,) = torch.autograd.grad(out, s)
    assert out.item() == 0.0 and (g == 0).all()


def test_zero_positive_list_does_not_change_mean() -> None:
    s, y = t([0.0, 3.0, 1.0, 2.0]), t([0.0, 0.0, 1.0, 1.0])
    s2 = torch.cat([s, t([5.0, 1.0, 2.0, 3.0])])
    y2 = torch.cat([y, torch.zeros(1, 4, dtype=torch.float64)])
    for fn in (
        L.softmax_loss,
        L.pairwise_logistic_loss,
        L.listmle_loss,
        L.approx_ndcg_loss,
        L.neural_ndcg_loss,
    ):
        assert fn(s2, y2).item() == pytest.approx(fn(s, y).item()), name(fn)


@pytest.mark.parametrize("fn", ALL, ids=name)
def test_permutation_invariance(fn) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(2)
    s = torch.randn(2, 6, generator=g, dtype=torch.float64)
    y = torch.stack([torch.randperm(6, generator=g) for _ in range(2)]).double() * 0.5  # distinct labels
    perm = torch.randperm(6, generator=g)
    torch.testing.assert_close(fn(s[:, perm], y[:, perm]), fn(s, y))


@pytest.mark.parametrize("fn", ALL, ids=name)
def test_gradcheck(fn) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(3)
    s = (
        torch.randperm(5, generator=g).double() + 0.1 * torch.rand(5, generator=g, dtype=torch.float64)
    ).view(1, 5)
    s = torch.cat([s, s.flip(1) * 0.7]).requires_grad_()
    y = t([0.0, 1.0, 2.0, 0.0, 1.0], [0.0, 0.0, 0.3, 1.0, 0.0])
    mask = torch.tensor([[True] * 5, [True, True, True, True, False]])
    assert torch.autograd.gradcheck(lambda x: fn(x, y, mask), (s,), eps=1e-6, atol=1e-5)


# ----------------------------------------------------------------------------- gumbel, registry, errors
def test_gumbel_variants_are_seeded_and_averaged() -> None:
    s = t([0.5, 0.1, -0.3, 0.8]).requires_grad_()
    y = t([1.0, 0.0, 2.0, 0.0])
    for fn in (L.softmax_loss, L.approx_ndcg_loss, L.neural_sort_cross_entropy_loss, L.neural_ndcg_loss):
        a = fn(s, y, gumbel_samples=4, generator=torch.Generator().manual_seed(5))
        b = fn(s, y, gumbel_samples=4, generator=torch.Generator().manual_seed(5))
        c = fn(s, y, gumbel_samples=4, generator=torch.Generator().manual_seed(6))
        assert a.item() == b.item() and a.item() != c.item() and a.item() != fn(s, y).item()
        (grad,) = torch.autograd.grad(a, s)
        assert torch.isfinite(grad).all()
    # the Gumbel softmax loss averages per-sample losses of the perturbed scores
    gen = torch.Generator().manual_seed(7)
    u = torch.rand((3, 4), generator=gen, dtype=torch.float64)
    noise = -torch.log(-torch.log(u))
    manual = torch.stack([L.softmax_loss(s.detach() + noise[i], y) for i in range(3)]).mean()
    got = L.softmax_loss(s.detach(), y, gumbel_samples=3, generator=torch.Generator().manual_seed(7))
    assert got.item() == pytest.approx(manual.item())
    assert L.get_loss("gumbel_approx_ndcg")(
        s.detach(), y, generator=torch.Generator().manual_seed(1)
    ).isfinite()


def test_pair_chunking_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(4)
    s = torch.randn(7, 9, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (7, 9), generator=g).double()
    full = [L.pairwise_logistic_loss(s, y, lambda_weight=L.NDCGLambdaWeight()), L.approx_ndcg_loss(s, y)]
    monkeypatch.setattr(L, "_PAIR_BUDGET", 2 * 81)
    small = [L.pairwise_logistic_loss(s, y, lambda_weight=L.NDCGLambdaWeight()), L.approx_ndcg_loss(s, y)]
    for a, b in zip(full, small, strict=True):
        torch.testing.assert_close(a, b)


def test_get_loss_registry() -> None:
    s, y = S1, Y1
    assert L.get_loss("softmax") is L.softmax_loss
    lam = L.get_loss("lambda_ndcg", topn=2)(s, y).item()
    ref = L.pairwise_logistic_loss(s, y, lambda_weight=L.NDCGLambdaWeight(topn=2), topn=2).item()
    assert lam == pytest.approx(ref)
    assert L.get_loss("approx_ndcg", temperature=1.0)(s, y).item() == pytest.approx(
        L.approx_ndcg_loss(s, y, temperature=1.0).item()
    )
    for key in [
        *L.LOSSES,
        "lambda_ndcg",
        "lambda_ndcg2",
        "lambda_labeldiff",
        "softmax_ndcg",
        "gumbel_neural_ndcg",
    ]:
        assert torch.isfinite(L.get_loss(key)(s, y))
    with pytest.raises(ValueError, match="nope"):
        L.get_loss("nope")


def test_float32_and_1d_inputs() -> None:
    s = torch.tensor([0.0, 3.0, 1.0, 2.0], requires_grad=True)
    out = L.softmax_loss(s, torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert out.dtype == torch.float32
    out.backward()
    assert s.grad is not None and s.grad.shape == (4,)


def test_bad_inputs() -> None:
    s, y = torch.rand(2, 3), torch.rand(2, 3)
    with pytest.raises(ValueError, match="labels shape"):
        L.softmax_loss(s, torch.rand(2, 4))
    with pytest.raises(ValueError, match="mask shape"):
        L.softmax_loss(s, y, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="reduction"):
        L.softmax_loss(s, y, reduction="avg")
    with pytest.raises(ValueError, match="temperature"):
        L.approx_ndcg_loss(s, y, temperature=0.0)
    with pytest.raises(ValueError, match="topn"):
        L.pairwise_logistic_loss(s, y, topn=0)
    with pytest.raises(ValueError, match="topn"):
        L.NDCGLambdaWeight(topn=-1)
    with pytest.raises(ValueError, match="gain"):
        L.NDCGLambdaWeight(gain="cubic")
    with pytest.raises(ValueError, match="weights"):
        L.softmax_loss(s, y, weights=torch.ones(3))


@pytest.mark.parametrize("fn", ALL, ids=name)
def test_empty_batch_and_empty_lists(fn) -> None:  # type: ignore[no-untyped-def]
    for shape in ((0, 4), (2, 0)):
        x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        out = fn(x, torch.zeros(shape, dtype=torch.float64))
        out.backward()
        assert out.item() == 0.0
