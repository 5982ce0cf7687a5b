"""U-Net: shapes per encoder, gradients, stride/channel errors, padding helpers, offline encoder weights."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from safetensors.torch import save_file

from labworks.openbuildings.model import (
    ENCODERS,
    EncoderWeightsError,
    UNet,
    crop_to_size,
    load_encoder_weights,
    pad_to_stride,
)


@pytest.mark.parametrize(
    ("encoder", "size"), [("small", 64), ("resnet18", 64), ("resnet34", 64), ("resnet50", 32)]
)
def test_output_shape_per_encoder(encoder: str, size: int) -> None:
    model = UNet(encoder, base_width=4).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 1, size, size)
    assert torch.isfinite(y).all()
    assert model.stride == (16 if encoder == "small" else 32)


def test_encoders_constant() -> None:
    assert ENCODERS == ("small", "resnet18", "resnet34", "resnet50")


def test_non_square_and_multichannel_input() -> None:
    model = UNet("small", in_channels=5, base_width=4).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 5, 32, 48))
    assert y.shape == (1, 1, 32, 48)


def test_gradient_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    model = UNet("resnet18", decoder_channels=(32, 16, 16, 8, 8))
    x = torch.randn(2, 3, 64, 64)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), torch.rand(2, 1, 64, 64))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert model.encoder.conv1.weight.grad.abs().sum() > 0
    assert model.head.weight.grad.abs().sum() > 0


def test_stride_error_names_pad_to_stride() -> None:
    model = UNet("resnet18")
    with pytest.raises(ValueError, match="multiples of the U-Net stride 32.*pad_to_stride"):
        model(torch.randn(1, 3, 48, 64))
    small = UNet("small", base_width=4)
    with pytest.raises(ValueError, match="stride 16"):
        small(torch.randn(1, 3, 40, 32))


def test_channel_and_argument_errors() -> None:
    with pytest.raises(ValueError, match="4 channels but the model was built with in_channels=3"):
        UNet("small", base_width=4)(torch.randn(1, 4, 32, 32))
    with pytest.raises(ValueError, match="unknown encoder 'vgg'"):
        UNet("vgg")
    with pytest.raises(ValueError, match="decoder_channels must be 4 positive widths"):
        UNet("small", decoder_channels=(8, 8))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        UNet("small", base_width=4)(torch.randn(3, 32, 32))


def test_padding_helpers_match_numpy_reflect() -> None:
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    y, size = pad_to_stride(x, 4)
    assert size == (5, 7) and y.shape == (2, 3, 8, 8)
    ref = np.pad(x.numpy(), ((0, 0), (0, 0), (0, 3), (0, 1)), mode="reflect")
    np.testing.assert_array_equal(y.numpy(), ref)
    assert torch.equal(crop_to_size(y, size), x)
    # a pad longer than the image: numpy repeats the reflection, so must we
    small = torch.arange(3 * 2, dtype=torch.float32).reshape(3, 2)
    big, _ = pad_to_stride(small, 32)
    np.testing.assert_array_equal(big.numpy(), np.pad(small.numpy(), ((0, 29), (0, 30)), mode="reflect"))
    # already a multiple: returned unchanged
    z, s = pad_to_stride(torch.zeros(1, 32, 64))
    assert z.shape == (1, 32, 64) and s == (32, 64)
    with pytest.raises(ValueError, match="larger size"):
        crop_to_size(z, (40, 64))


def test_pad_forward_crop_round_trip() -> None:
    model = UNet("small", base_width=4).eval()
    x = torch.randn(1, 3, 45, 50)
    xp, size = pad_to_stride(x, model.stride)
    with torch.no_grad():
        y = crop_to_size(model(xp), size)
    assert y.shape == (1, 1, 45, 50)


def test_channels_last_and_bf16_autocast() -> None:
    torch.manual_seed(0)
    model = UNet("small", base_width=4).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        cl_model = UNet("small", base_width=4).eval()
        cl_model.load_state_dict(model.state_dict())
        cl_model = cl_model.to(memory_format=torch.channels_last)
        out_cl = cl_model(x.to(memory_format=torch.channels_last))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf16 = cl_model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out_cl, ref, rtol=1e-4, atol=1e-4)
    assert out_bf16.dtype == torch.bfloat16 and out_bf16.shape == ref.shape
    assert torch.isfinite(out_bf16).all()
    # bf16 keeps ~3 significant digits; the network output must still track fp32 closely
    rel = (out_bf16.float() - ref).norm() / ref.norm()
    assert rel < 0.1


def _resnet18_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = torchvision.models.resnet18(weights=None)
    for p in net.parameters():  # random values everywhere, so a skipped key cannot pass by chance
        torch.nn.init.normal_(p)
    for name, b in net.named_buffers():
        if b.dtype.is_floating_point:
            b.uniform_(0.5, 1.5) if "var" in name else b.normal_()
    return {k: v.clone() for k, v in net.state_dict().items()}


def _assert_encoder_equals(model: UNet, state: dict[str, torch.Tensor]) -> None:
    enc = model.encoder.state_dict()
    assert set(enc) == {k for k in state if not k.startswith("fc.")}
    for k, v in enc.items():
        assert torch.equal(v, state[k]), k


@pytest.mark.parametrize(
    ("fmt", "prefix"),
    [("pth", ""), ("pth", "module.encoder."), ("safetensors", ""), ("safetensors", "encoder.")],
)
def test_load_encoder_weights_round_trip(tmp_path: Path, fmt: str, prefix: str) -> None:
    state = _resnet18_state()
    saved = {prefix + k: v for k, v in state.items()}
    path = tmp_path / f"r18.{fmt}"
    if fmt == "pth":
        torch.save(saved, path)
    else:
        save_file(saved, str(path))
    model = UNet("resnet18")
    load_encoder_weights(model, path)
    _assert_encoder_equals(model, state)
    # the constructor takes the same local path
    _assert_encoder_equals(UNet("resnet18", encoder_weights=path), state)


def test_load_wrapped_checkpoint_and_full_unet_state(tmp_path: Path) -> None:
    state = _resnet18_state(1)
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "ckpt.pt")
    model = UNet("resnet18")
    load_encoder_weights(model, tmp_path / "ckpt.pt")
    _assert_encoder_equals(model, state)
    # a full UNet state dict: encoder.* loads, decoder/head keys are unexpected unless strict=False
    full = model.state_dict()
    save_file({k: v.contiguous() for k, v in full.items()}, str(tmp_path / "unet.safetensors"))
    other = UNet("resnet18")
    with pytest.raises(EncoderWeightsError, match="unexpected keys.*decoder"):
        load_encoder_weights(other, tmp_path / "unet.safetensors")
    load_encoder_weights(other, tmp_path / "unet.safetensors", strict=False)
    _assert_encoder_equals(other, state)


@pytest.mark.parametrize("channels", [1, 2, 4, 6])
def test_in_channels_adaptation(tmp_path: Path, channels: int) -> None:
    state = _resnet18_state(2)
    torch.save(state, tmp_path / "r18.pth")
    model = UNet("resnet18", in_channels=channels, encoder_weights=tmp_path / "r18.pth")
    w_rgb = state["conv1.weight"]
    w = model.encoder.conv1.weight.detach()
    assert w.shape == (64, channels, 7, 7)
    # the response to a grey image is preserved: the per-filter sum over input channels is unchanged
    torch.testing.assert_close(w.sum(1), w_rgb.sum(1), rtol=1e-5, atol=1e-5)
    if channels > 3:  # RGB kept (scaled), extra bands get the RGB mean
        torch.testing.assert_close(w[:, :3], w_rgb * 3 / channels)
        for c in range(3, channels):
            torch.testing.assert_close(w[:, c], w_rgb.mean(1) * 3 / channels)
    else:
        for c in range(channels):
            torch.testing.assert_close(w[:, c], w_rgb.mean(1) * 3 / channels)
    for k in state:
        if k != "conv1.weight" and not k.startswith("fc."):
            assert torch.equal(model.encoder.state_dict()[k], state[k]), k


def test_load_errors_are_clear(tmp_path: Path) -> None:
    state = _resnet18_state()
    partial = {k: v for k, v in state.items() if not k.startswith("layer4.")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(EncoderWeightsError, match=r"missing from the file.*layer4"):
        load_encoder_weights(UNet("resnet18"), tmp_path / "partial.pth")
    torch.save(state, tmp_path / "r18.pth")
    with pytest.raises(EncoderWeightsError, match="missing from the file"):  # resnet34 has more blocks
        load_encoder_weights(UNet("resnet34"), tmp_path / "r18.pth")
    with pytest.raises(EncoderWeightsError, match=r"shape mismatches.*layer1"):  # bottleneck widths differ
        load_encoder_weights(UNet("resnet50"), tmp_path / "r18.pth")
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        load_encoder_weights(UNet("resnet18"), tmp_path / "nope.pth")
    # weights_only=True refuses arbitrary pickles
    torch.save({"fn": functools.partial(print, 1)}, tmp_path / "pickle.pth")
    with pytest.raises(EncoderWeightsError, match="weights_only=True"):
        load_encoder_weights(UNet("resnet18"), tmp_path / "pickle.pth")


def test_small_encoder_weights_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(3)
    src = UNet("small", base_width=4)
    for p in src.encoder.parameters():
        torch.nn.init.normal_(p)
    save_file(src.encoder.state_dict(), str(tmp_path / "small.safetensors"))
    dst = UNet("small", base_width=4, encoder_weights=tmp_path / "small.safetensors")
    for k, v in src.encoder.state_dict().items():
        assert torch.equal(dst.encoder.state_dict()[k], v), k
