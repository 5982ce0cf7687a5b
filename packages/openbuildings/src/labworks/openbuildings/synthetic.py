"""Procedural 50 cm satellite scenes with exact building labels, written as real GeoTIFF + GeoJSON.

The default data of demos and tests. Each scene has a terrain background (low-frequency colour
variation + texture), buildings of the kinds seen in Open Buildings imagery (round thatched huts of a
few pixels, houses with metal or tile roofs, compounds inside enclosure walls, dense urban blocks of
touching buildings, rows of tents, industrial sheds) with roof shading and cast shadows, and the
paper's confounders that must *not* be labelled (pools, rocks, enclosure walls, shipping containers)
plus trees (which may occlude buildings; the label keeps the full footprint) and shadows. Mild blur
and sensor noise finish the image.

Geometry is generated in pixel space (x = column, y = row, corner convention) and mapped to a
projected CRS (UTM by default); ``Scene.instances`` is exactly
``rasterize_instances([b["geometry"] for b in scene.buildings], scene.transform, shape)``.
Deterministic: the same :class:`SceneConfig` gives byte-identical arrays.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self, TypeAlias

import numpy as np
import pyproj
import rasterio.features
import scipy.ndimage as ndi
import shapely
import shapely.affinity
from affine import Affine
from pydantic import Field, model_validator
from shapely.geometry import LineString, Polygon, mapping
from shapely.geometry.base import BaseGeometry

from labworks.core import Config, atomic_write_text
from labworks.openbuildings.raster import rasterize_instances, write_geotiff

__all__ = [
    "BUILDING_KINDS",
    "CONFOUNDER_KINDS",
    "TERRAINS",
    "Scene",
    "SceneConfig",
    "load_manifest",
    "make_scene",
    "make_scene_set",
    "write_scene",
]

TERRAINS: tuple[str, ...] = ("savannah", "desert", "forest", "urban")
BUILDING_KINDS: tuple[str, ...] = ("hut", "house", "compound", "block", "tent", "industrial")
"""``compound`` = a hut or house inside an enclosure wall; ``block`` = one unit of a contiguous urban block."""
CONFOUNDER_KINDS: tuple[str, ...] = ("pool", "rock", "wall", "container", "tree", "shadow")

PathLike: TypeAlias = str | os.PathLike[str]

# roof / object rendering styles
_CONE, _GABLE, _FLAT, _CORRUGATED = 0, 1, 2, 3
_REF_AREA_M2 = 256.0 * 256.0  # building counts below are per 512 x 512 px at 0.5 m


class SceneConfig(Config):
    """One synthetic scene: size in pixels (square), ground sampling distance, terrain, seed, CRS."""

    size: int = Field(512, ge=64, le=16384, description="pixels, square")
    gsd: float = Field(0.5, gt=0.05, le=10.0, description="metres per pixel")
    terrain: Literal["savannah", "desert", "forest", "urban"] = "savannah"
    seed: int = Field(0, ge=0)
    epsg: int = Field(32636, description="projected CRS in metres (UTM zone by default)")
    origin: tuple[float, float] = Field(
        (500000.0, 100000.0), description="(easting, northing) of the upper-left corner"
    )
    density: float = Field(1.0, ge=0.0, le=10.0, description="multiplier on the number of buildings")

    @model_validator(mode="after")
    def _projected(self) -> Self:
        try:
            crs = pyproj.CRS.from_epsg(self.epsg)
        except pyproj.exceptions.CRSError as err:
            raise ValueError(f"epsg {self.epsg} is not a known EPSG code: {err}") from None
        if not crs.is_projected:
            raise ValueError(
                f"epsg {self.epsg} ({crs.name}) is not a projected CRS; use a UTM zone (e.g. 32636)"
            )
        units = {str(a.unit_name).lower() for a in crs.axis_info}
        if not units <= {"metre", "meter", "metres", "meters"}:
            raise ValueError(f"epsg {self.epsg} ({crs.name}) has axis units {sorted(units)}, expected metres")
        return self


@dataclass
class Scene:
    """A generated scene. ``image`` uint8 ``(3, H, W)``; ``instances`` int32 ``(H, W)`` with ids 1..N of
    ``buildings`` (dicts ``id``, ``kind``, ``geometry`` = shapely Polygon in ``crs`` coordinates);
    ``confounders`` (dicts ``kind``, ``geometry``) are visible in the image but never labelled."""

    image: np.ndarray
    instances: np.ndarray
    buildings: list[dict[str, Any]]
    transform: Affine
    crs: str
    terrain: str
    confounders: list[dict[str, Any]] = field(default_factory=list)

    @property
    def polygons(self) -> list[Polygon]:
        return [b["geometry"] for b in self.buildings]


# --------------------------------------------------------------------------------------------------
# geometry helpers (pixel space)


def _rect(cx: float, cy: float, w: float, h: float, angle: float) -> Polygon:
    c, s = math.cos(angle), math.sin(angle)
    xs = np.array([-w / 2, w / 2, w / 2, -w / 2])
    ys = np.array([-h / 2, -h / 2, h / 2, h / 2])
    return Polygon(np.column_stack([cx + xs * c - ys * s, cy + xs * s + ys * c]))


def _blob(rng: np.random.Generator, cx: float, cy: float, r: float, n: int, rough: float) -> Polygon:
    """Irregular round shape (rough=0: regular n-gon)."""
    t = rng.uniform(0, 2 * np.pi) + np.linspace(0, 2 * np.pi, n, endpoint=False)
    if rough > 0:
        k = rng.standard_normal(n)
        k = (k + np.roll(k, 1) + np.roll(k, -1)) / 3.0
        rad = r * (1.0 + rough * k)
    else:
        rad = np.full(n, r)
    return Polygon(np.column_stack([cx + rad * np.cos(t), cy + rad * np.sin(t)]))


def _grid_cells(
    cx: float, cy: float, angle: float, widths: np.ndarray, depths: np.ndarray
) -> list[list[Polygon]]:
    """Contiguous rectangles sharing walls: cell (j, i) spans widths[i] x depths[j]. Shared corners are
    computed once, so neighbours share *identical* vertices (they touch exactly, no sliver)."""
    xe = np.concatenate([[0.0], np.cumsum(widths)])
    ye = np.concatenate([[0.0], np.cumsum(depths)])
    xe -= xe[-1] / 2
    ye -= ye[-1] / 2
    c, s = math.cos(angle), math.sin(angle)
    gx = cx + xe[None, :] * c - ye[:, None] * s
    gy = cy + xe[None, :] * s + ye[:, None] * c
    cells = []
    for j in range(len(depths)):
        row = []
        for i in range(len(widths)):
            idx = [(j, i), (j, i + 1), (j + 1, i + 1), (j + 1, i)]
            row.append(Polygon([(float(gx[a, b]), float(gy[a, b])) for a, b in idx]))
        cells.append(row)
    return cells


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Smooth random field with features of about ``scale`` pixels, float32, unit std (approx.)."""
    gh = max(2, math.ceil(h / scale) + 2)
    gw = max(2, math.ceil(w / scale) + 2)
    g = rng.standard_normal((gh, gw), dtype=np.float32)
    z = ndi.zoom(g, (h / gh, w / gw), order=3, mode="mirror", grid_mode=False)
    z = z[:h, :w]
    return (z / max(float(z.std()), 1e-6)).astype(np.float32)


