"""Triton kernels over packed lists = their PyTorch references (TRITON_INTERPRET=1 on CPU)."""

from __future__ import annotations

import itertools

import pytest
import torch

from labworks.core import has_triton
from labworks.core.testing import check_op, skip_unless
from labworks.ltr.metrics import ndcg
from labworks.ltr.ops import packed_ndcg, pairwise_lambda_grad, pairwise_lambda_loss


def _packed(
    sizes: list[int], seed: int = 0, ties: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = sum(sizes)
    scores = torch.randint(0, 3, (t,), generator=g).float() if ties else torch.randn(t, generator=g)
    labels = torch.randint(0, 5, (t,), generator=g).float()
    labels[: sizes[0]] = 0  # first list has no relevant document
    offsets = torch.tensor([0, *torch.tensor(sizes).cumsum(0).tolist()])
    return scores, labels, offsets


@pytest.mark.parametrize("ties", [False, True])
def test_packed_ndcg_reference_matches_metrics_module(ties: bool) -> None:
    sizes = [4, 1, 7, 33, 2]
    s, y, off = _packed(sizes, ties=ties)
    per_list = packed_ndcg(s, y, off, 5, backend="reference")
    seq_s = [s[a:b] for a, b in itertools.pairwise(off)]
    seq_y = [y[a:b] for a, b in itertools.pairwise(off)]
    want = ndcg(seq_s, seq_y, k=5, gain="exp", ties="stable", empty="zero", reduction="none")
    torch.testing.assert_close(per_list, want.to(per_list.dtype))


@pytest.mark.triton_interp
@pytest.mark.parametrize("ties", [False, True])
def test_packed_ndcg_kernel(ties: bool) -> None:
    skip_unless(has_triton(), "triton is not importable", "TRITON")
    s, y, off = _packed([4, 1, 7, 40, 2], seed=1, ties=ties)
    assert check_op(packed_ndcg, s, y, off, 5, require_triton=True, atol=1e-5, rtol=1e-5) == [
        "dispatch",
        "triton",
        "opcheck",
    ]


@pytest.mark.triton_interp
def test_pairwise_lambda_kernel_and_gradient() -> None:
    skip_unless(has_triton(), "triton is not importable", "TRITON")
    s, y, off = _packed([3, 1, 9, 37], seed=2)
    check_op(
        pairwise_lambda_loss,
        s.clone().requires_grad_(),
        y,
        off,
        10,
        require_triton=True,
        atol=1e-5,
        rtol=1e-4,
        opcheck_utils=("test_schema", "test_faketensor"),
    )
    gout = torch.rand(4)
    check_op(
        pairwise_lambda_grad,
        s,
        y,
        off,
        10,
        gout,
        require_triton=True,
        atol=1e-5,
        rtol=1e-4,
        opcheck_utils=("test_schema", "test_faketensor"),
    )


def test_pairwise_lambda_gradient_is_autograd_of_reference() -> None:
    s, y, off = _packed([5, 8, 2], seed=3)
    s64 = s.double().requires_grad_()
    loss = pairwise_lambda_loss(s64, y.double(), off, 4)
    (loss * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    x = s.double().requires_grad_()
    ref = pairwise_lambda_loss(x, y.double(), off, 4, backend="reference")
    (
        ref * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    ).sum().backward()  # autograd through the reference
    torch.testing.assert_close(s64.grad, x.grad)
    assert torch.all(loss[0:1] >= 0)


def test_lambda_loss_closed_form_two_docs() -> None:
    # labels (1, 0), scores (0, 0): one pair, ranks 0 and 1 (input order), IDCG = 1
    s, y, off = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]), torch.tensor([0, 2])
    delta = abs(1 - 0) * abs(1 / torch.log2(torch.tensor(2.0)) - 1 / torch.log2(torch.tensor(3.0)))
    want = delta * torch.log(torch.tensor(2.0))
    torch.testing.assert_close(pairwise_lambda_loss(s, y, off, 10), want.reshape(1))


@pytest.mark.gpu
def test_kernels_on_cuda_match_reference_at_mslr_lengths() -> None:
    skip_unless(torch.cuda.is_available(), "no CUDA device", "GPU")
    s, y, off = _packed([1, 50, 999, 300, 7], seed=4)
    s, y, off = s.cuda(), y.cuda(), off.cuda()
    check_op(packed_ndcg, s, y, off, 10, require_triton=True, atol=1e-5, rtol=1e-4)
    check_op(
        pairwise_lambda_loss,
        s.clone().requires_grad_(),
        y,
        off,
        10,
        require_triton=True,
        atol=1e-4,
        rtol=1e-3,
        opcheck_utils=("test_schema", "test_faketensor"),
    )
