"""Building-detection metrics: SpaceNet F1 on polygons and rasters, AP/mAP, pixel IoU and pooled reports.

Two matching rules live here, and each function names the one it uses:

* **SpaceNet rule** (solaris ``Evaluator.eval_iou``; :func:`spacenet_f1`, :func:`raster_f1`):
  proposals are visited in a fixed order (file order, or confidence descending); each takes the
  *remaining* ground-truth instance of highest IoU and removes it only if that IoU is ``> miniou``;
  a proposal counts as a true positive when its recorded IoU is ``>= miniou`` (the recorded IoU is 0
  for a proposal that removed nothing, so for ``miniou > 0`` TP means "matched with IoU > miniou").
  ``P = TP/(TP+FP)``, ``R = TP/(TP+FN)``, ``F1 = 2PR/(P+R)``, each 0 when its denominator is 0.
* **COCO rule** (:func:`match_by_score`, AP/mAP): detections sorted by score descending (stable);
  each takes the unmatched ground truth of highest IoU among those with IoU ``>= threshold``
  (pycocotools ties: the later ground truth wins); each ground truth is used once.

Raster-native matching never builds polygons: a single ``bincount`` over ``gt * (Q + 1) + pred``
gives every instance intersection (:func:`instance_iou_matrix`), on any torch device.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
import torch
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from labworks.core import atomic_write_text

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "Detections",
    "F1Result",
    "Report",
    "average_precision",
    "evaluate",
    "evaluate_instances",
    "instance_iou_matrix",
    "match_by_score",
    "pr_curve",
    "raster_f1",
    "read_spacenet_csv",
    "size_histogram",
    "spacenet_f1",
    "spacenet_f1_csv",
]

#: IoU thresholds of COCO mAP, built exactly as pycocotools builds them (0.50:0.05:0.95).
COCO_IOU_THRESHOLDS: tuple[float, ...] = tuple(
    float(t) for t in np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
)
_COCO_REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
_DENSE_LIMIT = 400_000_000  # entries of a dense (G+1) x (Q+1) count matrix

#: an (H, W) integer instance-label map, numpy or torch (any device)
Labels = np.ndarray | torch.Tensor
#: per-detection confidences
Scores = np.ndarray | torch.Tensor | Sequence[float]


# ---------------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class F1Result:
    """Counts and scores of one SpaceNet-style evaluation.

    ``ious`` (n_proposals,) float64: the IoU each proposal recorded with the ground truth it matched,
    0 for a proposal that matched nothing, in the order the proposals were given (not visit order).
    """

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    ious: np.ndarray

    @classmethod
    def from_counts(cls, tp: int, fp: int, fn: int, ious: np.ndarray | None = None) -> F1Result:
        """P, R and F1 with solaris's conventions (each is 0 when its denominator or P*R is 0)."""
        precision = tp / float(tp + fp) if tp + fp > 0 else 0.0
        recall = tp / float(tp + fn) if tp + fn > 0 else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision * recall > 0 else 0.0
        arr = np.zeros(0, np.float64) if ious is None else np.asarray(ious, np.float64)
        return cls(int(tp), int(fp), int(fn), float(precision), float(recall), float(f1), arr)

    @classmethod
    def pooled(cls, results: Iterable[F1Result]) -> F1Result:
        """Sum TP/FP/FN over images and recompute P/R/F1 (SpaceNet's pooling); ious concatenated."""
        rs = list(results)
        ious = np.concatenate([r.ious for r in rs]) if rs else np.zeros(0)
        return cls.from_counts(sum(r.tp for r in rs), sum(r.fp for r in rs), sum(r.fn for r in rs), ious)

    def to_dict(self) -> dict[str, float]:
        """Counts and scores as plain numbers (without the per-proposal ``ious``)."""
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


# ---------------------------------------------------------------------------------------------------
# shared sequential matchers (sparse candidate pairs, exact greedy semantics)
# ---------------------------------------------------------------------------------------------------
def _greedy_match(
    n_pred: int,
    pi: np.ndarray,
    gi: np.ndarray,
    iou: np.ndarray,
    rank: np.ndarray,
    tie: Literal["first", "last"],
) -> np.ndarray:
    """Greedy one-to-one matching over candidate pairs ``(pi[k], gi[k])`` with value ``iou[k]``.

    Predictions are visited by increasing ``rank`` (n_pred,); each takes, among its candidates whose
    ground truth is still free, the one of highest IoU (ties: lowest gt index for ``"first"``,
    highest for ``"last"``). Only pairs that qualify for a match may be passed. Returns the matched gt
    index per prediction (n_pred,) int64, -1 where none.
    """
    matched = np.full(n_pred, -1, np.int64)
    if len(pi) == 0:
        return matched
    # fast path: every prediction and every gt occurs in at most one candidate pair -> no conflict
    if len(np.unique(pi)) == len(pi) and len(np.unique(gi)) == len(gi):
        matched[pi] = gi
        return matched
    order = np.lexsort((gi, rank[pi]))  # by visit rank, then gt index
    pi, gi, iou = pi[order], gi[order], iou[order]
    starts = np.flatnonzero(np.r_[True, pi[1:] != pi[:-1]])
    ends = np.r_[starts[1:], len(pi)]
    taken: set[int] = set()
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        best_v, best_g = -math.inf, -1
        for k in range(s, e):
            g = int(gi[k])
            if g in taken:
                continue
            v = float(iou[k])
            if v > best_v or (tie == "last" and v == best_v):
                best_v, best_g = v, g
        if best_g >= 0:
            taken.add(best_g)
            matched[pi[s]] = best_g
    return matched


def _visit_rank(n: int, scores: np.ndarray | None) -> np.ndarray:
    """Visit rank per proposal: input order, or score descending with ties in input order."""
    if scores is None:
        return np.arange(n, dtype=np.int64)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    return rank


