"""U-Net building segmenter with a small plain-CNN or a torchvision ResNet encoder (offline only).

* ``UNet("small")``: a light classic U-Net encoder, five stages of widths ``base_width * (1, 2, 4, 8, 16)``
  (two conv-BN-ReLU each, 2x2 max-pool between) at strides 1, 2, 4, 8, 16, so ``stride == 16``.
* ``UNet("resnet18" | "resnet34" | "resnet50")``: a torchvision ResNet built with ``weights=None`` (never a
  download); skips at strides 2 (``relu(bn1(conv1))``), 4, 8, 16 and the bottleneck at 32, ``stride == 32``.
  The encoder's parameter names are torchvision's (``encoder.conv1.weight``, ``encoder.layer1.0...``), so a
  local torchvision state dict loads with :func:`load_encoder_weights`.
* Decoder: per stage bilinear x2 upsampling, concatenation of the skip at that stride (none at full
  resolution for ResNets), two conv-BN-ReLU; a final 1x1 conv gives one logit per pixel at full resolution.

Input ``(B, C, H, W)`` with ``H, W`` multiples of ``model.stride`` (use :func:`pad_to_stride` and
:func:`crop_to_size` otherwise); output logits ``(B, 1, H, W)``. Works with ``channels_last`` and under
``torch.autocast`` (bf16/fp16).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

__all__ = [
    "ENCODERS",
    "EncoderWeightsError",
    "UNet",
    "crop_to_size",
    "load_encoder_weights",
    "pad_to_stride",
]

ENCODERS = ("small", "resnet18", "resnet34", "resnet50")

# Leading key components stripped when matching a state dict to the encoder (DDP, torch.compile,
# smp/timm-style wrappers and our own ``encoder.`` prefix).
_PREFIXES = ("module.", "_orig_mod.", "model.", "encoder.", "backbone.", "resnet.", "net.")
# Keys of a torchvision classification checkpoint that the encoder does not use.
_IGNORED_PREFIXES = ("fc.",)


class EncoderWeightsError(ValueError):
    """An encoder weight file does not fit the encoder (missing, unexpected or mis-shaped keys)."""


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(*_conv_bn_relu(cin, cout), *_conv_bn_relu(cout, cout))


class _SmallEncoder(nn.Module):
    """Plain U-Net encoder: features at strides 1, 2, 4, 8, 16 with widths ``w * (1, 2, 4, 8, 16)``."""

    def __init__(self, in_channels: int, base_width: int) -> None:
        super().__init__()
        widths = [base_width * m for m in (1, 2, 4, 8, 16)]
        self.stages = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.stages.append(_DoubleConv(cin, w))
            cin = w
        self.out_channels = widths
        self.in_channels = in_channels

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = stage(x)
            feats.append(x)
        return feats


class _ResNetEncoder(nn.Module):
    """torchvision ResNet trunk (no avgpool/fc); parameter names identical to torchvision's."""

    def __init__(self, name: str, in_channels: int) -> None:
        super().__init__()
        net = getattr(torchvision.models, name)(weights=None)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        expansion = 4 if name == "resnet50" else 1
        self.out_channels = [64, 64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]
        self.in_channels = in_channels

    def forward(self, x: Tensor) -> list[Tensor]:
        x0 = self.relu(self.bn1(self.conv1(x)))  # /2
        x1 = self.layer1(self.maxpool(x0))  # /4
        x2 = self.layer2(x1)  # /8
        x3 = self.layer3(x2)  # /16
        x4 = self.layer4(x3)  # /32
        return [x0, x1, x2, x3, x4]


class _DecoderBlock(nn.Module):
    def __init__(self, cin: int, skip: int, cout: int) -> None:
        super().__init__()
        self.conv = _DoubleConv(cin + skip, cout)

    def forward(self, x: Tensor, skip: Tensor | None) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        if skip is not None:
            x = torch.cat([x, skip.to(x.dtype)], dim=1)
        return self.conv(x)