def _mix(a: Sequence[float], b: Sequence[float], t: np.ndarray) -> np.ndarray:
    """Per-pixel blend of two RGB colours, t in [0, 1] -> (3, H, W) float32."""
    ca = np.asarray(a, np.float32)[:, None, None]
    cb = np.asarray(b, np.float32)[:, None, None]
    return ca + (cb - ca) * t[None].astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# scene objects


@dataclass
class _Obj:
    """Something drawn from a polygon (or line): colour, shading style and strength, texture, axis."""

    geom: BaseGeometry
    color: np.ndarray
    style: int
    k: float = 0.2
    tex: float = 0.05
    axis: float = 0.0
    height: float = 0.0  # metres, for the cast shadow
    kind: str = ""


class _Placer:
    """Non-overlap bookkeeping: a candidate fits when inside ``region`` and farther than ``clearance``
    from everything placed (bounding boxes first, then shapely ``dwithin``)."""

    def __init__(self, region: BaseGeometry) -> None:
        self.region = region
        shapely.prepare(region)
        self.geoms: list[BaseGeometry] = []
        self.bounds = np.zeros((0, 4))

    def fits(self, geom: BaseGeometry, clearance: float) -> bool:
        if not self.region.contains(geom):
            return False
        if not self.geoms:
            return True
        x0, y0, x1, y1 = geom.bounds
        b = self.bounds
        sel = np.nonzero(
            (b[:, 0] <= x1 + clearance)
            & (b[:, 2] >= x0 - clearance)
            & (b[:, 1] <= y1 + clearance)
            & (b[:, 3] >= y0 - clearance)
        )[0]
        if sel.size == 0:
            return True
        others = np.asarray([self.geoms[i] for i in sel], dtype=object)
        return not bool(np.any(shapely.dwithin(others, geom, clearance)))

    def add(self, geom: BaseGeometry) -> None:
        self.geoms.append(geom)
        self.bounds = np.vstack([self.bounds, np.asarray(geom.bounds)[None]])


_THATCH = [(158, 128, 84), (138, 108, 70), (182, 156, 108), (120, 96, 66), (150, 134, 104)]
_METAL = [(205, 206, 210), (188, 192, 198), (150, 168, 192), (168, 178, 186), (150, 108, 80)]
_TILE = [(168, 78, 56), (146, 92, 66), (182, 104, 72), (122, 70, 58)]
_CONCRETE = [(172, 168, 160), (150, 146, 140), (190, 184, 172), (132, 128, 124)]
_MUD = [(176, 146, 108), (160, 128, 92), (190, 164, 124)]
_TENT = [(238, 238, 232), (226, 232, 238), (244, 242, 236)]
_CONTAINER = [(184, 46, 36), (36, 74, 162), (40, 134, 66), (214, 124, 32), (196, 170, 40), (120, 40, 110)]
_ROCK = [(128, 122, 114), (150, 144, 134), (112, 106, 100), (166, 156, 142)]
_TREE = [(48, 74, 38), (62, 88, 44), (40, 64, 36), (74, 98, 52)]
_BUSH = [(78, 90, 50), (66, 80, 44), (92, 100, 58)]