def _pair_values(pi: np.ndarray, gi: np.ndarray, iou: np.ndarray, matched: np.ndarray) -> np.ndarray:
    """IoU of each prediction with its matched gt (0 where ``matched == -1``); pairs in any order."""
    out = np.zeros(len(matched), np.float64)
    sel = np.flatnonzero(matched >= 0)
    if len(sel) == 0:
        return out
    n = int(max(gi.max(initial=0), matched.max())) + 1
    keys = pi * n + gi
    order = np.argsort(keys, kind="stable")
    pos = np.searchsorted(keys[order], sel * n + matched[sel])
    out[sel] = iou[order[pos]]
    return out


def _spacenet_from_pairs(
    n_pred: int,
    n_gt: int,
    pi: np.ndarray,
    gi: np.ndarray,
    iou: np.ndarray,
    rank: np.ndarray,
    miniou: float,
    fn_mask: np.ndarray | None = None,
) -> F1Result:
    """solaris's rule on candidate pairs (see the module docstring).

    ``fn_mask`` (n_gt,) bool: ground truth that counts as FN when left unmatched (default: all).
    """
    strong = iou > miniou
    matched = _greedy_match(n_pred, pi[strong], gi[strong], iou[strong], rank, tie="first")
    rec = _pair_values(pi[strong], gi[strong], iou[strong], matched)
    tp = int(np.count_nonzero(rec >= miniou))
    remaining = np.ones(n_gt, bool) if fn_mask is None else fn_mask.copy()
    remaining[matched[matched >= 0]] = False
    return F1Result.from_counts(tp, n_pred - tp, int(np.count_nonzero(remaining)), rec)


def _check_miniou(miniou: float) -> float:
    v = float(miniou)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"miniou must be in [0, 1], got {miniou}")
    return v


# ---------------------------------------------------------------------------------------------------
# polygons (SpaceNet / solaris)
# ---------------------------------------------------------------------------------------------------
def _geom_array(geoms: Sequence[BaseGeometry | None], name: str) -> np.ndarray:
    items = list(geoms)
    arr = np.empty(len(items), dtype=object)
    for i, g in enumerate(items):
        if g is None:
            arr[i] = Polygon()
        elif isinstance(g, BaseGeometry):
            arr[i] = g
        else:
            raise TypeError(f"{name}[{i}] is a {type(g).__name__}, expected a shapely geometry")
    return arr


def _polygon_pairs(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs (pred, gt) that intersect, with solaris's IoU.

    Invalid proposals are repaired with ``buffer(0)``; a pair whose proposal (after repair) or ground
    truth is invalid scores 0; IoU = area(intersection) / area(union) as solaris computes it.
    Returns ``(pi, gi, iou, pred_fixed)`` with pairs sorted by (pi, gi).
    """
    pred_fixed = pred.copy()
    if len(pred_fixed):
        bad = ~shapely.is_valid(pred_fixed)
        if bad.any():
            pred_fixed[bad] = shapely.buffer(pred_fixed[bad], 0.0)
    if len(gt) == 0 or len(pred) == 0:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, np.float64), pred_fixed
    tree = shapely.STRtree(gt)
    try:
        pi, gi = tree.query(pred_fixed, predicate="intersects")
    except shapely.errors.GEOSException:  # an invalid geometry GEOS cannot test: check pair by pair
        bi, bg = tree.query(pred_fixed)
        ok = np.array([_safe_intersects(pred_fixed[a], gt[b]) for a, b in zip(bi, bg, strict=True)], bool)
        pi, gi = bi[ok], bg[ok]
    order = np.lexsort((gi, pi))
    pi, gi = pi[order].astype(np.int64), gi[order].astype(np.int64)
    iou = np.zeros(len(pi), np.float64)
    valid = shapely.is_valid(pred_fixed[pi]) & shapely.is_valid(gt[gi])
    if valid.any():
        a, b = pred_fixed[pi[valid]], gt[gi[valid]]
        inter = shapely.area(shapely.intersection(a, b))
        union = shapely.area(shapely.union(a, b))
        with np.errstate(invalid="ignore", divide="ignore"):
            iou[valid] = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return pi, gi, iou, pred_fixed


def _safe_intersects(a: BaseGeometry, b: BaseGeometry) -> bool:
    try:
        return bool(a.intersects(b))
    except shapely.errors.GEOSException:
        return False


def spacenet_f1(
    gt: Sequence[BaseGeometry],
    pred: Sequence[BaseGeometry],
    *,
    miniou: float = 0.5,
    order: Literal["file", "confidence"] = "file",
    confidence: np.ndarray | Sequence[float] | None = None,
) -> F1Result:
    """SpaceNet F1 of proposal polygons against ground-truth polygons, exactly as solaris scores it.

    Reproduces ``solaris.eval.base.Evaluator.eval_iou(miniou, calculate_class_scores=False)``:
    proposals are visited in ``order`` (``"file"``: as given; ``"confidence"``: by ``confidence``
    descending, ties in file order); each takes the remaining ground truth of highest IoU (ties: the
    earliest) and removes it only if IoU ``> miniou``; TP = proposals whose recorded IoU ``>= miniou``;
    FN = ground truth never removed. Invalid proposals are repaired with ``buffer(0)``, pairs with an
    invalid ground truth score 0, empty proposals are false positives; empty inputs give zeros.

    Note: solaris's ``Evaluator.load_proposal`` sorts proposals by confidence (pandas' unstable
    quicksort) before ``eval_iou``; ``order="confidence"`` is that, with a stable tie order.

    Candidate pairs come from a ``shapely.STRtree`` query and their areas from vectorised
    intersection/union, so the cost is O((N + M) log N + pairs), not O(N*M) Python calls.

    Args:
        gt: (M,) ground-truth geometries (None counts as empty).
        pred: (N,) proposal geometries in the same CRS.
        miniou: IoU threshold in [0, 1].
        order: visit order of the proposals.
        confidence: (N,) proposal confidences, required for ``order="confidence"``.
    """
    miniou = _check_miniou(miniou)
    g = _geom_array(gt, "gt")
    p = _geom_array(pred, "pred")
    if order not in ("file", "confidence"):
        raise ValueError(f"order must be 'file' or 'confidence', got {order!r}")
    conf: np.ndarray | None = None
    if order == "confidence":
        if confidence is None:
            raise ValueError("order='confidence' needs a confidence array")
        conf = np.asarray(confidence, np.float64).reshape(-1)
        if conf.shape != (len(p),):
            raise ValueError(f"confidence has {conf.size} values for {len(p)} proposals")
    pi, gi, iou, _ = _polygon_pairs(g, p)
    return _spacenet_from_pairs(len(p), len(g), pi, gi, iou, _visit_rank(len(p), conf), miniou)


def read_spacenet_csv(path: str | os.PathLike[str]) -> dict[str, list[tuple[int, Polygon, float]]]:
    """Read a SpaceNet (off-nadir / SN2 style) CSV into ``{ImageId: [(BuildingId, polygon, conf)]}``.

    Columns: ``ImageId``, ``PolygonWKT_Pix`` (pixel-space WKT), optionally ``BuildingId`` (else the row
    number within the image) and ``Confidence`` (else NaN; ground-truth files carry ``PolygonWKT_Geo``
    instead, which is ignored). A ``POLYGON EMPTY`` row marks an image without buildings: the image
    appears with no entries. Rows keep file order within each image.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"SpaceNet CSV not found: {p}")
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        reader.fieldnames = cols
        missing = {"ImageId", "PolygonWKT_Pix"} - set(cols)
        if missing:
            raise ValueError(f"{p.name}: missing column(s) {sorted(missing)}; found {cols}")
        rows = list(reader)
    wkts = [r["PolygonWKT_Pix"] or "POLYGON EMPTY" for r in rows]
    try:
        geoms = shapely.from_wkt(wkts)
    except shapely.errors.GEOSException as err:
        raise ValueError(f"{p.name}: invalid WKT in PolygonWKT_Pix: {err}") from None
    out: dict[str, list[tuple[int, Polygon, float]]] = {}
    for line, (r, g) in enumerate(zip(rows, geoms, strict=True), start=2):
        entries = out.setdefault(r["ImageId"], [])
        if g is None or g.is_empty:
            continue
        try:
            bid = int(float(r["BuildingId"])) if r.get("BuildingId") not in (None, "") else len(entries)
            conf = float(r["Confidence"]) if r.get("Confidence") not in (None, "") else math.nan
        except ValueError:
            raise ValueError(f"{p.name}, line {line}: BuildingId/Confidence is not a number: {r}") from None
        entries.append((bid, g, conf))
    return out


