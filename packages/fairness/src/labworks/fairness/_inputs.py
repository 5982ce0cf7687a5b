"""Input adapters and boundary validation: numpy, pandas, pyarrow, lists and torch tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

ArrayLike = Any  # numpy array, pandas Series, pyarrow array, list, or torch tensor

__all__ = ["ArrayLike", "as_1d", "as_weights", "binarize", "check_lengths", "is_torch"]


def is_torch(x: object) -> bool:
    return isinstance(x, torch.Tensor)


def as_1d(x: ArrayLike, name: str) -> np.ndarray | torch.Tensor:
    """Return a 1-D numpy array (or the torch tensor, flattened) for ``x``; ValueError names ``name``."""
    if x is None:
        raise ValueError(f"{name} is required, got None")
    if isinstance(x, torch.Tensor):
        if x.ndim == 2 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got a tensor of shape {tuple(x.shape)}")
        return x
    if isinstance(x, pd.DataFrame):
        if x.shape[1] != 1:
            raise ValueError(f"{name} must be 1-D, got a DataFrame with {x.shape[1]} columns")
        x = x.iloc[:, 0]
    if isinstance(x, pd.Series | pd.Index):
        arr = x.to_numpy()
    elif hasattr(x, "to_numpy") and not isinstance(x, np.ndarray):  # pyarrow arrays / chunked arrays
        arr = np.asarray(x.to_numpy(zero_copy_only=False) if _is_arrow(x) else x.to_numpy())
    else:
        arr = np.asarray(x)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {arr.shape}")
    return arr


def _is_arrow(x: object) -> bool:
    return type(x).__module__.startswith("pyarrow")


def check_lengths(**arrays: Any) -> int:
    """All non-None arrays must have the same length; returns it."""
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise ValueError(f"inputs have mismatched lengths: {detail}")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError("inputs are empty (0 rows)")
    return n


def _has_nan(arr: np.ndarray | torch.Tensor) -> bool:
    if isinstance(arr, torch.Tensor):
        return bool(arr.is_floating_point() and torch.isnan(arr).any())
    if arr.dtype.kind == "f":
        return bool(np.isnan(arr).any())
    if arr.dtype.kind == "O":
        return bool(pd.isna(arr).any())
    return False


def binarize(arr: np.ndarray | torch.Tensor, name: str, pos_label: Any = 1) -> np.ndarray | torch.Tensor:
    """Map a binary label vector to {0, 1} (1 = ``pos_label``); reject NaN and non-binary values."""
    if _has_nan(arr):
        raise ValueError(f"{name} contains NaN/missing values")
    uniq = torch.unique(arr).tolist() if isinstance(arr, torch.Tensor) else pd.unique(arr).tolist()
    if len(uniq) > 2:
        shown = sorted(map(str, uniq))[:6]
        raise ValueError(
            f"{name} must be binary for this metric, got {len(uniq)} distinct values ({', '.join(shown)}...); "
            "use a multiclass (one-vs-rest) metric or threshold the scores first"
        )
    if pos_label is None:
        if set(uniq) <= {0, 1} or set(uniq) <= {-1, 1}:
            pos_label = 1
        else:
            raise ValueError(f"{name} has values {uniq}; pass pos_label to say which is positive")
    if len(uniq) == 2 and pos_label not in uniq:
        raise ValueError(f"pos_label={pos_label!r} is not one of the values of {name}: {uniq}")
    if isinstance(arr, torch.Tensor):
        return (arr == pos_label).to(torch.int64)
    return (arr == pos_label).astype(np.int64)


def as_weights(
    w: ArrayLike | None, n: int, like: np.ndarray | torch.Tensor
) -> np.ndarray | torch.Tensor | None:
    """Validate sample weights (finite, non-negative, length n, positive total)."""
    if w is None:
        return None
    arr = as_1d(w, "sample_weight")
    if len(arr) != n:
        raise ValueError(f"inputs have mismatched lengths: sample_weight={len(arr)}, y={n}")
    if isinstance(like, torch.Tensor):
        t = arr if isinstance(arr, torch.Tensor) else torch.as_tensor(np.asarray(arr, dtype=np.float64))
        t = t.to(device=like.device, dtype=torch.float64)
        if not bool(torch.isfinite(t).all()) or bool((t < 0).any()) or float(t.sum()) <= 0:
            raise ValueError("sample_weight must be finite, non-negative, with a positive sum")
        return t
    a = (arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else arr).astype(np.float64)
    if not np.isfinite(a).all() or (a < 0).any() or a.sum() <= 0:
        raise ValueError("sample_weight must be finite, non-negative, with a positive sum")
    return a


def to_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def first_tensor(*xs: Any) -> torch.Tensor | None:
    for x in xs:
        if isinstance(x, torch.Tensor):
            return x
    return None


def align(arr: np.ndarray | torch.Tensor, like: torch.Tensor | None) -> np.ndarray | torch.Tensor:
    """Move ``arr`` onto ``like``'s device when torch is in play, else return numpy."""
    if like is None:
        return to_numpy(arr)
    if isinstance(arr, torch.Tensor):
        return arr.to(like.device)
    return torch.as_tensor(np.asarray(arr), device=like.device)


def names_from(seq: Sequence[Any]) -> list[str]:
    return [str(s) for s in seq]