class _Builder:
    """Lays out and renders one scene."""

    def __init__(self, cfg: SceneConfig) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng([cfg.seed, TERRAINS.index(cfg.terrain), cfg.size])
        self.S = cfg.size
        self.px = 1.0 / cfg.gsd  # pixels per metre
        self.area = (cfg.size * cfg.gsd) ** 2 / _REF_AREA_M2
        margin = 1.0
        self.placer = _Placer(shapely.box(margin, margin, self.S - margin, self.S - margin))
        self.buildings: list[_Obj] = []
        self.confounders: list[_Obj] = []  # pools, rocks, containers, walls (drawn under buildings)
        self.trees: list[_Obj] = []
        self.bushes: list[_Obj] = []
        self.ground: list[tuple[BaseGeometry, np.ndarray]] = []  # roads, paths
        sun = self.rng.uniform(0, 2 * np.pi)
        self.light = np.array([math.cos(sun), math.sin(sun)])  # towards the sun
        self.shadow_len = self.rng.uniform(0.35, 0.8)  # metres of shadow per metre of height
        self.pos_sampler: Callable[[], tuple[float, float]] = self._uniform_pos

    # ---- sampling helpers
    def count(self, lo: float, hi: float, *, buildings: bool = True) -> int:
        scale = self.area * (self.cfg.density if buildings else 1.0)
        return int(self.rng.poisson(scale * self.rng.uniform(lo, hi)))

    def colour(self, palette: Sequence[tuple[int, int, int]], jitter: float = 8.0) -> np.ndarray:
        base = np.asarray(palette[int(self.rng.integers(len(palette)))], np.float64)
        return np.clip(base + self.rng.normal(0, jitter, 3), 0, 255)

    def _uniform_pos(self) -> tuple[float, float]:
        return float(self.rng.uniform(0, self.S)), float(self.rng.uniform(0, self.S))

    def m(self, lo: float, hi: float) -> float:
        """Uniform length in metres -> pixels."""
        return float(self.rng.uniform(lo, hi)) * self.px

    # ---- building makers (return objects in pixel space, not yet placed)
    def hut(self, cx: float, cy: float, kind: str = "hut") -> _Obj:
        r = self.m(2.0, 4.0)
        return _Obj(
            _blob(self.rng, cx, cy, r, 16, 0.0),
            self.colour(_THATCH, 10),
            _CONE,
            k=float(self.rng.uniform(0.22, 0.4)),
            tex=0.1,
            height=float(self.rng.uniform(2.5, 3.5)),
            kind=kind,
        )

    def house(
        self,
        cx: float,
        cy: float,
        angle: float | None = None,
        kind: str = "house",
        palette: Sequence[tuple[int, int, int]] | None = None,
        size: tuple[float, float, float, float] = (6.0, 14.0, 5.0, 9.0),
    ) -> _Obj:
        w, h = self.m(size[0], size[1]), self.m(size[2], size[3])
        a = float(self.rng.uniform(0, np.pi)) if angle is None else angle
        if palette is None:
            palette = _METAL if self.rng.random() < 0.6 else _TILE
        flat = palette is _MUD or palette is _CONCRETE
        axis = a if w >= h else a + np.pi / 2
        return _Obj(
            _rect(cx, cy, w, h, a),
            self.colour(palette),
            _FLAT if flat else _GABLE,
            k=float(self.rng.uniform(0.05, 0.1) if flat else self.rng.uniform(0.14, 0.3)),
            tex=0.04,
            axis=axis,
            height=float(self.rng.uniform(3.0, 5.0)),
            kind=kind,
        )

    def try_place(
        self, make: Callable[[float, float], _Obj], clearance_m: float, tries: int = 12
    ) -> _Obj | None:
        for _ in range(tries):
            cx, cy = self.pos_sampler()
            obj = make(cx, cy)
            if self.placer.fits(obj.geom, clearance_m * self.px):
                self.placer.add(obj.geom)
                self.buildings.append(obj)
                return obj
        return None

    def place_compound(self, inner: Literal["hut", "mixed", "mud"]) -> None:
        for _ in range(10):
            cx, cy = self.pos_sampler()
            w, h = self.m(16.0, 32.0), self.m(14.0, 28.0)
            a = float(self.rng.uniform(0, np.pi))
            outer = _rect(cx, cy, w + 1.0, h + 1.0, a)
            if not self.placer.fits(outer, 1.5 * self.px):
                continue
            self.placer.add(outer)
            inset = 1.5 * self.px
            sub = _Placer(_rect(cx, cy, w - 2 * inset, h - 2 * inset, a))
            c, s = math.cos(a), math.sin(a)
            for _ in range(int(self.rng.integers(2, 7)) * 4):
                u, v = self.rng.uniform(-0.5, 0.5, 2)
                px_, py_ = cx + u * w * c - v * h * s, cy + u * w * s + v * h * c
                if inner == "hut" or (inner == "mixed" and self.rng.random() < 0.6):
                    obj = self.hut(px_, py_, kind="compound")
                else:
                    pal = _MUD if inner == "mud" else None
                    obj = self.house(
                        px_,
                        py_,
                        a + (np.pi / 2) * int(self.rng.integers(2)),
                        kind="compound",
                        palette=pal,
                        size=(5.0, 10.0, 4.0, 7.0),
                    )
                if sub.fits(obj.geom, 1.0 * self.px):
                    sub.add(obj.geom)
                    self.buildings.append(obj)
                if len(sub.geoms) >= 6:
                    break
            self.add_wall_ring(cx, cy, w, h, a, gate=True)
            return

    def add_wall_ring(self, cx: float, cy: float, w: float, h: float, a: float, gate: bool) -> None:
        ring = np.asarray(_rect(cx, cy, w, h, a).exterior.coords)[:4]
        pts = [ring[k] for k in range(4)] + [ring[0]]
        if gate:
            t = float(self.rng.uniform(0.2, 0.7))
            gl = min(3.0 * self.px / max(w, 1e-6), 0.25)
            g0 = ring[0] + (ring[1] - ring[0]) * t
            g1 = ring[0] + (ring[1] - ring[0]) * (t + gl)
            pts = [g1, ring[1], ring[2], ring[3], ring[0], g0]
        line = LineString(pts)
        col = self.colour(_MUD if self.cfg.terrain != "urban" else _CONCRETE, 6) * 0.8
        self.confounders.append(
            _Obj(line, col, _FLAT, k=0.0, tex=0.05, height=float(self.rng.uniform(1.5, 2.2)), kind="wall")
        )

    def place_block(self, angle: float, palettes: Sequence[Sequence[tuple[int, int, int]]]) -> int:
        for _ in range(16):
            cx, cy = self.pos_sampler()
            nc = int(self.rng.integers(2, 7))
            nr = int(self.rng.integers(1, 3))
            widths = self.rng.uniform(5.0, 10.0, nc) * self.px
            depths = self.rng.uniform(7.0, 12.0, nr) * self.px
            a = angle + float(self.rng.normal(0, 0.03)) + (np.pi / 2) * int(self.rng.integers(2))
            cells = _grid_cells(cx, cy, a, widths, depths)
            env = _rect(cx, cy, float(widths.sum()), float(depths.sum()), a)
            if not self.placer.fits(env, 1.5 * self.px):
                continue
            self.placer.add(env)
            n = 0
            for j, row in enumerate(cells):
                for i, poly in enumerate(row):
                    if nr * nc > 3 and self.rng.random() < 0.1:
                        continue  # an empty plot
                    pal = palettes[int(self.rng.integers(len(palettes)))]
                    flat = pal is _CONCRETE
                    axis = a if widths[i] >= depths[j] else a + np.pi / 2
                    self.buildings.append(
                        _Obj(
                            poly,
                            self.colour(pal),
                            _FLAT if flat else _GABLE,
                            k=float(self.rng.uniform(0.04, 0.1) if flat else self.rng.uniform(0.12, 0.28)),
                            tex=0.04,
                            axis=axis,
                            height=float(self.rng.uniform(3.5, 7.0)),
                            kind="block",
                        )
                    )
                    n += 1
            return n
        return 0

    def place_tent_camp(self) -> None:
        for _ in range(8):
            cx, cy = self.pos_sampler()
            nr, nc = int(self.rng.integers(3, 7)), int(self.rng.integers(4, 11))
            tw, td = self.m(3.0, 4.0), self.m(5.0, 6.5)
            gx, gy = tw + self.m(1.5, 3.0), td + self.m(2.0, 4.0)
            a = float(self.rng.uniform(0, np.pi))
            env = _rect(cx, cy, nc * gx, nr * gy, a)
            if not self.placer.region.contains(env):
                continue
            c, s = math.cos(a), math.sin(a)
            for j in range(nr):
                for i in range(nc):
                    if self.rng.random() < 0.08:
                        continue
                    u = (i - (nc - 1) / 2) * gx + self.rng.normal(0, 0.2 * self.px)
                    v = (j - (nr - 1) / 2) * gy + self.rng.normal(0, 0.2 * self.px)
                    poly = _rect(
                        cx + u * c - v * s, cy + u * s + v * c, tw, td, a + float(self.rng.normal(0, 0.03))
                    )
                    if self.placer.fits(poly, 1.0 * self.px):
                        self.placer.add(poly)
                        self.buildings.append(
                            _Obj(
                                poly,
                                self.colour(_TENT, 5),
                                _GABLE,
                                k=0.1,
                                tex=0.03,
                                axis=a + np.pi / 2,
                                height=2.0,
                                kind="tent",
                            )
                        )
            return

    def industrial(self, cx: float, cy: float, angle: float | None = None) -> _Obj:
        w, h = self.m(18.0, 40.0), self.m(14.0, 28.0)
        a = float(self.rng.uniform(0, np.pi)) if angle is None else angle
        return _Obj(
            _rect(cx, cy, w, h, a),
            self.colour(_METAL[:4], 6),
            _CORRUGATED,
            k=float(self.rng.uniform(0.08, 0.16)),
            tex=0.03,
            axis=a if w >= h else a + np.pi / 2,
            height=float(self.rng.uniform(6.0, 9.0)),
            kind="industrial",
        )

    # ---- confounders
    def place_confounder(
        self, make: Callable[[float, float], list[_Obj]], clearance_m: float, tries: int = 10
    ) -> bool:
        for _ in range(tries):
            cx, cy = self.pos_sampler()
            objs = make(cx, cy)
            hull = shapely.union_all([o.geom for o in objs]).convex_hull
            if self.placer.fits(hull, clearance_m * self.px):
                self.placer.add(hull)
                self.confounders.extend(objs)
                return True
        return False

    def pool(self, cx: float, cy: float) -> list[_Obj]:
        w, h = self.m(4.0, 10.0), self.m(2.5, 5.0)
        a = float(self.rng.uniform(0, np.pi))
        deck = _Obj(
            _rect(cx, cy, w + 1.6 * self.px, h + 1.6 * self.px, a),
            self.colour([(205, 202, 192)], 6),
            _FLAT,
            k=0.0,
            tex=0.03,
            height=0.0,
            kind="pool_deck",
        )
        water = _Obj(
            _rect(cx, cy, w, h, a),
            self.colour([(58, 148, 196), (44, 128, 180), (80, 170, 205)], 6),
            _FLAT,
            k=0.15,
            tex=0.02,
            axis=a,
            height=0.0,
            kind="pool",
        )
        return [deck, water]

    def rock(self, cx: float, cy: float) -> list[_Obj]:
        r = self.m(1.0, 4.0)
        return [
            _Obj(
                _blob(self.rng, cx, cy, r, 12, 0.25),
                self.colour(_ROCK, 8),
                _CONE,
                k=float(self.rng.uniform(0.25, 0.4)),
                tex=0.12,
                height=r / self.px * 0.6,
                kind="rock",
            )
        ]

    def containers(self, cx: float, cy: float) -> list[_Obj]:
        n = int(self.rng.integers(1, 7))
        length = 6.06 if self.rng.random() < 0.7 else 12.19
        a = float(self.rng.uniform(0, np.pi))
        c, s = math.cos(a), math.sin(a)
        out = []
        for i in range(n):
            u = (i - (n - 1) / 2) * (2.44 + 0.4) * self.px
            poly = _rect(cx + u * c, cy + u * s, 2.44 * self.px, length * self.px, a)
            out.append(
                _Obj(
                    poly,
                    self.colour(_CONTAINER, 10),
                    _CORRUGATED,
                    k=0.08,
                    tex=0.03,
                    axis=a + np.pi / 2,
                    height=2.6,
                    kind="container",
                )
            )
        return out

    def tree(self, cx: float, cy: float, r_m: tuple[float, float] = (2.0, 5.0)) -> _Obj:
        r = self.m(*r_m)
        return _Obj(
            _blob(self.rng, cx, cy, r, 14, 0.15),
            self.colour(_TREE, 8),
            _CONE,
            k=float(self.rng.uniform(0.3, 0.45)),
            tex=0.18,
            height=float(self.rng.uniform(4.0, 9.0)),
            kind="tree",
        )

    def place_trees(self, n: int, occluding_fraction: float = 0.35) -> None:
        for _ in range(n):
            if self.buildings and self.rng.random() < occluding_fraction:
                b = self.buildings[int(self.rng.integers(len(self.buildings)))]
                c = b.geom.centroid
                rb = math.sqrt(b.geom.area / np.pi)
                t = self.tree(0.0, 0.0)
                rt = math.sqrt(t.geom.area / np.pi)
                ang = self.rng.uniform(0, 2 * np.pi)
                d = rb + rt * float(self.rng.uniform(0.3, 0.9))
                t.geom = shapely.affinity.translate(t.geom, c.x + d * math.cos(ang), c.y + d * math.sin(ang))
                if b.geom.contains(t.geom.centroid):
                    continue  # keep the occlusion partial
            else:
                cx, cy = self.pos_sampler()
                t = self.tree(cx, cy)
            if t.geom.centroid.within(self.placer.region):
                self.trees.append(t)

    def path(self, width_m: float, colour: np.ndarray, straight: bool = False) -> None:
        x, y = self._uniform_pos()
        ang = float(self.rng.uniform(0, 2 * np.pi))
        pts = []
        step = 10.0 * self.px
        for _ in range(int(3 * self.S / step)):
            pts.append((x, y))
            if not straight:
                ang += float(self.rng.normal(0, 0.25))
            x, y = x + step * math.cos(ang), y + step * math.sin(ang)
            if not (-step < x < self.S + step and -step < y < self.S + step):
                pts.append((x, y))
                break
        if len(pts) >= 2:
            self.ground.append((LineString(pts).buffer(width_m * self.px / 2, cap_style="flat"), colour))

    # ---- terrain layouts
    def layout_savannah(self) -> None:
        villages = [self._uniform_pos() for _ in range(int(self.rng.integers(2, 5)))]
        spread = self.m(18.0, 32.0)

        def village_pos() -> tuple[float, float]:
            if self.rng.random() < 0.2:
                return self._uniform_pos()
            vx, vy = villages[int(self.rng.integers(len(villages)))]
            return float(vx + self.rng.normal(0, spread)), float(vy + self.rng.normal(0, spread))

        for _ in range(int(self.rng.integers(2, 4))):
            self.path(float(self.rng.uniform(1.0, 2.0)), self.colour([(196, 172, 130)], 6))
        self.pos_sampler = village_pos
        for _ in range(self.count(1.5, 4.0)):
            self.place_compound("hut" if self.rng.random() < 0.6 else "mixed")
        for _ in range(self.count(4.0, 10.0)):
            self.try_place(self.house, 1.5)
        for _ in range(self.count(25.0, 50.0)):
            self.try_place(self.hut, float(self.rng.uniform(1.0, 3.0)))
        for _ in range(self.count(0.0, 1.5, buildings=False)):
            self.place_confounder(self.pool, 1.0)
        for _ in range(self.count(0.0, 1.2, buildings=False)):
            self.place_confounder(self.containers, 1.0)
        self.pos_sampler = self._uniform_pos
        for _ in range(self.count(4.0, 12.0, buildings=False)):
            self.place_confounder(self.rock, 0.8)
        self.bushes = [self.bush() for _ in range(self.count(150, 350, buildings=False))]
        self.pos_sampler = village_pos
        self.place_trees(self.count(12, 30, buildings=False))

    def layout_desert(self) -> None:
        for _ in range(int(self.rng.integers(0, 3))):
            self.path(float(self.rng.uniform(3.0, 5.0)), self.colour([(192, 168, 130)], 6), straight=True)
        if self.rng.random() < 0.75 and self.cfg.density > 0:
            for _ in range(max(1, round(self.area * self.cfg.density))):
                self.place_tent_camp()
        for _ in range(self.count(1.0, 3.0)):
            self.place_compound("mud")
        for _ in range(self.count(12.0, 24.0)):
            self.try_place(
                lambda x, y: self.house(x, y, palette=_MUD if self.rng.random() < 0.5 else None), 2.0
            )
        for _ in range(self.count(0.0, 0.8)):
            self.try_place(self.industrial, 3.0)
        for _ in range(self.count(0.0, 2.0, buildings=False)):
            self.place_confounder(self.containers, 1.0)
        for _ in range(self.count(15, 40, buildings=False)):
            self.place_confounder(self.rock, 0.5)
        self.bushes = [self.bush() for _ in range(self.count(15, 50, buildings=False))]
        self.place_trees(self.count(0, 6, buildings=False), occluding_fraction=0.2)

    def layout_forest(self, clearing: np.ndarray) -> None:
        eroded = ndi.binary_erosion(clearing, iterations=max(1, round(3 * self.px)))
        rows, cols = np.nonzero(eroded if eroded.any() else clearing)

        def clearing_pos() -> tuple[float, float]:
            if rows.size == 0:
                return self._uniform_pos()
            i = int(self.rng.integers(rows.size))
            return float(cols[i] + self.rng.uniform()), float(rows[i] + self.rng.uniform())

        self.pos_sampler = clearing_pos
        for _ in range(int(self.rng.integers(1, 3))):
            self.path(float(self.rng.uniform(2.0, 3.5)), self.colour([(158, 128, 92)], 6))
        for _ in range(self.count(0.0, 2.0)):
            self.place_compound("mixed")
        for _ in range(self.count(6.0, 14.0)):
            self.try_place(self.house, 2.0)
        for _ in range(self.count(12.0, 28.0)):
            self.try_place(self.hut, float(self.rng.uniform(1.0, 3.0)))
        for _ in range(self.count(0, 4, buildings=False)):
            self.place_confounder(self.rock, 0.8)
        self.place_trees(self.count(15, 40, buildings=False), occluding_fraction=0.4)

    def layout_urban(self) -> None:
        theta = float(self.rng.uniform(0, np.pi / 2))
        c, s = math.cos(theta), math.sin(theta)
        diag = self.S * 1.5
        centre = self.S / 2
        for axis in (0, 1):
            spacing = self.m(45.0, 80.0)
            off = float(self.rng.uniform(0, spacing))
            k = -diag
            while k < diag:
                pos = k + off
                if axis == 0:
                    p0 = (centre + pos * -s - diag * c, centre + pos * c - diag * s)
                    p1 = (centre + pos * -s + diag * c, centre + pos * c + diag * s)
                else:
                    p0 = (centre + pos * c - diag * -s, centre + pos * s - diag * c)
                    p1 = (centre + pos * c + diag * -s, centre + pos * s + diag * c)
                width = self.m(5.0, 9.0)
                road = (
                    LineString([p0, p1])
                    .buffer(width / 2, cap_style="flat")
                    .intersection(shapely.box(0, 0, self.S, self.S))
                )
                if not road.is_empty:
                    paved = self.rng.random() < 0.6
                    col = self.colour([(86, 86, 90)] if paved else [(172, 150, 116)], 5)
                    self.ground.append((road, col))
                    self.placer.add(road)
                k += spacing + float(self.rng.uniform(-0.2, 0.2)) * spacing
        palettes = [_METAL, _TILE, _CONCRETE, _CONCRETE]
        for _ in range(self.count(1.0, 3.0)):
            self.try_place(lambda x, y: self.industrial(x, y, theta + float(self.rng.normal(0, 0.03))), 3.0)
        target = self.count(80.0, 120.0)
        n_blocks = 0
        for _ in range(max(0, round(target / 3))):
            n_blocks += self.place_block(theta, palettes)
            if n_blocks >= target:
                break
        for _ in range(self.count(20.0, 40.0)):
            obj = self.try_place(
                lambda x, y: self.house(
                    x, y, theta + (np.pi / 2) * int(self.rng.integers(2)) + float(self.rng.normal(0, 0.05))
                ),
                float(self.rng.uniform(1.5, 3.0)),
            )
            if obj is not None and self.rng.random() < 0.3:
                self.parcel_wall(obj)
        for _ in range(self.count(0.0, 1.5)):
            self.place_compound("mixed")
        for _ in range(self.count(1.0, 3.0, buildings=False)):
            self.place_confounder(self.containers, 1.0)
        for _ in range(self.count(1.0, 5.0, buildings=False)):
            self.place_confounder(self.pool, 1.5)
        self.bushes = [self.bush() for _ in range(self.count(5, 25, buildings=False))]
        self.place_trees(self.count(10, 28, buildings=False), occluding_fraction=0.4)

    def parcel_wall(self, house: _Obj) -> None:
        rect = shapely.minimum_rotated_rectangle(house.geom)
        xy = np.asarray(rect.exterior.coords)[:4]
        e1, e2 = xy[1] - xy[0], xy[3] - xy[0]
        w, h = float(np.hypot(*e1)), float(np.hypot(*e2))
        a = math.atan2(e1[1], e1[0])
        cx, cy = float(xy[:, 0].mean()), float(xy[:, 1].mean())
        pad = self.m(2.5, 5.0)
        ring = _rect(cx, cy, w + 2 * pad, h + 2 * pad, a)
        band = ring.exterior.buffer(0.5 * self.px)
        if self.placer.fits(band, 0.5 * self.px):
            self.placer.add(band)
            self.add_wall_ring(cx, cy, w + 2 * pad, h + 2 * pad, a, gate=True)

    def bush(self) -> _Obj:
        cx, cy = self._uniform_pos()
        r = self.m(0.7, 2.2)
        return _Obj(
            _blob(self.rng, cx, cy, r, 10, 0.2),
            self.colour(_BUSH, 8),
            _CONE,
            k=0.3,
            tex=0.15,
            height=1.2,
            kind="bush",
        )

    # ---- backgrounds
    def background(self) -> tuple[np.ndarray, np.ndarray | None]:
        S, rng = self.S, self.rng
        big = _smooth_noise(rng, S, S, 110 * self.px / 2)
        mid = _smooth_noise(rng, S, S, 24 * self.px / 2)
        fine = rng.standard_normal((S, S), dtype=np.float32)
        fine = 0.6 * fine + 0.4 * ndi.gaussian_filter(fine, 1.2) / 0.25
        clearing = None
        terrain = self.cfg.terrain
        if terrain == "savannah":
            img = _mix((178, 160, 110), (158, 120, 84), _sigmoid(1.6 * big))
            img = img + _mix((0, 0, 0), (-40, -22, -34), _sigmoid(2.5 * mid - 1.5))
            img *= 1 + 0.05 * fine[None]
        elif terrain == "desert":
            img = _mix((218, 190, 146), (196, 160, 116), _sigmoid(1.4 * big))
            ang = rng.uniform(0, np.pi)
            yy, xx = np.mgrid[0:S, 0:S].astype(np.float32)
            lam = rng.uniform(18.0, 40.0) * self.px
            phase = (xx * math.cos(ang) + yy * math.sin(ang)) * (2 * np.pi / lam) + 2.5 * big + 1.2 * mid
            dune = 0.07 * np.sin(phase) - 0.07 * (np.cos(phase) > 0.75)
            img *= (1 + dune[None]) * (1 + 0.035 * fine[None])
        elif terrain == "forest":
            crowns = ndi.gaussian_filter(rng.standard_normal((S, S), dtype=np.float32), 1.6 * self.px)
            crowns /= max(float(crowns.std()), 1e-6)
            canopy = (
                _mix((46, 72, 38), (72, 98, 50), _sigmoid(1.5 * mid)) * (1 + 0.22 * np.tanh(crowns))[None]
            )
            ground = _mix((150, 126, 88), (118, 126, 72), _sigmoid(1.5 * mid)) * (1 + 0.05 * fine[None])
            field_ = big + 0.35 * mid
            thr = float(np.quantile(field_, rng.uniform(0.5, 0.68)))
            clearing = field_ > thr
            t = _sigmoid((field_ - thr) * 14.0)
            img = canopy * (1 - t[None]) + ground * t[None]
            img *= 1 + 0.03 * fine[None]
        else:  # urban
            img = _mix((156, 146, 130), (170, 150, 118), _sigmoid(1.5 * big))
            img = img + _mix((0, 0, 0), (-18, -14, -10), _sigmoid(2.0 * mid))
            img *= 1 + 0.05 * fine[None]
        return img.astype(np.float32), clearing