def spacenet_f1_csv(
    truth_csv: str | os.PathLike[str],
    pred_csv: str | os.PathLike[str],
    *,
    miniou: float = 0.5,
    min_area: float = 0.0,
) -> tuple[F1Result, dict[str, F1Result]]:
    """Score SpaceNet CSVs per image and pooled, as solaris ``Evaluator.eval_iou_spacenet_csv``.

    Per image: ground truth with area ``< min_area`` is dropped, proposals with area ``<= min_area``
    are ignored (never FP), proposals are visited by ``Confidence`` descending (ties in file order;
    file order when the column is absent); FN counts remaining ground truth of positive area. The
    pooled result sums TP/FP/FN over all images (SpaceNet's aggregate). Images are keyed by
    ``ImageId``; an image present in only one file is scored too (all FP or all FN).
    """
    miniou = _check_miniou(miniou)
    truth, preds = read_spacenet_csv(truth_csv), read_spacenet_csv(pred_csv)
    per_image: dict[str, F1Result] = {}
    for image_id in sorted(set(truth) | set(preds)):
        gts = [g for _, g, _ in truth.get(image_id, [])]
        props = preds.get(image_id, [])
        g_arr = _geom_array(gts, "gt")
        g_arr = g_arr[shapely.area(g_arr) >= min_area] if len(g_arr) else g_arr
        p_arr = _geom_array([g for _, g, _ in props], "pred")
        conf = np.array([c for _, _, c in props], np.float64)
        keep = shapely.area(p_arr) > min_area if len(p_arr) else np.zeros(0, bool)
        p_arr, conf = p_arr[keep], conf[keep]
        use_conf = None if (len(conf) == 0 or np.isnan(conf).all()) else np.nan_to_num(conf, nan=-np.inf)
        pi, gi, iou, _ = _polygon_pairs(g_arr, p_arr)
        # solaris counts as FN only the remaining ground truth of positive area
        fn_mask = shapely.area(g_arr) > 0 if len(g_arr) else np.zeros(0, bool)
        rank = _visit_rank(len(p_arr), use_conf)
        per_image[image_id] = _spacenet_from_pairs(len(p_arr), len(g_arr), pi, gi, iou, rank, miniou, fn_mask)
    return F1Result.pooled(per_image.values()), per_image


# ---------------------------------------------------------------------------------------------------
# rasters
# ---------------------------------------------------------------------------------------------------


def _check_labels(x: Labels, name: str) -> Labels:
    """Validate an (H, W) integer label map; CPU tensors become numpy views, others stay torch."""
    if isinstance(x, torch.Tensor):
        if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer label map, got dtype {x.dtype}")
        out: Labels = x.detach()
    elif isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"{name} must be an integer label map, got dtype {x.dtype}")
        out = x
    else:
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if out.ndim != 2:
        raise ValueError(f"{name} must be 2-D (H, W), got shape {tuple(out.shape)}")
    if out.shape[0] * out.shape[1] and int(out.min()) < 0:
        raise ValueError(f"{name} has negative labels (min {int(out.min())}); use 0 for background")
    return out


