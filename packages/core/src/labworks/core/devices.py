"""Device and dtype selection."""

from __future__ import annotations

import torch

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "float64": torch.float64,
    "fp64": torch.float64,
    "double": torch.float64,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def get_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Resolve a device request.

    ``"auto"`` (or ``None``) picks CUDA when available, then Apple MPS, else CPU. An explicit
    request such as ``"cuda:1"`` is validated: asking for a device that is not present raises
    ``ValueError`` instead of failing later inside a kernel.
    """
    if spec is None or spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {spec!r}") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {spec!r} requested but MPS is not available on this machine")
    return device


def get_dtype(
    spec: str | torch.dtype | None = "auto", device: torch.device | str | None = None
) -> torch.dtype:
    """Resolve a dtype request such as ``"bf16"``, ``"float32"`` or a ``torch.dtype``.

    ``"auto"`` gives bfloat16 on a CUDA device that supports it and float32 elsewhere.
    """
    if isinstance(spec, torch.dtype):
        return spec
    if spec is None or spec == "auto":
        dev = get_device(device) if not isinstance(device, torch.device) else device
        if dev.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    key = str(spec).lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(_DTYPES)}, got {spec!r}")
    return _DTYPES[key]