def _paint(
    img: np.ndarray, ids: np.ndarray, objs: Sequence[_Obj], light: np.ndarray, tex: np.ndarray
) -> None:
    """Colour pixels of ``ids`` (0 = none, i = objs[i-1]) with per-object colour, shading and texture."""
    rr, cc = np.nonzero(ids)
    if rr.size == 0:
        return
    j = ids[rr, cc] - 1
    cent = np.array([[o.geom.centroid.x, o.geom.centroid.y] for o in objs])
    rad = np.array([max(math.sqrt(o.geom.area / np.pi), 1.0) if o.geom.area > 0 else 1.0 for o in objs])
    ax = np.array([o.axis for o in objs])
    ux, uy = np.cos(ax)[j], np.sin(ax)[j]
    style = np.array([o.style for o in objs])[j]
    k = np.array([o.k for o in objs])[j]
    px = cc + 0.5 - cent[j, 0]
    py = rr + 0.5 - cent[j, 1]
    lit = np.clip((px * light[0] + py * light[1]) / rad[j], -1, 1)
    across = -px * uy + py * ux  # signed distance from the ridge
    facing = -uy * light[0] + ux * light[1]  # how much the +across side faces the sun
    gable = 1 + k * np.sign(across) * np.where(np.abs(facing) > 0.2, np.sign(facing), facing * 5)
    along = px * ux + py * uy
    f = np.select(
        [style == _CONE, style == _GABLE, style == _FLAT],
        [1 + k * lit, gable, 1 + 0.3 * k * lit],
        default=gable * (1 + 0.06 * np.sign(np.sin(along * (2 * np.pi / 3.0)))),
    )
    f = f * (1 + np.array([o.tex for o in objs])[j] * tex[rr, cc])
    colours = np.array([o.color for o in objs], np.float32)
    img[:, rr, cc] = colours[j].T * f[None].astype(np.float32)