def _label_pair(gt_labels: Labels, pred_labels: Labels) -> tuple[Labels, Labels, torch.device]:
    """Both maps as int64 on one backend: numpy for CPU, torch for an accelerator (the torch input's)."""
    g = _check_labels(gt_labels, "gt_labels")
    q = _check_labels(pred_labels, "pred_labels")
    if tuple(g.shape) != tuple(q.shape):
        raise ValueError(f"gt_labels {tuple(g.shape)} and pred_labels {tuple(q.shape)} differ in shape")
    devices = {x.device for x in (g, q) if isinstance(x, torch.Tensor)}
    if len(devices) > 1:
        raise ValueError(
            f"gt_labels and pred_labels are on {sorted(map(str, devices))}: put them on one device"
        )
    device = devices.pop() if devices else torch.device("cpu")
    if device.type == "cpu":  # numpy is faster than torch for bincount on CPU; keep the input dtype
        gn = g.cpu().numpy() if isinstance(g, torch.Tensor) else g
        qn = q.cpu().numpy() if isinstance(q, torch.Tensor) else q
        return gn, qn, device
    gt_t = (g if isinstance(g, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(g))).to(
        device, torch.int64
    )
    qt_t = (q if isinstance(q, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(q))).to(
        device, torch.int64
    )
    return gt_t, qt_t, device


def _max_id(x: Labels) -> int:
    return int(x.max()) if x.shape[0] * x.shape[1] else 0


def _pair_counts(g: Labels, q: Labels, n_g: int, n_q: int) -> Labels:
    """Dense (G+1, Q+1) pixel counts ``C[i, j] = #{g == i and q == j}`` via one bincount."""
    size = (n_g + 1) * (n_q + 1)
    if isinstance(g, torch.Tensor):
        assert isinstance(q, torch.Tensor)
        return torch.bincount((g * (n_q + 1) + q).reshape(-1), minlength=size).reshape(n_g + 1, n_q + 1)
    assert isinstance(q, np.ndarray)
    key = np.multiply(g, n_q + 1, dtype=np.int64, casting="unsafe")
    np.add(key, q, out=key, casting="unsafe")
    return np.bincount(key.reshape(-1), minlength=size).reshape(n_g + 1, n_q + 1)


def instance_iou_matrix(gt_labels: Labels, pred_labels: Labels) -> torch.Tensor:
    """Dense IoU between every ground-truth and predicted instance of two label maps.

    ``C = bincount(g * (Q + 1) + q)`` reshaped to (G+1, Q+1) holds all pairwise pixel counts (row/col 0
    = background); ``IoU = C[1:, 1:] / (rowsum + colsum - C[1:, 1:])``. Ids absent from a map get IoU 0.

    Args:
        gt_labels: (H, W) int labels, 0 = background, 1..G (numpy or torch, any device).
        pred_labels: (H, W) int labels, 0 = background, 1..Q.

    Returns:
        (G, Q) float64 tensor on the device of the torch input (CPU for numpy input), where
        G = gt_labels.max() and Q = pred_labels.max(). Memory is O(G*Q); :func:`raster_f1` and
        :func:`evaluate_instances` use a sparse path instead when G*Q is large.
    """
    g, q, device = _label_pair(gt_labels, pred_labels)
    n_g, n_q = _max_id(g), _max_id(q)
    if (n_g + 1) * (n_q + 1) > _DENSE_LIMIT:
        raise ValueError(
            f"dense IoU matrix of {n_g} x {n_q} instances is too large; use raster_f1/evaluate_instances"
        )
    counts = _pair_counts(g, q, n_g, n_q)
    c = (
        counts.to(torch.float64)
        if isinstance(counts, torch.Tensor)
        else torch.from_numpy(counts.astype(np.float64))
    )
    c = c.to(device)
    inter = c[1:, 1:]
    union = c.sum(1)[1:, None] + c.sum(0)[None, 1:] - inter
    return torch.where(union > 0, inter / union.clamp_min(1.0), torch.zeros_like(inter))


@dataclass
class _RasterPairs:
    """Sparse overlap structure of two label maps (numpy, CPU)."""

    gt_ids: np.ndarray  # (G',) present gt ids, ascending
    pred_ids: np.ndarray  # (Q',) present pred ids, ascending
    gt_area: np.ndarray  # (G',) pixels
    pred_area: np.ndarray  # (Q',) pixels
    pi: np.ndarray  # (K,) index into pred_ids
    gi: np.ndarray  # (K,) index into gt_ids
    iou: np.ndarray  # (K,) float64
    pixel_tp: int
    pixel_fp: int
    pixel_fn: int


def _np(x: Labels) -> np.ndarray:
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else x


def _raster_pairs(gt_labels: Labels, pred_labels: Labels) -> _RasterPairs:
    """All overlapping (pred, gt) instance pairs with IoU, instance areas and pixel TP/FP/FN.

    One bincount over ``g * (Q + 1) + q`` when the (G+1) x (Q+1) table is small (a few bytes per
    pixel), else a sort-based unique over the foreground pixels; both exact.
    """
    g, q, _ = _label_pair(gt_labels, pred_labels)
    n_g, n_q = _max_id(g), _max_id(q)
    n_pix = int(g.shape[0] * g.shape[1])
    if (n_g + 1) * (n_q + 1) <= max(4 * n_pix, 1 << 22):
        c = _np(_pair_counts(g, q, n_g, n_q))
        ga_all, qa_all = c.sum(1)[1:], c.sum(0)[1:]  # instance areas (incl. background overlap)
        flat = np.flatnonzero(c)
        r, k = np.divmod(flat, n_q + 1)
        fg = (r > 0) & (k > 0)
        gid0, qid0 = r[fg] - 1, k[fg] - 1
        inter = c.reshape(-1)[flat[fg]].astype(np.float64)
        pix_tp = int(inter.sum())
        pix_fp, pix_fn = int(c[0, 1:].sum()), int(c[1:, 0].sum())
    else:
        gf, qf = g.reshape(-1), q.reshape(-1)
        if isinstance(gf, torch.Tensor):
            assert isinstance(qf, torch.Tensor)
            ga_all = _np(torch.bincount(gf, minlength=n_g + 1))[1:]
            qa_all = _np(torch.bincount(qf, minlength=n_q + 1))[1:]
            both_t = (gf > 0) & (qf > 0)
            keys_t, cnt_t = torch.unique(gf[both_t] * (n_q + 1) + qf[both_t], return_counts=True)
            keys, cnt = _np(keys_t), _np(cnt_t)
        else:
            ga_all = np.bincount(gf, minlength=n_g + 1)[1:]
            qa_all = np.bincount(qf, minlength=n_q + 1)[1:]
            both = (gf > 0) & (qf > 0)
            keys, cnt = np.unique(gf[both] * (n_q + 1) + qf[both], return_counts=True)
        gid0, qid0 = keys // (n_q + 1) - 1, keys % (n_q + 1) - 1
        inter = cnt.astype(np.float64)
        pix_tp = int(cnt.sum())
        pix_fp, pix_fn = int(qa_all.sum()) - pix_tp, int(ga_all.sum()) - pix_tp
    gt_ids = np.flatnonzero(ga_all) + 1
    pred_ids = np.flatnonzero(qa_all) + 1
    iou = inter / (ga_all[gid0] + qa_all[qid0] - inter)
    gi = np.searchsorted(gt_ids, gid0 + 1)
    pi = np.searchsorted(pred_ids, qid0 + 1)
    order = np.lexsort((gi, pi))
    return _RasterPairs(
        gt_ids,
        pred_ids,
        ga_all[gt_ids - 1].astype(np.int64),
        qa_all[pred_ids - 1].astype(np.int64),
        pi[order].astype(np.int64),
        gi[order].astype(np.int64),
        iou[order],
        pix_tp,
        pix_fp,
        pix_fn,
    )