class UNet(nn.Module):
    """U-Net with a torchvision ResNet (or a small plain CNN) encoder.

    Args:
        encoder: one of :data:`ENCODERS`.
        in_channels: input bands (a ResNet's ``conv1`` is rebuilt when not 3; loaded RGB weights are adapted).
        encoder_weights: optional *local* file (safetensors or a torch state dict) for the encoder; never
            downloaded. See :func:`load_encoder_weights`.
        decoder_channels: widths of the decoder stages from coarse to fine; one per stride doubling
            (4 for ``small``, 5 for ResNets). Default: ``base_width * (8, 4, 2, 1)`` for ``small``,
            ``(256, 128, 64, 32, 16)`` for ResNets.
        base_width: width of the first ``small`` encoder stage (ignored by ResNets).

    Input ``(B, in_channels, H, W)``, ``H`` and ``W`` multiples of :attr:`stride`; output logits ``(B, 1, H, W)``.
    """

    stride: int

    def __init__(
        self,
        encoder: str = "small",
        *,
        in_channels: int = 3,
        encoder_weights: str | Path | None = None,
        decoder_channels: Sequence[int] | None = None,
        base_width: int = 16,
    ) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; expected one of {ENCODERS}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if base_width < 1:
            raise ValueError(f"base_width must be >= 1, got {base_width}")
        self.encoder_name = encoder
        self.in_channels = in_channels
        skips: list[int]
        if encoder == "small":
            self.encoder: nn.Module = _SmallEncoder(in_channels, base_width)
            enc_ch = self.encoder.out_channels
            skips = [enc_ch[3], enc_ch[2], enc_ch[1], enc_ch[0]]
            default_dec = [base_width * m for m in (8, 4, 2, 1)]
            self.stride = 16
        else:
            self.encoder = _ResNetEncoder(encoder, in_channels)
            enc_ch = self.encoder.out_channels
            skips = [enc_ch[3], enc_ch[2], enc_ch[1], enc_ch[0], 0]
            default_dec = [256, 128, 64, 32, 16]
            self.stride = 32
        dec = list(decoder_channels) if decoder_channels is not None else default_dec
        if len(dec) != len(skips) or any(int(c) < 1 for c in dec):
            raise ValueError(
                f"decoder_channels must be {len(skips)} positive widths for encoder {encoder!r}, got {dec}"
            )
        blocks = []
        cin = enc_ch[-1]
        for skip, cout in zip(skips, dec, strict=True):
            blocks.append(_DecoderBlock(cin, skip, int(cout)))
            cin = int(cout)
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(cin, 1, kernel_size=1)
        if encoder_weights is not None:
            load_encoder_weights(self, encoder_weights)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, 1, H, W)`` for images ``(B, in_channels, H, W)``."""
        if x.dim() != 4:
            raise ValueError(f"expected input (B, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"input has {x.shape[1]} channels but the model was built with in_channels={self.in_channels}"
            )
        h, w = x.shape[-2:]
        if h % self.stride or w % self.stride:
            raise ValueError(
                f"input height and width must be multiples of the U-Net stride {self.stride}, got {h}x{w}; "
                f"pad with pad_to_stride(x, {self.stride}) and crop the output with crop_to_size"
            )
        feats = self.encoder(x)
        y = feats[-1]
        skips: list[Tensor | None] = list(reversed(feats[:-1]))
        if len(skips) < len(self.decoder):
            skips.append(None)
        for block, skip in zip(self.decoder, skips, strict=True):
            y = block(y, skip)
        out: Tensor = self.head(y)
        return out


def _reflect_index(n: int, total: int, device: torch.device) -> Tensor:
    """Indices ``0..total-1`` mirrored into ``[0, n)`` without repeating the edge (numpy 'reflect')."""
    idx = torch.arange(total, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = idx % period
    return torch.where(idx >= n, period - idx, idx)


def pad_to_stride(x: Tensor, stride: int = 32) -> tuple[Tensor, tuple[int, int]]:
    """Reflect-pad the last two dims of ``x`` (``(..., H, W)``) at the bottom/right up to multiples of ``stride``.

    Any pad size works (the reflection repeats for pads larger than the image). Returns the padded tensor
    and the original ``(H, W)`` for :func:`crop_to_size`.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if x.dim() < 2:
        raise ValueError(f"expected a tensor (..., H, W), got shape {tuple(x.shape)}")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h == 0 or w == 0:
        raise ValueError(f"cannot pad an empty image of size {h}x{w}")
    hp, wp = -(-h // stride) * stride, -(-w // stride) * stride
    if (hp, wp) == (h, w):
        return x, (h, w)
    out = x.index_select(-2, _reflect_index(h, hp, x.device))
    out = out.index_select(-1, _reflect_index(w, wp, x.device))
    return out, (h, w)


def crop_to_size(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Undo :func:`pad_to_stride`: keep the top-left ``size = (H, W)`` of the last two dims."""
    h, w = size
    if h > x.shape[-2] or w > x.shape[-1]:
        raise ValueError(f"cannot crop {tuple(x.shape[-2:])} to the larger size {(h, w)}")
    return x[..., :h, :w]


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"encoder weight file not found: {path} (weights are never downloaded)")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused or corrupt file
        raise EncoderWeightsError(
            f"cannot read {path} as a torch state dict with weights_only=True: {err}"
        ) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise EncoderWeightsError(f"{path} does not hold a state dict of tensors")
    return {str(k): v for k, v in obj.items()}


def _strip(key: str, targets: Mapping[str, Tensor]) -> str:
    while key not in targets:
        for p in _PREFIXES:
            if key.startswith(p):
                key = key[len(p) :]
                break
        else:
            return key
    return key


def _adapt_conv1(w: Tensor, channels: int) -> Tensor:
    """RGB ``conv1`` weights ``(O, 3, k, k)`` -> ``(O, channels, k, k)`` keeping each filter's sum over input
    channels (its response to a grey image): every channel gets the RGB mean when ``channels < 3``; otherwise
    the first three keep R, G, B and extra bands (NIR, ...) get the RGB mean; all scaled by ``3 / channels``."""
    mean = w.mean(dim=1, keepdim=True)
    if channels < 3:
        return mean.repeat(1, channels, 1, 1) * (3.0 / channels)
    return torch.cat([w, mean.repeat(1, channels - 3, 1, 1)], dim=1) * (3.0 / channels)


def load_encoder_weights(model: UNet, path: str | Path, *, strict: bool = True) -> None:
    """Load encoder weights from a **local** file (never downloads).

    Accepts ``.safetensors`` or a ``torch.save``d state dict (read with ``weights_only=True``; a dict holding it
    under ``state_dict``/``model`` also works), with keys as torchvision names them (``conv1.weight``) or
    prefixed (``encoder.``, ``module.``, ``backbone.``, ``model.``, ...). A torchvision classifier's ``fc.*``
    keys are ignored. When the model has ``in_channels != 3`` and the file holds RGB ``conv1`` weights they are
    adapted (see :func:`_adapt_conv1`).

    Raises:
        FileNotFoundError: no such file.
        EncoderWeightsError: encoder keys missing from the file, shape mismatches, or (``strict=True``)
            unexpected keys, each listed by name. Nothing is loaded when it raises.
    """
    path = Path(path)
    raw = _read_state_dict(path)
    target = model.encoder.state_dict()
    loaded: dict[str, Tensor] = {}
    unexpected: list[str] = []
    mismatched: list[str] = []
    seen: set[str] = set()
    for key, value in raw.items():
        k = _strip(key, target)
        if k not in target:
            if not k.startswith(_IGNORED_PREFIXES):
                unexpected.append(key)
            continue
        seen.add(k)
        want = target[k]
        if k == "conv1.weight" and value.dim() == 4 and value.shape[1] == 3 and want.shape[1] != 3:
            value = _adapt_conv1(value, int(want.shape[1]))
        if tuple(value.shape) != tuple(want.shape):
            mismatched.append(f"{key}: file {tuple(value.shape)} vs model {tuple(want.shape)}")
            continue
        loaded[k] = value.to(dtype=want.dtype)
    missing = sorted(set(target) - seen)
    problems = []
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: " + "; ".join(mismatched[:10]))
    if missing:
        problems.append(f"{len(missing)} encoder keys missing from the file, e.g. {missing[:10]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys, e.g. {unexpected[:10]}")
    if mismatched or missing or (unexpected and strict):
        raise EncoderWeightsError(
            f"{path} does not fit the {model.encoder_name!r} encoder: " + " | ".join(problems)
        )
    model.encoder.load_state_dict(loaded, strict=False)