def _burn(
    geoms: Sequence[BaseGeometry], shape: tuple[int, int], values: Sequence[int] | None = None
) -> np.ndarray:
    """Rasterize pixel-space geometries (identity transform) -> int32, later geometries on top."""
    pairs = [
        (mapping(g), int(v))
        for g, v in zip(geoms, values or range(1, len(geoms) + 1), strict=True)
        if not g.is_empty
    ]
    if not pairs:
        return np.zeros(shape, np.int32)
    return rasterio.features.rasterize(
        pairs, out_shape=shape, transform=Affine.identity(), fill=0, dtype="int32"
    )


def _shadow(geom: BaseGeometry, dx: float, dy: float) -> list[BaseGeometry]:
    """Cast shadow = area swept by ``geom`` moved by (dx, dy): convex hulls per polygon / segment."""
    off = np.array([dx, dy])
    if isinstance(geom, LineString):
        xy = np.asarray(geom.coords)
        return [
            shapely.MultiPoint(np.vstack([xy[i : i + 2], xy[i : i + 2] + off])).convex_hull
            for i in range(len(xy) - 1)
        ]
    xy = np.asarray(geom.exterior.coords)
    return [shapely.MultiPoint(np.vstack([xy, xy + off])).convex_hull]


def _to_crs(geoms: Sequence[BaseGeometry], transform: Affine) -> list[BaseGeometry]:
    """Pixel-space (col, row) geometries -> CRS coordinates through the affine transform."""
    if not geoms:
        return []
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f

    def fn(xy: np.ndarray) -> np.ndarray:
        return np.column_stack([a * xy[:, 0] + b * xy[:, 1] + c, d * xy[:, 0] + e * xy[:, 1] + f])

    return list(shapely.transform(np.asarray(geoms, dtype=object), fn))


