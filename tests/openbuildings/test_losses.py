"""Losses against torch's plain BCE, closed forms and the Bernoulli KL definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import special

from labworks.openbuildings.losses import LossShapeError, dice_loss, soft_kl, weighted_bce


def test_weighted_bce_equals_torch_bce_with_weights() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 1, 5, 6, generator=g, dtype=torch.float64) * 3
    y = torch.rand(2, 5, 6, generator=g, dtype=torch.float64)  # soft targets
    w = torch.rand(2, 5, 6, generator=g, dtype=torch.float64) * 5
    ref = F.binary_cross_entropy(torch.sigmoid(z[:, 0]), y, weight=w)
    got = weighted_bce(z, y, w)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(float(ref), rel=1e-6)
    # no weights, (B, H, W) logits
    ref0 = F.binary_cross_entropy(torch.sigmoid(z[:, 0]), y)
    assert float(weighted_bce(z[:, 0], y)) == pytest.approx(float(ref0), rel=1e-6)


def test_weighted_bce_hand_cases_and_valid_mask() -> None:
    z = torch.tensor([[[0.0, 0.0], [2.0, -1.0]]])
    y = torch.tensor([[[1.0, 0.5], [0.0, 1.0]]])
    w = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    per = [math.log(2), math.log(2), math.log1p(math.exp(2.0)), math.log1p(math.exp(1.0))]
    expected = (1 * per[0] + 2 * per[1] + 3 * per[2] + 4 * per[3]) / 4
    assert float(weighted_bce(z, y, w)) == pytest.approx(expected, rel=1e-6)
    valid = torch.tensor([[[True, False], [True, False]]])
    # mean over the valid pixels only (2 of them), not over the weight sum
    assert float(weighted_bce(z, y, w, valid)) == pytest.approx((per[0] + 3 * per[2]) / 2, rel=1e-6)
    # a float mask counts where > 0.5
    assert float(weighted_bce(z, y, w, valid.float() * 0.9)) == pytest.approx(
        (per[0] + 3 * per[2]) / 2, rel=1e-6
    )
    # nan logits outside the valid region must not leak in
    z_nan = z.clone()
    z_nan[0, 0, 1] = float("nan")
    assert math.isfinite(float(weighted_bce(z_nan, y, w, valid)))


def test_weighted_bce_extreme_logits_finite() -> None:
    z = torch.tensor([[100.0, -100.0, 1e4, -1e4]], requires_grad=True)
    y = torch.tensor([[0.0, 1.0, 1.0, 0.3]])
    loss = weighted_bce(z[:, None, None, :], y[:, None, :])  # (B, 1, H, W) logits, (B, H, W) target
    assert torch.isfinite(loss)
    # closed form: softplus(z) - y z
    ref = (F.softplus(z.detach().double()) - y.double() * z.detach().double()).mean()
    assert float(loss.detach()) == pytest.approx(float(ref), rel=1e-6)
    loss.backward()
    assert torch.isfinite(z.grad).all()
    np.testing.assert_allclose(z.grad.numpy(), ((torch.sigmoid(z.detach()) - y) / 4).numpy(), atol=1e-7)


def test_empty_valid_mask_gives_zero_with_gradient() -> None:
    z = torch.randn(1, 4, 4, requires_grad=True)
    loss = weighted_bce(z, torch.ones(1, 4, 4), None, torch.zeros(1, 4, 4, dtype=torch.bool))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.equal(z.grad, torch.zeros(1, 4, 4))


def test_shape_errors() -> None:
    with pytest.raises(LossShapeError, match=r"target shape \(1, 4, 5\) does not match logits"):
        weighted_bce(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 5))
    with pytest.raises(LossShapeError, match="weight shape"):
        weighted_bce(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4), torch.ones(2, 4, 4))
    with pytest.raises(LossShapeError, match="valid shape"):
        soft_kl(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4), None, torch.ones(1, 3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="eps"):
        dice_loss(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4), eps=0.0)


def test_soft_kl_matches_bernoulli_kl_definition() -> None:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 6, 7, generator=g) * 4
    p_t = torch.rand(2, 6, 7, generator=g)
    p_t[0, 0, :3] = torch.tensor([0.0, 1.0, 0.5])  # exact 0 / 1 teacher probabilities
    w = torch.rand(2, 6, 7, generator=g)
    p_s = torch.sigmoid(z.double()).numpy()
    pt = p_t.double().numpy()
    kl = special.rel_entr(pt, p_s) + special.rel_entr(1 - pt, 1 - p_s)
    assert float(soft_kl(z, p_t)) == pytest.approx(kl.mean(), rel=1e-5)
    assert float(soft_kl(z[:, None], p_t, w)) == pytest.approx((kl * w.numpy()).mean(), rel=1e-5)


def test_soft_kl_zero_at_equality_positive_otherwise() -> None:
    z = torch.linspace(-30, 30, 121).view(1, 11, 11)
    p = torch.sigmoid(z.double()).float()
    assert abs(float(soft_kl(z, p))) < 1e-6
    assert float(soft_kl(z, torch.sigmoid(z + 0.5))) > 1e-3
    assert float(soft_kl(z, 1 - p)) > 1.0
    # extreme logits against hard 0/1 teachers stay finite
    zz = torch.tensor([[[1e4, -1e4, 1e4]]])
    out = soft_kl(zz, torch.tensor([[[0.0, 1.0, 1.0]]]))
    assert math.isfinite(float(out)) and float(out) > 0


def test_soft_kl_gradient_equals_soft_bce_gradient() -> None:
    g = torch.Generator().manual_seed(2)
    z0 = torch.randn(2, 1, 5, 5, generator=g) * 3
    p_t = torch.rand(2, 5, 5, generator=g)
    w = torch.rand(2, 5, 5, generator=g) + 0.5
    valid = torch.rand(2, 5, 5, generator=g) > 0.3
    za = z0.clone().requires_grad_(True)
    zb = z0.clone().requires_grad_(True)
    soft_kl(za, p_t, w, valid).backward()
    weighted_bce(zb, p_t, w, valid).backward()
    torch.testing.assert_close(za.grad, zb.grad, rtol=1e-5, atol=1e-7)
    # and the values differ exactly by the (student-independent) mean teacher entropy
    ent = -(special.xlogy(p_t.numpy(), p_t.numpy()) + special.xlogy(1 - p_t.numpy(), 1 - p_t.numpy()))
    m = valid.numpy()
    diff = float(weighted_bce(z0, p_t, w, valid)) - float(soft_kl(z0, p_t, w, valid))
    assert diff == pytest.approx((ent * w.numpy() * m).sum() / m.sum(), rel=1e-5)


def test_dice_loss_hand_cases() -> None:
    y = torch.zeros(2, 4, 4)
    y[0, :2, :2] = 1
    perfect = torch.where(y > 0, 50.0, -50.0)
    # image 0: (2*4 + 1) / (4 + 4 + 1) = 1; image 1 (empty): (0 + 1) / (0 + 0 + 1) = 1
    assert float(dice_loss(perfect, y)) == pytest.approx(0.0, abs=1e-6)
    z = torch.zeros(1, 1, 2, 2)  # p = 0.5 everywhere
    t = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    expected = 1 - (2 * 0.5 + 1) / (2.0 + 1.0 + 1)
    assert float(dice_loss(z, t)) == pytest.approx(expected, rel=1e-6)
    valid = torch.tensor([[[True, True], [False, False]]])
    expected_v = 1 - (2 * 0.5 + 1) / (1.0 + 1.0 + 1)
    assert float(dice_loss(z, t, valid)) == pytest.approx(expected_v, rel=1e-6)