def _scores_for(pred_ids: np.ndarray, scores: Scores | None) -> np.ndarray | None:
    if scores is None:
        return None
    s = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    s = s.astype(np.float64).reshape(-1)
    n_q = int(pred_ids.max()) if len(pred_ids) else 0
    if len(s) < n_q:
        raise ValueError(
            f"scores has {len(s)} entries but pred_labels has ids up to {n_q} (scores[i-1] is id i)"
        )
    if not np.isfinite(s[pred_ids - 1]).all():
        raise ValueError("scores of present predictions must be finite")
    return s[pred_ids - 1]


def raster_f1(
    gt_labels: Labels,
    pred_labels: Labels,
    *,
    miniou: float = 0.5,
    scores: Scores | None = None,
) -> F1Result:
    """SpaceNet F1 (solaris rule, see :func:`spacenet_f1`) computed on instance label maps.

    Proposals are the predicted ids present in ``pred_labels``, visited in ascending id order, or by
    ``scores`` descending (``scores[i-1]`` belongs to id ``i``; ties in id order). Gives the same counts
    as :func:`spacenet_f1` on the polygonized masks (pixel-exact areas) with the same proposal order.
    ``ious`` has one entry per present predicted id, ascending.
    """
    miniou = _check_miniou(miniou)
    pr = _raster_pairs(gt_labels, pred_labels)
    s = _scores_for(pr.pred_ids, scores)
    n_q = len(pr.pred_ids)
    return _spacenet_from_pairs(n_q, len(pr.gt_ids), pr.pi, pr.gi, pr.iou, _visit_rank(n_q, s), miniou)


def match_by_score(
    iou: torch.Tensor | np.ndarray,
    scores: torch.Tensor | np.ndarray,
    *,
    iou_threshold: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """COCO greedy matching of detections to ground truth by descending confidence.

    Detections are visited by ``scores`` descending (stable: ties in index order); each takes the
    still-unmatched ground truth of highest IoU among those with IoU ``>= min(iou_threshold, 1-1e-10)``
    (pycocotools' rule; equal IoUs go to the later ground truth); each ground truth is used once.

    Args:
        iou: (G, Q) IoU matrix, e.g. from :func:`instance_iou_matrix`.
        scores: (Q,) detection confidences.
        iou_threshold: IoU needed for a match.

    Returns:
        ``is_tp`` (Q,) bool and ``matched_gt`` (Q,) int64 (gt index, -1 for none), on ``iou``'s device.
    """
    m = torch.as_tensor(iou)
    if m.ndim != 2:
        raise ValueError(f"iou must be 2-D (G, Q), got shape {tuple(m.shape)}")
    s = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    s = s.astype(np.float64).reshape(-1)
    n_q = int(m.shape[1])
    if s.shape != (n_q,):
        raise ValueError(f"scores has {s.size} entries for {n_q} detections (iou columns)")
    thr = min(float(iou_threshold), 1 - 1e-10)
    cand = (m >= thr).nonzero().cpu().numpy()
    gi, pi = cand[:, 0].astype(np.int64), cand[:, 1].astype(np.int64)
    vals = m.detach()[gi, pi].to(torch.float64).cpu().numpy() if len(gi) else np.zeros(0)
    matched = _greedy_match(n_q, pi, gi, vals, _visit_rank(n_q, s), tie="last")
    out = torch.from_numpy(matched).to(m.device)
    return out >= 0, out


def _coco_match_pairs(pr: _RasterPairs, rank: np.ndarray, thr: float) -> np.ndarray:
    c = pr.iou >= min(thr, 1 - 1e-10)
    return _greedy_match(len(pr.pred_ids), pr.pi[c], pr.gi[c], pr.iou[c], rank, tie="last")


# ---------------------------------------------------------------------------------------------------
# AP
# ---------------------------------------------------------------------------------------------------
def _ranked(scores: Any, is_tp: Any, n_gt: int) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores.detach().cpu() if isinstance(scores, torch.Tensor) else scores, np.float64).reshape(
        -1
    )
    t = np.asarray(is_tp.detach().cpu() if isinstance(is_tp, torch.Tensor) else is_tp).reshape(-1)
    if s.shape != t.shape:
        raise ValueError(f"scores ({s.size}) and is_tp ({t.size}) differ in length")
    if t.dtype != np.bool_:
        if t.size and not np.isin(t, (0, 1)).all():
            raise ValueError("is_tp must be boolean (or 0/1)")
        t = t.astype(bool)
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    if int(n_gt) < 0:
        raise ValueError(f"n_gt must be >= 0, got {n_gt}")
    if int(np.count_nonzero(t)) > int(n_gt):
        raise ValueError(f"is_tp has {int(np.count_nonzero(t))} true positives but n_gt is {n_gt}")
    order = np.argsort(-s, kind="mergesort")
    return s[order], t[order]