def make_scene(cfg: SceneConfig) -> Scene:
    """Generate one scene (deterministic in ``cfg``)."""
    bld = _Builder(cfg)
    S = cfg.size
    shape = (S, S)
    img, clearing = bld.background()
    if cfg.terrain == "savannah":
        bld.layout_savannah()
    elif cfg.terrain == "desert":
        bld.layout_desert()
    elif cfg.terrain == "forest":
        assert clearing is not None
        bld.layout_forest(clearing)
    else:
        bld.layout_urban()
    rng = bld.rng
    tex = rng.standard_normal(shape, dtype=np.float32)
    tex = 0.5 * tex + 0.5 * ndi.gaussian_filter(tex, 0.8) / 0.35

    # ground: roads and paths, then bushes
    if bld.ground:
        gid = _burn([g for g, _ in bld.ground], shape)
        cols = np.asarray([c for _, c in bld.ground], np.float32)
        rr, cc = np.nonzero(gid)
        img[:, rr, cc] = cols[gid[rr, cc] - 1].T * (1 + 0.04 * tex[rr, cc])[None]
    if bld.bushes:
        _paint(img, _burn([o.geom for o in bld.bushes], shape), bld.bushes, bld.light, tex)

    # cast shadows (on the ground; objects are drawn over them)
    d = -bld.light * bld.shadow_len * bld.px
    shadow_geoms: list[BaseGeometry] = []
    tree_shadows: list[BaseGeometry] = []
    for o in [*bld.bushes, *bld.confounders, *bld.buildings, *bld.trees]:
        if o.height > 0:
            sh = _shadow(o.geom, float(d[0] * o.height), float(d[1] * o.height))
            shadow_geoms.extend(sh)
            if o.kind == "tree":
                tree_shadows.append(shapely.union_all(sh).difference(o.geom))
    if shadow_geoms:
        smask = _burn(shadow_geoms, shape, [1] * len(shadow_geoms)) > 0
        img[:, smask] *= np.float32(rng.uniform(0.5, 0.62))

    # confounders, buildings (with a darker outline), trees on top
    if bld.confounders:
        _paint(img, _burn([o.geom for o in bld.confounders], shape), bld.confounders, bld.light, tex)
    transform = Affine(cfg.gsd, 0.0, cfg.origin[0], 0.0, -cfg.gsd, cfg.origin[1])
    crs_polys = _to_crs([o.geom for o in bld.buildings], transform)
    instances = rasterize_instances(crs_polys, transform, shape)
    if bld.buildings:
        _paint(img, instances, bld.buildings, bld.light, tex)
        edge = np.zeros(shape, bool)
        edge[:-1] |= instances[:-1] != instances[1:]
        edge[1:] |= instances[1:] != instances[:-1]
        edge[:, :-1] |= instances[:, :-1] != instances[:, 1:]
        edge[:, 1:] |= instances[:, 1:] != instances[:, :-1]
        edge &= instances > 0
        img[:, edge] *= np.float32(0.86)
    if bld.trees:
        _paint(img, _burn([o.geom for o in bld.trees], shape), bld.trees, bld.light, tex)

    # sensor: slight blur, gain/offset, noise
    img = ndi.gaussian_filter(img, (0, 0.6, 0.6))
    gain = rng.uniform(0.92, 1.08, 3).astype(np.float32)[:, None, None]
    img = img * gain + np.float32(rng.uniform(-6, 6))
    img += rng.normal(0.0, 2.5, img.shape).astype(np.float32)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    buildings = [
        {"id": i + 1, "kind": o.kind, "geometry": g}
        for i, (o, g) in enumerate(zip(bld.buildings, crs_polys, strict=True))
    ]
    conf_objs = [o for o in [*bld.confounders, *bld.trees] if o.kind != "pool_deck"]
    conf_geoms = _to_crs(
        [o.geom.buffer(0.25 * bld.px) if isinstance(o.geom, LineString) else o.geom for o in conf_objs]
        + tree_shadows,
        transform,
    )
    kinds = [o.kind for o in conf_objs] + ["shadow"] * len(tree_shadows)
    confounders = [
        {"kind": k, "geometry": g} for k, g in zip(kinds, conf_geoms, strict=True) if not g.is_empty
    ]
    return Scene(
        image=image,
        instances=instances,
        buildings=buildings,
        transform=transform,
        crs=f"EPSG:{cfg.epsg}",
        terrain=cfg.terrain,
        confounders=confounders,
    )


