"""Sensitive-feature encoding: one or several features → (intersectional) integer group codes.

Groups are the full cartesian product of each feature's sorted levels (as fairlearn's
``MetricFrame``): a combination with no rows is kept as an empty group (n = 0, not estimable)
rather than silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from labworks.fairness._inputs import ArrayLike, as_1d

__all__ = ["GroupIndex", "encode_groups"]


@dataclass(frozen=True)
class GroupIndex:
    """Integer group code per row plus the metadata to name each group.

    Attributes:
        codes: (n,) int64 group code per row (numpy, or torch on the inputs' device).
        levels: per feature, the sorted distinct values.
        names: per feature, its name.
    """

    codes: np.ndarray | torch.Tensor
    levels: tuple[tuple[Any, ...], ...]
    names: tuple[str, ...]

    @property
    def n_groups(self) -> int:
        return int(np.prod([len(lv) for lv in self.levels]))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(lv) for lv in self.levels)

    def labels(self) -> list[Any]:
        """Group labels in code order: the level for one feature, a tuple for several."""
        if len(self.levels) == 1:
            return list(self.levels[0])
        return list(pd.MultiIndex.from_product(self.levels))

    def pandas_index(self) -> pd.Index:
        if len(self.levels) == 1:
            return pd.Index(list(self.levels[0]), name=self.names[0])
        return pd.MultiIndex.from_product([list(lv) for lv in self.levels], names=list(self.names))

    def code_of(self, label: Any) -> int:
        """The code of a group label; ValueError naming the label and the known groups if unknown."""
        labels = self.labels()
        key = tuple(label) if isinstance(label, list) else label
        for i, lab in enumerate(labels):
            if _eq(lab, key):
                return i
        if isinstance(label, str):  # "a & F" form of an intersectional label
            for i in range(len(labels)):
                if self.label_str(i) == label:
                    return i
        shown = ", ".join(map(repr, labels[:12]))
        raise ValueError(f"unknown reference group {label!r}; groups are: {shown}")

    def label_str(self, i: int) -> str:
        lab = self.labels()[i]
        return " & ".join(map(str, lab)) if isinstance(lab, tuple) else str(lab)


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b) or str(a) == str(b)
    except Exception:
        return False


def _columns(sensitive_features: Any) -> list[tuple[str, Any]]:
    sf = sensitive_features
    if sf is None:
        raise ValueError("sensitive_features is required, got None")
    if isinstance(sf, pd.DataFrame):
        return [(str(c), sf[c]) for c in sf.columns]
    if isinstance(sf, Mapping):
        return [(str(k), v) for k, v in sf.items()]
    if isinstance(sf, pd.Series):
        return [(str(sf.name) if sf.name is not None else "sensitive_feature_0", sf)]
    if isinstance(sf, torch.Tensor):
        if sf.ndim == 2 and sf.shape[1] > 1:
            return [(f"sensitive_feature_{j}", sf[:, j]) for j in range(sf.shape[1])]
        return [("sensitive_feature_0", sf.reshape(-1))]
    if (
        isinstance(sf, list)
        and sf
        and all(isinstance(c, pd.Series | np.ndarray | torch.Tensor | list) for c in sf)
    ):
        return [
            (str(c.name) if isinstance(c, pd.Series) and c.name is not None else f"sensitive_feature_{j}", c)
            for j, c in enumerate(sf)
        ]
    arr = np.asarray(sf, dtype=object) if not hasattr(sf, "ndim") else np.asarray(sf)
    if arr.ndim == 2:
        return [(f"sensitive_feature_{j}", arr[:, j]) for j in range(arr.shape[1])]
    return [("sensitive_feature_0", sf)]


def encode_groups(
    sensitive_features: Any, n: int | None = None, device: torch.device | None = None
) -> GroupIndex:
    """Encode one or several sensitive features into intersectional group codes.

    Args:
        sensitive_features: a 1-D array/Series/tensor (one feature), or a DataFrame, 2-D array,
            mapping name → column, or list of columns (several features → cartesian groups).
        n: expected number of rows (ValueError on mismatch).
        device: when set, codes are a torch tensor on this device.

    Returns:
        GroupIndex with ``codes`` (n,) and sorted levels per feature.
    """
    if isinstance(sensitive_features, GroupIndex):
        if n is not None and len(sensitive_features.codes) != n:
            raise ValueError(f"inputs have mismatched lengths: groups={len(sensitive_features.codes)}, y={n}")
        return sensitive_features
    cols = _columns(sensitive_features)
    all_codes: list[np.ndarray | torch.Tensor] = []
    levels: list[tuple[Any, ...]] = []
    names: list[str] = []
    for name, col in cols:
        if isinstance(col, pd.Series):  # factorize natively (Arrow strings, categoricals): no object copy
            if n is not None and len(col) != n:
                raise ValueError(
                    f"inputs have mismatched lengths: sensitive feature {name!r}={len(col)}, y={n}"
                )
            if col.isna().any():
                raise ValueError(f"sensitive feature {name!r} contains NaN/missing values")
            codes, uniq = pd.factorize(col, sort=True)
            all_codes.append(np.asarray(codes, dtype=np.int64))
            levels.append(tuple(np.asarray(uniq).tolist()))
            names.append(name)
            continue
        arr: ArrayLike = as_1d(col, f"sensitive feature {name!r}")
        if n is not None and len(arr) != n:
            raise ValueError(f"inputs have mismatched lengths: sensitive feature {name!r}={len(arr)}, y={n}")
        if isinstance(arr, torch.Tensor):
            if arr.is_floating_point() and bool(torch.isnan(arr).any()):
                raise ValueError(f"sensitive feature {name!r} contains NaN/missing values")
            uniq, inv = torch.unique(arr, sorted=True, return_inverse=True)
            all_codes.append(inv.to(torch.int64))
            levels.append(tuple(uniq.cpu().tolist()))
        else:
            if pd.isna(arr).any():
                raise ValueError(f"sensitive feature {name!r} contains NaN/missing values")
            codes, uniq = pd.factorize(arr, sort=True)
            all_codes.append(codes.astype(np.int64))
            levels.append(tuple(uniq.tolist()))
        names.append(name)
    if len(set(names)) != len(names):
        raise ValueError(f"sensitive feature names must be unique, got {names}")
    sizes = [len(lv) for lv in levels]
    code: np.ndarray | torch.Tensor = all_codes[0]
    for c, size in zip(all_codes[1:], sizes[1:], strict=True):
        if isinstance(code, torch.Tensor) or isinstance(c, torch.Tensor):
            code = torch.as_tensor(code) * size + torch.as_tensor(c).to(torch.as_tensor(code).device)
        else:
            code = code * size + c
    if device is not None:
        code = torch.as_tensor(code).to(device)
    elif (
        isinstance(code, torch.Tensor)
        and device is None
        and not any(isinstance(c, torch.Tensor) for c in all_codes)
    ):
        code = code.numpy()
    return GroupIndex(codes=code, levels=tuple(levels), names=tuple(names))