def average_precision(
    scores: Scores,
    is_tp: np.ndarray | torch.Tensor | Sequence[bool],
    n_gt: int,
    *,
    method: Literal["voc", "coco101"] = "voc",
) -> float:
    """Average precision of ranked detections against ``n_gt`` ground-truth instances.

    Detections are ranked by score descending (stable); ``precision_k = TP_k / k``,
    ``recall_k = TP_k / n_gt``; the precision envelope is ``p~(r) = max_{r' >= r} p(r')``.

    * ``"voc"``: all-points interpolation (PASCAL VOC 2010+ devkit):
      ``AP = sum_k (r_k - r_{k-1}) * p~(r_k)`` over the points where recall changes, with recall
      padded by 0 and 1 and precision by 0 (the exact area under the envelope).
    * ``"coco101"``: 101-point interpolation as pycocotools ``COCOeval.accumulate``:
      ``AP = mean_{r in {0, 0.01, ..., 1}} p~(first k with recall_k >= r)`` (0 past the last recall),
      with pycocotools' ``precision = TP / (TP + FP + eps)``.

    ``n_gt == 0`` gives NaN (AP undefined); no detections with ``n_gt > 0`` gives 0.
    """
    s, t = _ranked(scores, is_tp, n_gt)
    if n_gt == 0:
        return math.nan
    if len(s) == 0:
        return 0.0
    tps = np.cumsum(t).astype(np.float64)
    fps = np.cumsum(~t).astype(np.float64)
    rc = tps / n_gt
    if method == "voc":
        pr = tps / (tps + fps)
        mrec = np.concatenate(([0.0], rc, [1.0]))
        mpre = np.concatenate(([0.0], pr, [0.0]))
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        i = np.flatnonzero(mrec[1:] != mrec[:-1])
        return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    if method == "coco101":
        pr = tps / (fps + tps + np.spacing(1))
        pr = np.maximum.accumulate(pr[::-1])[::-1]
        inds = np.searchsorted(rc, _COCO_REC_THRS, side="left")
        q = np.where(inds < len(pr), pr[np.minimum(inds, len(pr) - 1)], 0.0)
        return float(np.mean(q))
    raise ValueError(f"method must be 'voc' or 'coco101', got {method!r}")


