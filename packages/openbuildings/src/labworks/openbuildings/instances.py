"""Probability map → building instances → cleaned polygons with a per-building confidence.

Recipe (Microsoft GlobalMLBuildingFootprints + solaris ``mask_to_poly_geojson``): building pixel =
``p > threshold`` (strict) inside the valid area → connected components → polygons from
``rasterio.features.shapes`` in the raster CRS → ``make_valid`` → drop area < ``min_area`` (CRS
units², e.g. m²) → Douglas-Peucker ``simplify(preserve_topology=True)``; holes are kept.
Confidence = mean probability over the instance's pixels (MS definition).

Components: ``scipy.ndimage.label`` for NumPy arrays and CPU tensors (faster than the torch
reference on CPU), the :func:`labworks.openbuildings.ops.connected_components` op (Triton union-find)
for CUDA tensors; both number components in raster order of their first pixel.

Seam-safe tiling: :func:`extract_footprints` takes ``keep_centroid_in=(row0, col0, row1, col1)``,
a half-open pixel box of the tile core; an instance is kept only if its pixel centroid (mean row and
column index of its pixels) lies inside, decided in exact integer arithmetic, so adjacent cores that
see the same instance through their halos keep it exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio.features
import scipy.ndimage as ndi
import shapely
import torch
from affine import Affine
from numpy.typing import NDArray
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from labworks.openbuildings.ops import connected_components, instance_stats

__all__ = [
    "Footprints",
    "clean_polygon",
    "extract_footprints",
    "find_instances",
    "label_instances",
    "polygonize",
]

_STRUCTURES = {4: ndi.generate_binary_structure(2, 1), 8: ndi.generate_binary_structure(2, 2)}


def _check_connectivity(connectivity: int) -> None:
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")


def label_instances(
    prob: NDArray[np.floating[Any]] | torch.Tensor,
    *,
    threshold: float = 0.5,
    connectivity: int = 4,
    valid: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.int32], int]:
    """Instances of ``prob`` (H, W): pixels with ``p > threshold`` (strict) and ``valid``, labelled
    ``1..n`` in raster order like ``scipy.ndimage.label``. Returns ``(labels int32 (H, W), n)``.
    NaN probabilities are background."""
    _check_connectivity(connectivity)
    if not isinstance(prob, np.ndarray | torch.Tensor):
        raise TypeError(
            f"label_instances: prob must be a numpy array or torch tensor, got {type(prob).__name__}"
        )
    if prob.ndim != 2:
        raise ValueError(f"label_instances: prob must be (H, W), got shape {tuple(prob.shape)}")
    if valid is not None:
        valid = np.asarray(valid)
        if valid.shape != tuple(prob.shape):
            raise ValueError(f"label_instances: valid has shape {valid.shape}, prob has {tuple(prob.shape)}")
        valid = valid.astype(bool, copy=False)
    if isinstance(prob, torch.Tensor) and prob.is_cuda:
        mask = prob > threshold
        if valid is not None:
            mask &= torch.from_numpy(valid).to(prob.device)
        lab_t = connected_components(mask, connectivity)
        n = int(lab_t.max()) if lab_t.numel() else 0
        return lab_t.cpu().numpy(), n
    p = prob.detach().cpu().numpy() if isinstance(prob, torch.Tensor) else prob
    mask_np = p > threshold
    if valid is not None:
        mask_np &= valid
    labels = np.zeros(mask_np.shape, dtype=np.int32)
    n = int(ndi.label(mask_np, structure=_STRUCTURES[connectivity], output=labels))
    return labels, n


def split_touching(
    labels: NDArray[np.int32],
    prob: NDArray[np.floating[Any]] | torch.Tensor,
    *,
    seed_threshold: float = 0.8,
    min_seed_area: int = 6,
    connectivity: int = 4,
) -> tuple[NDArray[np.int32], int]:
    """Split instances that merged across a faint wall: seeds are the components of ``p > seed_threshold``
    (at least ``min_seed_area`` pixels), grown back over their instance by a watershed on ``1 - p``
    (``scipy.ndimage.watershed_ift``); instances without a seed stay whole. The extent of every building
    is the ``labels`` mask, unchanged. Returns ``(labels, n)`` numbered in raster order of first pixel."""
    _check_connectivity(connectivity)
    if not 0 < seed_threshold < 1:
        raise ValueError(f"seed_threshold must be in (0, 1), got {seed_threshold}")
    p = prob.detach().cpu().numpy() if isinstance(prob, torch.Tensor) else np.asarray(prob)
    p = np.nan_to_num(p.astype(np.float32, copy=False), nan=0.0)
    mask = labels > 0
    if not mask.any():
        return labels, 0
    structure = _STRUCTURES[connectivity]
    seeds, n_seeds = ndi.label((p > seed_threshold) & mask, structure=structure)
    sizes = np.bincount(seeds.ravel(), minlength=n_seeds + 1)
    small = sizes < min_seed_area
    small[0] = False
    seeds = np.where(small[seeds], 0, seeds)
    seeded = np.zeros(int(labels.max()) + 1, dtype=bool)
    seeded[labels[seeds > 0]] = True
    seeded[0] = True
    markers = np.where(seeded[labels], seeds, labels + n_seeds).astype(np.int32)
    markers[~mask] = 0
    cost = np.clip((1.0 - p) * 65535.0, 0, 65535).astype(np.uint16)
    grown = ndi.watershed_ift(cost, markers, structure=structure)
    grown = np.where(mask, grown, 0)
    # renumber 1..n by first pixel in raster order (scipy.ndimage.label's convention)
    flat = grown.ravel()
    ids, first = np.unique(flat, return_index=True)
    order = np.argsort(first[ids > 0])
    lut = np.zeros(int(ids.max()) + 1, dtype=np.int32)
    lut[ids[ids > 0][order]] = np.arange(1, len(order) + 1, dtype=np.int32)
    return lut[grown].astype(np.int32), len(order)


def find_instances(
    prob: NDArray[np.floating[Any]] | torch.Tensor,
    *,
    threshold: float = 0.5,
    connectivity: int = 4,
    valid: NDArray[np.bool_] | None = None,
    seed_threshold: float | None = None,
    min_seed_area: int = 6,
) -> tuple[NDArray[np.int32], int]:
    """Building instances of ``prob`` (H, W): :func:`label_instances`, then, with ``seed_threshold``,
    :func:`split_touching`. Returns ``(labels int32 (H, W), n)``."""
    labels, n = label_instances(prob, threshold=threshold, connectivity=connectivity, valid=valid)
    if n and seed_threshold is not None:
        labels, n = split_touching(
            labels,
            prob,
            seed_threshold=seed_threshold,
            min_seed_area=min_seed_area,
            connectivity=connectivity,
        )
    return labels, n


def _rings_to_polygons(shapes: list[dict[str, Any]]) -> NDArray[np.object_]:
    """GeoJSON-like polygon dicts (first ring = shell, others = holes) → shapely Polygons, built
    with two vectorised shapely calls instead of one ``shape()`` per polygon."""
    rings: list[NDArray[np.float64]] = []
    owner: list[int] = []
    for i, s in enumerate(shapes):
        for ring in s["coordinates"]:
            rings.append(np.asarray(ring, dtype=np.float64))
            owner.append(i)
    lens = np.fromiter((len(r) for r in rings), dtype=np.int64, count=len(rings))
    lr = shapely.linearrings(np.concatenate(rings), indices=np.repeat(np.arange(len(rings)), lens))
    return np.asarray(shapely.polygons(lr, indices=np.asarray(owner)), dtype=object)


def polygonize(
    labels: NDArray[np.integer[Any]], transform: Affine, *, connectivity: int = 4
) -> list[tuple[int, Polygon | MultiPolygon]]:
    """Polygons of the instances of ``labels`` (H, W), 0 = background, in the CRS of ``transform``
    (pixel corner convention), sorted by label: ``rasterio.features.shapes(labels, mask=labels > 0,
    transform=transform, connectivity=connectivity)`` grouped by label.

    With ``connectivity=4`` every 4-connected instance gives one polygon (with holes) whose area is
    its pixel count times the pixel area. With 8-connectivity, pixels touching only at a corner give
    a ring that touches itself (invalid); :func:`clean_polygon` turns it into a MultiPolygon. A label
    made of several separate shapes (e.g. 8-connected labels polygonized with 4-connectivity) is
    returned as their union (a MultiPolygon).
    """
    _check_connectivity(connectivity)
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"polygonize: labels must be (H, W), got shape {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise TypeError(f"polygonize: labels must be integers, got {lab.dtype}")
    if lab.dtype != np.int32:
        if lab.size and (lab.min() < 0 or lab.max() > np.iinfo(np.int32).max):
            raise ValueError("polygonize: labels must fit in int32 and be >= 0")
        lab = lab.astype(np.int32)
    if not isinstance(transform, Affine):
        raise TypeError(f"polygonize: transform must be an affine.Affine, got {type(transform).__name__}")
    fg = lab > 0
    if not fg.any():
        return []
    items = list(rasterio.features.shapes(lab, mask=fg, transform=transform, connectivity=connectivity))
    values = np.array([int(v) for _, v in items], dtype=np.int64)
    polys = _rings_to_polygons([s for s, _ in items])
    order = np.argsort(values, kind="stable")
    values, polys = values[order], polys[order]
    uniq, start, count = np.unique(values, return_index=True, return_counts=True)
    out: list[tuple[int, Polygon | MultiPolygon]] = []
    for v, s, c in zip(uniq.tolist(), start.tolist(), count.tolist(), strict=True):
        out.append((v, polys[s] if c == 1 else shapely.union_all(polys[s : s + c])))
    return out


def _polygonal(g: BaseGeometry) -> BaseGeometry:
    """Keep only the polygonal part of ``g`` (``make_valid`` may return a GeometryCollection)."""
    if isinstance(g, Polygon | MultiPolygon):
        return g
    parts = [p for p in shapely.get_parts(g) if isinstance(p, Polygon | MultiPolygon) and not p.is_empty]
    if not parts:
        return Polygon()
    u = shapely.union_all(parts)
    return u if isinstance(u, Polygon | MultiPolygon) else Polygon()


def _single(g: BaseGeometry) -> BaseGeometry:
    if isinstance(g, MultiPolygon) and len(g.geoms) == 1:
        return g.geoms[0]
    return g


def _clean_many(
    geoms: Sequence[BaseGeometry], *, simplify_tolerance: float, min_area: float
) -> list[Polygon | MultiPolygon | None]:
    """Vectorised :func:`clean_polygon` (same result element by element)."""
    if simplify_tolerance < 0 or not np.isfinite(simplify_tolerance):
        raise ValueError(f"simplify_tolerance must be a finite number >= 0, got {simplify_tolerance}")
    if min_area < 0 or not np.isfinite(min_area):
        raise ValueError(f"min_area must be a finite number >= 0, got {min_area}")
    arr = np.asarray(list(geoms), dtype=object)
    if arr.size == 0:
        return []
    bad = ~shapely.is_valid(arr)
    for i in np.flatnonzero(bad):
        arr[i] = _polygonal(shapely.make_valid(arr[i]))
    keep = ~shapely.is_empty(arr) & (shapely.area(arr) >= min_area)
    if simplify_tolerance > 0 and keep.any():
        arr[keep] = shapely.simplify(arr[keep], simplify_tolerance, preserve_topology=True)
        bad = keep & ~shapely.is_valid(arr)
        for i in np.flatnonzero(bad):
            arr[i] = _polygonal(shapely.make_valid(arr[i]))
        keep &= ~shapely.is_empty(arr)
    return [_single(g) if k else None for g, k in zip(arr, keep, strict=True)]


def clean_polygon(
    poly: BaseGeometry, *, simplify_tolerance: float, min_area: float
) -> Polygon | MultiPolygon | None:
    """Repair and simplify one polygon (solaris order: repair → min-area → simplify).

    ``make_valid`` (polygonal part only) for invalid input; ``None`` if empty or its area (before
    simplification, CRS units²) is below ``min_area``; then ``simplify(simplify_tolerance,
    preserve_topology=True)`` (CRS units; 0 disables), repaired again if needed. Holes are kept.
    A single-part MultiPolygon comes back as a Polygon.
    """
    if not isinstance(poly, BaseGeometry):
        raise TypeError(f"clean_polygon: expected a shapely geometry, got {type(poly).__name__}")
    return _clean_many([poly], simplify_tolerance=simplify_tolerance, min_area=min_area)[0]


def _same_crs(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return bool(CRS.from_user_input(a) == CRS.from_user_input(b))
    except CRSError:
        return False


@dataclass
class Footprints:
    """Detected buildings in the raster CRS.

    Attributes:
        geometries: Polygons (MultiPolygons only from 8-connected instances) in CRS coordinates.
        confidence: float64 (N,), mean probability inside each instance (MS definition).
        crs: CRS of ``geometries`` (anything ``pyproj.CRS.from_user_input`` accepts).
        labels: int32 (N,), instance id in the label raster (0 if not from a raster).
        attrs: optional extra per-building columns (e.g. ``"stratum"``), each of length N.
    """

    geometries: list[BaseGeometry]
    confidence: NDArray[np.float64]
    crs: str
    labels: NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    attrs: dict[str, NDArray[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.geometries = list(self.geometries)
        n = len(self.geometries)
        self.confidence = np.asarray(self.confidence, dtype=np.float64).reshape(-1)
        if self.confidence.shape != (n,):
            raise ValueError(f"Footprints: {n} geometries but {self.confidence.size} confidences")
        labels = np.asarray(self.labels)
        if labels.size == 0 and n:
            labels = np.zeros(n, np.int32)
        self.labels = labels.astype(np.int32).reshape(-1)
        if self.labels.shape != (n,):
            raise ValueError(f"Footprints: {n} geometries but {self.labels.size} labels")
        if not isinstance(self.crs, str):
            self.crs = CRS.from_user_input(self.crs).to_string()
        self.attrs = {k: np.asarray(v) for k, v in self.attrs.items()}
        for k, v in self.attrs.items():
            if v.shape[:1] != (n,):
                raise ValueError(f"Footprints: attribute {k!r} has {v.shape[:1]} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.geometries)

    @classmethod
    def empty(cls, crs: str) -> Footprints:
        return cls([], np.zeros(0), crs)

    def filter(self, keep: NDArray[np.bool_]) -> Footprints:
        """The buildings where ``keep`` (bool, (N,)) is True."""
        k = np.asarray(keep)
        if k.dtype != np.bool_ or k.shape != (len(self),):
            raise ValueError(
                f"Footprints.filter: keep must be bool of shape ({len(self)},), got {k.dtype} {k.shape}"
            )
        idx = np.flatnonzero(k)
        return Footprints(
            [self.geometries[i] for i in idx],
            self.confidence[idx],
            self.crs,
            self.labels[idx],
            {name: v[idx] for name, v in self.attrs.items()},
        )

    @classmethod
    def concat(cls, items: Iterable[Footprints]) -> Footprints:
        """Concatenate footprints sharing one CRS; attribute columns must match across the
        non-empty items (empty items are ignored)."""
        parts = list(items)
        if not parts:
            raise ValueError("Footprints.concat: nothing to concatenate")
        crs = parts[0].crs
        for p in parts[1:]:
            if not _same_crs(p.crs, crs):
                raise ValueError(f"Footprints.concat: CRS mismatch ({p.crs!r} vs {crs!r})")
        full = [p for p in parts if len(p)]
        if not full:
            return cls([], np.zeros(0), crs, np.zeros(0, np.int32), dict(parts[0].attrs))
        keys = list(full[0].attrs)
        for p in full[1:]:
            if set(p.attrs) != set(keys):
                raise ValueError(
                    f"Footprints.concat: attribute columns differ ({sorted(p.attrs)} vs {sorted(keys)})"
                )
        return cls(
            [g for p in full for g in p.geometries],
            np.concatenate([p.confidence for p in full]),
            crs,
            np.concatenate([p.labels for p in full]),
            {k: np.concatenate([p.attrs[k] for p in full]) for k in keys},
        )


def extract_footprints(
    prob: NDArray[np.floating[Any]] | torch.Tensor,
    transform: Affine,
    crs: str,
    *,
    threshold: float = 0.5,
    min_area: float = 4.0,
    simplify_tolerance: float = 0.25,
    connectivity: int = 4,
    valid: NDArray[np.bool_] | None = None,
    min_confidence: float = 0.0,
    keep_centroid_in: tuple[int, int, int, int] | None = None,
    seed_threshold: float | None = None,
    min_seed_area: int = 6,
) -> Footprints:
    """Probability map (H, W) in [0, 1] → :class:`Footprints` in the raster CRS.

    Args:
        prob: building probability per pixel (numpy, or a torch tensor; CUDA tensors are labelled
            on the GPU).
        transform: pixel → CRS affine (rasterio convention, pixel corners).
        crs: CRS of ``transform``.
        threshold: building pixel if ``p > threshold``.
        min_area: drop polygons smaller than this, in CRS units² (m² for UTM), before simplifying.
        simplify_tolerance: Douglas-Peucker tolerance in CRS units (0.25 = 0.5 px at 50 cm).
        connectivity: 4 or 8, for both the components and the polygons.
        valid: optional bool (H, W); pixels outside are never building pixels.
        min_confidence: drop instances whose mean probability is below this.
        keep_centroid_in: ``(row0, col0, row1, col1)`` half-open pixel box; keep only instances
            whose pixel centroid (mean row, mean col index) lies inside (seam-safe tiling).
        seed_threshold: if set, split instances merged across faint walls (:func:`split_touching`).
        min_seed_area: smallest seed (pixels) for the split.
    """
    labels, n = find_instances(
        prob,
        threshold=threshold,
        connectivity=connectivity,
        valid=valid,
        seed_threshold=seed_threshold,
        min_seed_area=min_seed_area,
    )
    if n == 0:
        return Footprints.empty(crs)
    p_np = prob.detach().cpu().numpy() if isinstance(prob, torch.Tensor) else np.asarray(prob)
    st = instance_stats(torch.from_numpy(labels), torch.from_numpy(np.ascontiguousarray(p_np)), n)
    conf = st["confidence"].numpy()
    keep = conf >= min_confidence
    if keep_centroid_in is not None:
        if len(keep_centroid_in) != 4:
            raise ValueError(f"keep_centroid_in must be (row0, col0, row1, col1), got {keep_centroid_in!r}")
        r0, c0, r1, c1 = (int(v) for v in keep_centroid_in)
        if r1 < r0 or c1 < c0:
            raise ValueError(
                f"keep_centroid_in must have row0 <= row1 and col0 <= col1, got {keep_centroid_in!r}"
            )
        area = st["area"].numpy()
        rs, cs = st["row_sum"].numpy(), st["col_sum"].numpy()  # centroid = sum / area, compared exactly
        keep &= (rs >= r0 * area) & (rs < r1 * area) & (cs >= c0 * area) & (cs < c1 * area)
    if not keep.any():
        return Footprints.empty(crs)
    if not keep.all():
        lut = np.concatenate([[False], keep])
        labels = np.where(lut[labels], labels, 0).astype(np.int32)
    polys = polygonize(labels, transform, connectivity=connectivity)
    ids = np.array([v for v, _ in polys], dtype=np.int64)
    cleaned = _clean_many([g for _, g in polys], simplify_tolerance=simplify_tolerance, min_area=min_area)
    ok = np.array([g is not None for g in cleaned], dtype=bool)
    geoms = [g for g in cleaned if g is not None]
    return Footprints(geoms, conf[ids[ok] - 1], crs, ids[ok].astype(np.int32))