# --------------------------------------------------------------------------------------------------
# files


def write_scene(scene: Scene, out_dir: PathLike, name: str) -> tuple[Path, Path]:
    """Write ``<name>.tif`` (3-band uint8 GeoTIFF, tiled 256, deflate) and ``<name>.geojson``
    (FeatureCollection in the scene CRS with a ``crs`` member; properties id, kind, terrain), both
    atomically. Returns the two paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tif = write_geotiff(out / f"{name}.tif", scene.image, transform=scene.transform, crs=scene.crs)
    epsg = scene.crs.split(":")[-1]
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}},
        "features": [
            {
                "type": "Feature",
                "id": b["id"],
                "geometry": mapping(b["geometry"]),
                "properties": {"id": b["id"], "kind": b["kind"], "terrain": scene.terrain},
            }
            for b in scene.buildings
        ],
    }
    geojson = atomic_write_text(out / f"{name}.geojson", json.dumps(doc))
    return tif, geojson


def _scene_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([seed, i]).generate_state(1)[0] & 0x7FFFFFFF)


def make_scene_set(
    out_dir: PathLike,
    n_scenes: int,
    *,
    size: int = 512,
    seed: int = 0,
    terrains: Sequence[str] = TERRAINS,
    density: float = 1.0,
    gsd: float = 0.5,
    epsg: int = 32636,
) -> list[dict[str, Any]]:
    """Write ``n_scenes`` scenes (terrains cycled, per-scene seeds derived from ``seed``, distinct
    non-overlapping origins) and ``out_dir/manifest.json``: a list of ``{"name", "image", "labels",
    "terrain", "seed"}`` with paths relative to ``out_dir``. Returns the rows with absolute paths."""
    if n_scenes < 1:
        raise ValueError(f"n_scenes must be >= 1, got {n_scenes}")
    terrains = list(terrains)
    bad = [t for t in terrains if t not in TERRAINS]
    if not terrains or bad:
        raise ValueError(f"terrains must be a non-empty subset of {TERRAINS}, got {terrains}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    step = size * gsd + 500.0
    rows, result = [], []
    for i in range(n_scenes):
        terrain = terrains[i % len(terrains)]
        s = _scene_seed(seed, i)
        origin = (300000.0 + (i % 16) * step, 100000.0 + (i // 16 + 1) * step)
        cfg = SceneConfig.from_dict(
            {
                "size": size,
                "gsd": gsd,
                "terrain": terrain,
                "seed": s,
                "epsg": epsg,
                "origin": origin,
                "density": density,
            }
        )
        name = f"scene_{i:04d}_{terrain}"
        tif, gj = write_scene(make_scene(cfg), out, name)
        rows.append({"name": name, "image": tif.name, "labels": gj.name, "terrain": terrain, "seed": s})
        result.append(
            {"name": name, "image": tif.resolve(), "labels": gj.resolve(), "terrain": terrain, "seed": s}
        )
    atomic_write_text(out / "manifest.json", json.dumps(rows, indent=1))
    return result


def load_manifest(path: PathLike) -> list[dict[str, Any]]:
    """Read a ``manifest.json`` (a file or the folder holding it); paths become absolute. ``labels`` may
    be missing/null (unlabelled scenes). FileNotFoundError names every missing file."""
    p = Path(path)
    if p.is_dir():
        p = p / "manifest.json"
    if not p.is_file():
        raise FileNotFoundError(f"manifest not found: {p}")
    try:
        rows = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"manifest {p} is not valid JSON: {err}") from None
    if not isinstance(rows, list):
        raise ValueError(f"manifest {p} must be a JSON list of scenes, got {type(rows).__name__}")
    out: list[dict[str, Any]] = []
    missing: list[str] = []
    for k, row in enumerate(rows):
        if not isinstance(row, dict) or "image" not in row:
            raise ValueError(f"manifest {p} row {k} needs at least an 'image' entry, got {row!r}")
        r = dict(row)
        for key in ("image", "labels"):
            if r.get(key) is None:
                continue
            q = Path(r[key])
            q = q if q.is_absolute() else (p.parent / q)
            r[key] = q.resolve()
            if not r[key].is_file():
                missing.append(str(r[key]))
        r.setdefault("labels", None)
        r.setdefault("name", Path(r["image"]).stem)
        out.append(r)
    if missing:
        raise FileNotFoundError(
            f"manifest {p} names {len(missing)} missing file(s): {', '.join(missing[:5])}"
        )
    return out
