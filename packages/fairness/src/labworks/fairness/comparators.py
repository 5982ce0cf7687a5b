"""Difference / ratio comparators with named conventions.

``between_groups`` (fairlearn): max − min and min / max over estimable groups.
``to_overall`` (fairlearn): max |g − overall| and min over groups of g/overall folded to ≤ 1.
``vs_reference`` (AIF360): signed value(rest) − value(reference) and value(rest) / value(reference), where
"rest" pools every row outside the reference (privileged) group, exactly as AIF360's
``privileged_groups`` / ``priv_group`` comparisons do.
All functions work on cells (..., G, 4), so bootstrap replicates (B, G, 4) reuse them unchanged.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

from labworks.fairness.confusion import rate_from_cells

Method = Literal["between_groups", "to_overall", "vs_reference"]
METHODS: tuple[str, ...] = ("between_groups", "to_overall", "vs_reference")

__all__ = ["METHODS", "Method", "check_method", "compare_cells", "compare_values"]


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown comparison method {method!r}; use one of {', '.join(METHODS)}")
    return method


def _nanmax(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(x, axis=-1)


def _nanmin(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmin(x, axis=-1)


def _fold(r: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > 1, 1.0 / r, r)


def compare_values(
    values: np.ndarray,
    overall: np.ndarray | None,
    kind: Literal["difference", "ratio"],
    method: str,
    ref_value: np.ndarray | None = None,
    rest_value: np.ndarray | None = None,
) -> np.ndarray:
    """Compare per-group values (..., G) (NaN = excluded) by ``method``; returns shape (...)."""
    check_method(method)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "between_groups":
            # fewer than one estimable group -> NaN (nanmax of all-NaN)
            hi, lo = _nanmax(values), _nanmin(values)
            return hi - lo if kind == "difference" else lo / hi
        if method == "to_overall":
            assert overall is not None
            o = np.asarray(overall)[..., None]
            if kind == "difference":
                return _nanmax(np.abs(values - o))
            return _nanmin(_fold(values / o))
        assert ref_value is not None and rest_value is not None
        return rest_value - ref_value if kind == "difference" else rest_value / ref_value


def compare_cells(
    cells: np.ndarray,
    metric: str,
    kind: Literal["difference", "ratio"],
    method: str,
    valid: np.ndarray | None = None,
    reference: int | None = None,
) -> np.ndarray:
    """Compare groups on rate ``metric`` computed from ``cells`` (..., G, 4).

    Args:
        valid: (G,) bool mask of estimable groups; others are excluded (never read as 0).
        reference: group code of the reference (privileged) group, for ``vs_reference``.
    """
    check_method(method)
    values = rate_from_cells(cells, metric)
    if valid is not None:
        values = np.where(valid, values, np.nan)
    overall = rate_from_cells(cells.sum(-2), metric)
    if method == "vs_reference":
        if reference is None:
            raise ValueError("method='vs_reference' needs a reference group (reference=...)")
        ref_cells = cells[..., reference, :]
        rest_cells = cells.sum(-2) - ref_cells
        ref_v = rate_from_cells(ref_cells, metric)
        rest_v = rate_from_cells(rest_cells, metric)
        return compare_values(values, overall, kind, method, ref_v, rest_v)
    return compare_values(values, overall, kind, method)
