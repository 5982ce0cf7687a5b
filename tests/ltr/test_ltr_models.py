from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from labworks.ltr.models import DASALC, DNNScorer, MaskedBatchNorm, RankingGAM, log1p_with_sign
from labworks.ltr.synthetic import make_mslr_like


@pytest.fixture
def batch():
    ds = make_mslr_like(16, max_list_size=30, n_context=3, seed=2)
    return ds.padded(np.arange(8))


def _models() -> list[torch.nn.Module]:
    return [
        DNNScorer(136, (32, 16)),
        DASALC(136, hidden=32, n_dnn_layers=2, n_attention_layers=2, n_heads=2, head_size=8),
        DASALC(136, hidden=16, n_dnn_layers=1, n_attention_layers=1, head_size=8, list_norm=True),
        RankingGAM(136, n_context=3, hidden=(8,)),
    ]


def test_log1p_with_sign_closed_form() -> None:
    x = torch.tensor([-(np.e**40), -(np.e - 1), 0.0, np.e - 1, 1e30])
    torch.testing.assert_close(log1p_with_sign(x), torch.tensor([-30.0, -1.0, 0.0, 1.0, 30.0]))


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_padding_never_leaks(model: torch.nn.Module, batch) -> None:
    model.eval()
    s = model(batch.features, batch.mask, batch.context)
    assert s.shape == batch.mask.shape and torch.all(s[~batch.mask] == 0)
    extra = 7
    feats = torch.cat([batch.features, 1e6 * torch.randn(8, extra, 136)], 1)
    mask = torch.cat([batch.mask, torch.zeros(8, extra, dtype=torch.bool)], 1)
    garbage = feats.clone()
    garbage[~mask] = -1e9  # whatever sits in the padding
    s2 = model(garbage, mask, batch.context)
    torch.testing.assert_close(s2[:, : s.shape[1]], s, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_gradients_flow_and_are_finite(model: torch.nn.Module, batch) -> None:
    model.train()
    s = model(batch.features, batch.mask, batch.context)
    (s * batch.labels).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_dasalc_is_listwise_dnn_is_not(batch) -> None:
    """Changing one document changes the other documents' DASALC scores (self-attention), never a DNN's."""
    for model, listwise in ((DASALC(136, hidden=16, head_size=8), True), (DNNScorer(136, (16,)), False)):
        model.eval()
        s = model(batch.features, batch.mask, batch.context)
        f = batch.features.clone()
        f[:, 0] += 5.0
        s2 = model(f, batch.mask, batch.context)
        others_changed = not torch.allclose(s[:, 1:], s2[:, 1:], atol=1e-6)
        assert others_changed == listwise


def test_dasalc_noise_only_in_training(batch) -> None:
    model = DASALC(136, hidden=16, head_size=8, dropout=0.0, noise_std=1.5)
    model.eval()
    a = model(batch.features, batch.mask)
    assert torch.equal(a, model(batch.features, batch.mask))
    model.train()
    torch.manual_seed(0)
    b = model(batch.features, batch.mask)
    torch.manual_seed(1)
    c = model(batch.features, batch.mask)
    assert not torch.allclose(b, c)


def test_list_standardize_removes_per_list_scale() -> None:
    from labworks.ltr.models import list_standardize

    x = torch.randn(3, 7, 4)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 5:] = False
    z = list_standardize(x, mask)
    shifted = list_standardize(x * 10 + 3, mask)  # a per-list affine change of scale
    torch.testing.assert_close(z, shifted, atol=1e-4, rtol=1e-4)
    real = z[1, :5]
    torch.testing.assert_close(real.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    assert torch.all(z[1, 5:] == 0)


def test_masked_batchnorm_ignores_padding() -> None:
    x = torch.randn(4, 6, 3)
    mask = torch.rand(4, 6) > 0.4
    mask[:, 0] = True
    bn = MaskedBatchNorm(3)
    out = bn(x, mask)
    ref = torch.nn.functional.batch_norm(x[mask], None, None, training=True, eps=bn.bn.eps)
    torch.testing.assert_close(out[mask], ref, atol=1e-5, rtol=1e-5)
    x2 = x.clone()
    x2[~mask] = 1e8
    torch.testing.assert_close(MaskedBatchNorm(3)(x2, mask)[mask], ref, atol=1e-5, rtol=1e-5)


def test_dnn_packed_equals_padded(batch) -> None:
    model = DNNScorer(136, (16,)).eval()
    padded = model(batch.features, batch.mask)
    packed = model.score_docs(batch.features[batch.mask])
    torch.testing.assert_close(padded[batch.mask], packed)


def test_gam_is_additive_and_exports_shape_functions(tmp_path: Path, batch) -> None:
    gam = RankingGAM(136, n_context=3, hidden=(8,)).eval()
    g = gam.feature_outputs(batch.features)
    w = gam.feature_weights(batch.context, 8)
    torch.testing.assert_close(
        gam(batch.features, batch.mask, batch.context), (g * w[:, None]).sum(-1) * batch.mask
    )
    torch.testing.assert_close(w.sum(-1), torch.full((8,), 136.0))
    # one feature's change moves the score by exactly that feature's contribution change
    f2 = batch.features.clone()
    f2[..., 7] += 3
    delta = gam(f2, batch.mask, batch.context) - gam(batch.features, batch.mask, batch.context)
    expect = (gam.feature_outputs(f2)[..., 7] - g[..., 7]) * w[:, None, 7] * batch.mask
    torch.testing.assert_close(delta, expect, atol=1e-4, rtol=1e-4)
    ds = make_mslr_like(10, max_list_size=20, seed=0)
    out = gam.export_shape_functions(ds.features, tmp_path, points=11)
    rows = (out / "shape_functions.csv").read_text().splitlines()
    assert rows[0] == "feature,x,contribution" and len(rows) == 1 + 136 * 11
    assert (out / "shape_functions.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="context"):
        gam(batch.features, batch.mask, None)