def pr_curve(
    scores: Scores,
    is_tp: np.ndarray | torch.Tensor | Sequence[bool],
    n_gt: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (non-interpolated) precision-recall curve, one point per distinct score.

    Returns ``precision`` (K,), ``recall`` (K,) and ``thresholds`` (K,) with thresholds descending:
    point k describes the detections with ``score >= thresholds[k]``. Recall is NaN when ``n_gt == 0``.
    """
    s, t = _ranked(scores, is_tp, n_gt)
    if len(s) == 0:
        z = np.zeros(0, np.float64)
        return z, z.copy(), z.copy()
    tps = np.cumsum(t).astype(np.float64)
    k = np.arange(1, len(s) + 1, dtype=np.float64)
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # last index of each tie group
    precision = tps[last] / k[last]
    recall = tps[last] / n_gt if n_gt > 0 else np.full(len(last), math.nan)
    return precision, recall, s[last].copy()


# ---------------------------------------------------------------------------------------------------
# per-image and pooled evaluation
# ---------------------------------------------------------------------------------------------------
@dataclass
class Detections:
    """Detections of one image (or a pool of images) at one IoU threshold, ready for AP.

    ``scores`` (D,) float64, ``is_tp`` (D,) bool, ``ious`` (D,) float64 matched IoU (0 if FP),
    ``n_gt`` ground-truth instances, ``stratum`` label (e.g. a region or terrain).
    """

    scores: np.ndarray
    is_tp: np.ndarray
    n_gt: int
    stratum: str = "all"
    ious: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, np.float64).reshape(-1)
        self.is_tp = np.asarray(self.is_tp, bool).reshape(-1)
        if self.scores.shape != self.is_tp.shape:
            raise ValueError(f"scores ({self.scores.size}) and is_tp ({self.is_tp.size}) differ in length")
        if self.ious is not None:
            self.ious = np.asarray(self.ious, np.float64).reshape(-1)
            if self.ious.shape != self.scores.shape:
                raise ValueError(f"ious ({self.ious.size}) and scores ({self.scores.size}) differ in length")

    @classmethod
    def concat(cls, items: Iterable[Detections], stratum: str = "all") -> Detections:
        """Pool detections of several images (image order kept; AP ranks ties in that order)."""
        xs = list(items)
        if not xs:
            return cls(np.zeros(0), np.zeros(0, bool), 0, stratum, np.zeros(0))
        ious = [x.ious if x.ious is not None else np.zeros(len(x.scores)) for x in xs]
        return cls(
            np.concatenate([x.scores for x in xs]),
            np.concatenate([x.is_tp for x in xs]),
            sum(x.n_gt for x in xs),
            stratum,
            np.concatenate(ious),
        )

    def average_precision(self, method: Literal["voc", "coco101"] = "voc") -> float:
        return average_precision(self.scores, self.is_tp, self.n_gt, method=method)


def _safe_ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else math.nan


def evaluate_instances(
    gt_labels: Labels,
    pred_labels: Labels,
    scores: Scores,
    *,
    stratum: str = "all",
    iou_thresholds: Sequence[float] = (0.5,),
    score_threshold: float = 0.0,
    miniou: float = 0.5,
) -> dict[str, Any]:
    """Everything :func:`evaluate` pools, for one image, from one sparse overlap pass.

    Args:
        gt_labels, pred_labels: (H, W) int instance labels (0 = background).
        scores: per predicted id (``scores[i-1]`` is id ``i``; at least ``pred_labels.max()`` long).
        stratum: label carried into the detections.
        iou_thresholds: COCO matching thresholds for the detections (first one = the headline).
        score_threshold: SpaceNet F1 counts only predictions with ``score >= score_threshold``.
        miniou: IoU threshold of the SpaceNet F1.

    Returns a dict with ``detections`` ({threshold: :class:`Detections`}), ``f1`` (:class:`F1Result`,
    SpaceNet rule, confidence order), ``pixel_tp/fp/fn``, ``pixel_iou`` and ``pixel_f1`` of the binary
    masks ``labels > 0`` (NaN when both are empty), ``matched_iou_mean`` (mean IoU of the true
    positives at the first threshold, NaN if none), ``n_gt``, ``n_pred``, ``gt_area_px`` (G',),
    ``gt_matched`` (G',) bool at the first threshold and ``pred_area_px`` (Q',).
    """
    if not iou_thresholds:
        raise ValueError("iou_thresholds must not be empty")
    pr = _raster_pairs(gt_labels, pred_labels)
    s = _scores_for(pr.pred_ids, scores)
    assert s is not None
    n_q, n_g = len(pr.pred_ids), len(pr.gt_ids)
    rank = _visit_rank(n_q, s)
    dets: dict[float, Detections] = {}
    gt_matched = np.zeros(n_g, bool)
    for k, thr in enumerate(iou_thresholds):
        matched = _coco_match_pairs(pr, rank, float(thr))
        is_tp = matched >= 0
        ious = _pair_values(pr.pi, pr.gi, pr.iou, matched)
        dets[float(thr)] = Detections(s, is_tp, n_g, stratum, ious)
        if k == 0:
            gt_matched[matched[is_tp]] = True
    keep = s >= score_threshold
    sub = np.flatnonzero(keep)
    remap = np.full(n_q, -1, np.int64)
    remap[sub] = np.arange(len(sub))
    pair_keep = keep[pr.pi]
    f1 = _spacenet_from_pairs(
        len(sub),
        n_g,
        remap[pr.pi[pair_keep]],
        pr.gi[pair_keep],
        pr.iou[pair_keep],
        _visit_rank(len(sub), s[sub]),
        _check_miniou(miniou),
    )
    first = dets[float(iou_thresholds[0])]
    tp_ious = first.ious[first.is_tp] if first.ious is not None else np.zeros(0)
    den_iou = pr.pixel_tp + pr.pixel_fp + pr.pixel_fn
    return {
        "stratum": stratum,
        "detections": dets,
        "f1": f1,
        "pixel_tp": pr.pixel_tp,
        "pixel_fp": pr.pixel_fp,
        "pixel_fn": pr.pixel_fn,
        "pixel_iou": _safe_ratio(pr.pixel_tp, den_iou),
        "pixel_f1": _safe_ratio(2 * pr.pixel_tp, 2 * pr.pixel_tp + pr.pixel_fp + pr.pixel_fn),
        "matched_iou_mean": float(tp_ious.mean()) if len(tp_ious) else math.nan,
        "n_gt": n_g,
        "n_pred": n_q,
        "gt_area_px": pr.gt_area,
        "gt_matched": gt_matched,
        "pred_area_px": pr.pred_area,
    }


def size_histogram(
    areas_m2: np.ndarray | Sequence[float], bins: np.ndarray | Sequence[float] | int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of footprint areas on log-spaced bins.

    Default bins: 30 log-spaced bins from 5 to 5000 m² (10 per decade), the range of the Open
    Buildings footprint-size plots; an int gives that many log-spaced bins over the same range.
    Areas outside the edges are clipped into the first/last bin, so ``counts.sum() == len(areas)``.
    Returns ``counts`` (B,) int64 and ``edges`` (B+1,) float64.
    """
    a = np.asarray(areas_m2, np.float64).reshape(-1)
    if not np.isfinite(a).all() or (a < 0).any():
        raise ValueError("areas_m2 must be finite and >= 0")
    if bins is None or isinstance(bins, int | np.integer):
        n = 30 if bins is None else int(bins)
        if n < 1:
            raise ValueError(f"bins must be >= 1, got {n}")
        edges = np.geomspace(5.0, 5000.0, n + 1)
    else:
        edges = np.asarray(bins, np.float64).reshape(-1)
        if len(edges) < 2 or not (np.diff(edges) > 0).all():
            raise ValueError("bins must be >= 2 strictly increasing edges")
    lo, hi = edges[0], np.nextafter(edges[-1], -np.inf)
    counts, _ = np.histogram(np.clip(a, lo, hi), bins=edges)
    return counts.astype(np.int64), edges


def _finite_or_none(x: Any) -> Any:
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return [_finite_or_none(v) for v in x.tolist()]
    if isinstance(x, Mapping):
        return {str(k): _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite_or_none(v) for v in x]
    return x


@dataclass
class Report:
    """Pooled evaluation over images (see :func:`evaluate`).

    ``ap50``/``map`` use ``ap_method``; ``ap50_coco101``/``map_coco101`` are always the pycocotools
    numbers (``map_coco101`` = COCOeval ``stats[0]``). ``f1`` is the SpaceNet F1 at IoU 0.5 of the
    detections with ``score >= score_threshold``. Pixel metrics are micro-averaged (summed counts).
    ``per_stratum`` has the same headline numbers per stratum (and ``"all"``); ``size_hist`` holds
    ``edges`` (m²) and per-bin counts of ``gt``, ``gt_matched`` (at IoU 0.5) and ``pred``.
    """

    ap50: float
    map: float
    f1: F1Result
    pixel_iou: float
    pixel_f1: float
    per_stratum: dict[str, dict[str, float]]
    n_images: int
    n_gt: int
    n_pred: int
    ap_method: str = "voc"
    ap50_coco101: float = math.nan
    map_coco101: float = math.nan
    ap_per_iou: dict[str, float] = field(default_factory=dict)
    matched_iou_mean: float = math.nan
    score_threshold: float = 0.5
    size_hist: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become ``None``)."""
        return _finite_or_none(
            {
                "ap50": self.ap50,
                "map": self.map,
                "ap_method": self.ap_method,
                "ap50_coco101": self.ap50_coco101,
                "map_coco101": self.map_coco101,
                "ap_per_iou": self.ap_per_iou,
                "f1": self.f1.to_dict(),
                "score_threshold": self.score_threshold,
                "pixel_iou": self.pixel_iou,
                "pixel_f1": self.pixel_f1,
                "matched_iou_mean": self.matched_iou_mean,
                "n_images": self.n_images,
                "n_gt": self.n_gt,
                "n_pred": self.n_pred,
                "per_stratum": self.per_stratum,
                "size_hist": self.size_hist,
            }
        )

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON, atomically."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")


def _summarise(images: list[dict[str, Any]], thresholds: Sequence[float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method in ("voc", "coco101"):
        aps = {
            t: Detections.concat(im["detections"][t] for im in images).average_precision(method)
            for t in thresholds
        }
        out[method] = aps
    ptp = sum(im["pixel_tp"] for im in images)
    pfp = sum(im["pixel_fp"] for im in images)
    pfn = sum(im["pixel_fn"] for im in images)
    first = Detections.concat(im["detections"][thresholds[0]] for im in images)
    tp_ious = first.ious[first.is_tp] if first.ious is not None else np.zeros(0)
    out["f1"] = F1Result.pooled(im["f1"] for im in images)
    out["pixel_iou"] = _safe_ratio(ptp, ptp + pfp + pfn)
    out["pixel_f1"] = _safe_ratio(2 * ptp, 2 * ptp + pfp + pfn)
    out["matched_iou_mean"] = float(tp_ious.mean()) if len(tp_ious) else math.nan
    out["n_gt"] = sum(im["n_gt"] for im in images)
    out["n_pred"] = sum(im["n_pred"] for im in images)
    return out


def evaluate(
    items: Iterable[tuple[Labels, Labels, Scores, str] | tuple[Labels, Labels, Scores]],
    *,
    score_threshold: float = 0.5,
    ap_method: Literal["voc", "coco101"] = "voc",
    pixel_area_m2: float = 0.25,
    size_bins: np.ndarray | Sequence[float] | int | None = None,
) -> Report:
    """Pool per-image instance evaluations into a :class:`Report`.

    Args:
        items: ``(gt_labels, pred_labels, scores[, stratum])`` per image; ``scores[i-1]`` is the
            confidence of predicted id ``i``; the stratum defaults to ``"all"``.
        score_threshold: detections kept for the SpaceNet F1 (AP uses all detections).
        ap_method: interpolation of ``ap50``/``map`` (see :func:`average_precision`).
        pixel_area_m2: ground area of one pixel, for the size histogram (0.25 m² at 50 cm).
        size_bins: bins for :func:`size_histogram`.

    AP pools detections over images (ranked together, COCO-style, ``iscrowd=0``, all areas, no
    per-image detection limit); ``map`` averages AP over IoU 0.50:0.05:0.95.
    """
    if ap_method not in ("voc", "coco101"):
        raise ValueError(f"ap_method must be 'voc' or 'coco101', got {ap_method!r}")
    if not pixel_area_m2 > 0:
        raise ValueError(f"pixel_area_m2 must be > 0, got {pixel_area_m2}")
    thresholds = COCO_IOU_THRESHOLDS
    images: list[dict[str, Any]] = []
    for n, item in enumerate(items):
        if len(item) == 4:
            gt, pred, scores, stratum = item
        elif len(item) == 3:
            gt, pred, scores = item
            stratum = "all"
        else:
            raise ValueError(
                f"item {n}: expected (gt_labels, pred_labels, scores[, stratum]), got {len(item)} values"
            )
        images.append(
            evaluate_instances(
                gt,
                pred,
                scores,
                stratum=str(stratum),
                iou_thresholds=thresholds,
                score_threshold=score_threshold,
            )
        )
    overall = _summarise(images, thresholds)
    per_stratum: dict[str, dict[str, float]] = {}
    strata = sorted({im["stratum"] for im in images})
    for name in ["all", *[s for s in strata if s != "all"]]:
        sel = images if name == "all" else [im for im in images if im["stratum"] == name]
        summ = overall if name == "all" else _summarise(sel, thresholds)
        f1: F1Result = summ["f1"]
        per_stratum[name] = {
            "ap50": summ[ap_method][thresholds[0]],
            "map": float(np.mean(list(summ[ap_method].values()))),
            "f1": f1.f1,
            "precision": f1.precision,
            "recall": f1.recall,
            "tp": f1.tp,
            "fp": f1.fp,
            "fn": f1.fn,
            "pixel_iou": summ["pixel_iou"],
            "pixel_f1": summ["pixel_f1"],
            "matched_iou_mean": summ["matched_iou_mean"],
            "n_images": len(sel),
            "n_gt": summ["n_gt"],
            "n_pred": summ["n_pred"],
        }
    gt_areas = np.concatenate([im["gt_area_px"] for im in images]) * pixel_area_m2 if images else np.zeros(0)
    gt_matched = np.concatenate([im["gt_matched"] for im in images]) if images else np.zeros(0, bool)
    pred_areas = (
        np.concatenate([im["pred_area_px"] for im in images]) * pixel_area_m2 if images else np.zeros(0)
    )
    gt_counts, edges = size_histogram(gt_areas, size_bins)
    matched_counts, _ = size_histogram(gt_areas[gt_matched], edges)
    pred_counts, _ = size_histogram(pred_areas, edges)
    ap = overall[ap_method]
    coco = overall["coco101"]
    return Report(
        ap50=ap[thresholds[0]],
        map=float(np.mean(list(ap.values()))),
        f1=overall["f1"],
        pixel_iou=overall["pixel_iou"],
        pixel_f1=overall["pixel_f1"],
        per_stratum=per_stratum,
        n_images=len(images),
        n_gt=overall["n_gt"],
        n_pred=overall["n_pred"],
        ap_method=ap_method,
        ap50_coco101=coco[thresholds[0]],
        map_coco101=float(np.mean(list(coco.values()))),
        ap_per_iou={f"{t:.2f}": v for t, v in ap.items()},
        matched_iou_mean=overall["matched_iou_mean"],
        score_threshold=float(score_threshold),
        size_hist={
            "edges": edges.tolist(),
            "gt": gt_counts.tolist(),
            "gt_matched": matched_counts.tolist(),
            "pred": pred_counts.tolist(),
        },
    )
