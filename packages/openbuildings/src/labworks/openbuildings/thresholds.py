"""Confidence thresholds per precision level and stratum (region, terrain, ...).

Open Buildings publishes, per region, the score thresholds that reach 80/85/90% precision, but no tool
to compute them. :func:`fit_thresholds` fits them on held-out detections already matched to ground
truth (``is_tp`` at IoU 0.5, e.g. from :func:`labworks.openbuildings.evaluate.match_by_score`);
:class:`ThresholdTable` is a JSON-serialisable config that travels inside model metadata;
:func:`apply_thresholds` filters new detections with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field, field_serializer, field_validator, model_validator

from labworks.core import Config

__all__ = ["POOLED", "ThresholdTable", "apply_thresholds", "fit_thresholds"]

#: name of the stratum fitted on all detections; unknown strata fall back to it
POOLED = "all"


def precision_key(p: float) -> str:
    """Key of a precision level in :attr:`ThresholdTable.thresholds` (``0.85 -> "0.85"``)."""
    return repr(float(p))


def _inf_to_str(d: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float | str]]:
    return {s: {k: (v if math.isfinite(v) else "inf") for k, v in m.items()} for s, m in d.items()}


class ThresholdTable(Config):
    """Score thresholds ``{stratum: {precision_key: threshold}}``, with the pooled stratum ``"all"``.

    A threshold of ``inf`` means the precision level was not reached on the fitting data (nothing is
    kept); it is stored as the string ``"inf"`` in JSON. ``counts`` holds the detections each stratum
    was fitted on; strata listed in ``pooled_strata`` had fewer than ``min_count`` and use the pooled
    values. ``recall`` (when ground-truth counts were given) is the fit-set recall at each threshold.
    """

    precisions: tuple[float, ...] = Field(min_length=1)
    thresholds: dict[str, dict[str, float]]
    counts: dict[str, int] = Field(default_factory=dict)
    recall: dict[str, dict[str, float]] = Field(default_factory=dict)
    pooled_strata: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @field_validator("precisions")
    @classmethod
    def _check_precisions(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        for p in v:
            if not 0.0 < p <= 1.0:
                raise ValueError(f"precision levels must be in (0, 1], got {p}")
        if len(set(v)) != len(v):
            raise ValueError(f"precision levels must be distinct, got {v}")
        return v

    @model_validator(mode="after")
    def _check_table(self) -> ThresholdTable:
        if POOLED not in self.thresholds:
            raise ValueError(f"thresholds must contain the pooled stratum {POOLED!r}")
        want = {precision_key(p) for p in self.precisions}
        for s, m in self.thresholds.items():
            if set(m) != want:
                raise ValueError(f"stratum {s!r} has precision keys {sorted(m)}, expected {sorted(want)}")
            for k, t in m.items():
                if math.isnan(t):
                    raise ValueError(f"threshold {s!r}/{k} is NaN")
        return self

    @field_serializer("thresholds", "recall", when_used="json")
    def _ser_inf(self, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float | str]]:
        return _inf_to_str(v)

    @property
    def strata(self) -> tuple[str, ...]:
        return tuple(self.thresholds)

    def threshold(self, stratum: str, precision: float) -> float:
        """Score threshold for ``stratum`` at ``precision``; unknown strata use the pooled ``"all"``."""
        key = precision_key(precision)
        if key not in self.thresholds[POOLED]:
            raise KeyError(f"precision {precision} not fitted; available: {list(self.precisions)}")
        return self.thresholds.get(str(stratum), self.thresholds[POOLED])[key]


def _as_np(x: Any, dtype: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype).reshape(-1)


def _fit_one(
    scores: np.ndarray, is_tp: np.ndarray, precisions: Sequence[float], n_gt: int | None
) -> tuple[dict[str, float], dict[str, float]]:
    """Smallest observed score t with precision({score >= t}) >= p, per p (inf if none)."""
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], is_tp[order]
    out: dict[str, float] = {}
    rec: dict[str, float] = {}
    if len(s):
        tps = np.cumsum(t)
        last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # end of each tie group: all with score >= s
        prec = tps[last] / (last + 1.0)
    for p in precisions:
        key = precision_key(p)
        ok = np.flatnonzero(prec >= p) if len(s) else np.zeros(0, np.int64)
        if len(ok):
            j = last[ok[-1]]
            out[key] = float(s[j])
            if n_gt:
                rec[key] = float(tps[j] / n_gt)
        else:
            out[key] = math.inf
            if n_gt:
                rec[key] = 0.0
    return out, rec


def fit_thresholds(
    scores: np.ndarray | torch.Tensor | Sequence[float],
    is_tp: np.ndarray | torch.Tensor | Sequence[bool],
    strata: np.ndarray | Sequence[str] | None = None,
    *,
    precisions: Sequence[float] = (0.8, 0.85, 0.9),
    n_gt: int | Mapping[str, int] | None = None,
    min_count: int = 20,
) -> ThresholdTable:
    """Fit, per stratum and precision level p, the smallest score threshold t such that the detections
    with ``score >= t`` have precision ``>= p`` on this (held-out, matched) data.

    The smallest such t keeps the most detections (maximal recall) at that precision; it is always one
    of the observed scores. If no threshold reaches p, t = ``inf`` (nothing kept) and a note says so.
    The pooled stratum ``"all"`` is fitted on every detection; a stratum with fewer than ``min_count``
    detections copies the pooled thresholds (listed in ``pooled_strata``).

    Args:
        scores: (D,) detection confidences.
        is_tp: (D,) whether each detection matched a ground truth (e.g. IoU >= 0.5).
        strata: (D,) stratum name per detection; None = pooled only.
        precisions: target precision levels in (0, 1].
        n_gt: ground-truth count (pooled int, or per stratum incl. ``"all"``) to record fit-set recall.
        min_count: minimum detections for a stratum to get its own thresholds.
    """
    s = _as_np(scores, np.float64)
    t = _as_np(is_tp, None)
    if s.shape != t.shape:
        raise ValueError(f"scores ({s.size}) and is_tp ({t.size}) differ in length")
    if t.dtype != np.bool_:
        if t.size and not np.isin(t, (0, 1)).all():
            raise ValueError("is_tp must be boolean (or 0/1)")
        t = t.astype(bool)
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if min_count < 0:
        raise ValueError(f"min_count must be >= 0, got {min_count}")
    precisions = tuple(float(p) for p in precisions)
    for p in precisions:
        if not 0.0 < p <= 1.0:
            raise ValueError(f"precision levels must be in (0, 1], got {p}")
    if strata is None:
        st = np.full(len(s), POOLED, dtype=object)
    else:
        st = np.asarray([str(x) for x in _as_np(strata, object)], dtype=object)
        if st.shape != s.shape:
            raise ValueError(f"strata ({st.size}) and scores ({s.size}) differ in length")
    if isinstance(n_gt, Mapping):
        gt_counts: dict[str, int] = {str(k): int(v) for k, v in n_gt.items()}
    else:
        gt_counts = {POOLED: int(n_gt)} if n_gt is not None else {}

    notes: list[str] = []
    thresholds: dict[str, dict[str, float]] = {}
    recall: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {POOLED: len(s)}
    pooled_thr, pooled_rec = _fit_one(s, t, precisions, gt_counts.get(POOLED))
    thresholds[POOLED] = pooled_thr
    if pooled_rec:
        recall[POOLED] = pooled_rec
    for key, v in pooled_thr.items():
        if math.isinf(v):
            notes.append(
                f"stratum {POOLED!r}: precision {key} not reached on {len(s)} detections (threshold inf)"
            )
    pooled_strata: list[str] = []
    for name in sorted(set(st.tolist()) - {POOLED}):
        sel = st == name
        counts[name] = int(sel.sum())
        if counts[name] < min_count:
            thresholds[name] = dict(pooled_thr)
            pooled_strata.append(name)
            notes.append(
                f"stratum {name!r}: {counts[name]} detections < min_count {min_count}, pooled thresholds used"
            )
            continue
        thr, rec = _fit_one(s[sel], t[sel], precisions, gt_counts.get(name))
        thresholds[name] = thr
        if rec:
            recall[name] = rec
        for key, v in thr.items():
            if math.isinf(v):
                notes.append(
                    f"stratum {name!r}: precision {key} not reached on {counts[name]} detections (threshold inf)"
                )
    return ThresholdTable(
        precisions=precisions,
        thresholds=thresholds,
        counts=counts,
        recall=recall,
        pooled_strata=tuple(pooled_strata),
        notes=tuple(notes),
    )


def apply_thresholds(
    scores: np.ndarray | torch.Tensor | Sequence[float],
    strata: np.ndarray | Sequence[str] | str | None,
    table: ThresholdTable,
    precision: float,
) -> np.ndarray:
    """Keep mask (D,) bool: ``score >= table.threshold(stratum, precision)`` per detection.

    ``strata`` is one name per detection, a single name for all, or None (pooled thresholds).
    """
    s = _as_np(scores, np.float64)
    if strata is None or isinstance(strata, str):
        return s >= table.threshold(POOLED if strata is None else strata, precision)
    st = _as_np(strata, object)
    if st.shape != s.shape:
        raise ValueError(f"strata ({st.size}) and scores ({s.size}) differ in length")
    names, inverse = np.unique(np.asarray([str(x) for x in st.tolist()], dtype=str), return_inverse=True)
    per_name = np.array([table.threshold(str(n), precision) for n in names], np.float64)
    return s >= per_name[inverse.reshape(-1)] if len(s) else np.zeros(0, bool)
