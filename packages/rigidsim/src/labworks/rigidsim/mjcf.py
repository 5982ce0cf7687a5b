"""A reader for the MJCF subset the standard locomotion/manipulation models use.

Produces a :class:`ModelSpec` of plain numpy arrays (bodies, joints, degrees of freedom, geoms, actuators)
that :class:`labworks.rigidsim.model.Model` moves onto a device. Anything outside the subset raises
:class:`MJCFError` naming the element or attribute, never silently ignored physics. Purely visual elements
(lights, cameras, sites, materials, textures) are accepted and skipped.

Conventions follow MuJoCo: quaternions are (w, x, y, z); body inertia is computed from geoms when
``inertiafromgeom`` is on (capsule = cylinder + two hemispheres); hinge/slide joints rotate/translate by
``qpos - ref``; ``settotalmass`` rescales every body's mass and inertia.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["GEOM_TYPES", "JOINT_TYPES", "MJCFError", "ModelSpec", "load_mjcf", "parse_mjcf"]

JOINT_TYPES = {"free": 0, "ball": 1, "slide": 2, "hinge": 3}
GEOM_TYPES = {"plane": 0, "sphere": 2, "capsule": 3, "ellipsoid": 4, "cylinder": 5, "box": 6}
_IGNORED = {
    "light",
    "camera",
    "site",
    "asset",
    "visual",
    "size",
    "statistic",
    "custom",
    "keyframe",
    "extension",
}
_NQ = {0: 7, 1: 4, 2: 1, 3: 1}
_NV = {0: 6, 1: 3, 2: 1, 3: 1}


class MJCFError(ValueError):
    """The MJCF file uses something outside the supported subset, or is malformed."""


@dataclass
class ModelSpec:
    """A compiled model as numpy arrays. Body 0 is the world; ``body_parent[i] < i``."""

    name: str
    timestep: float
    gravity: np.ndarray  # (3,)
    integrator: str  # "euler" | "rk4"
    body_name: list[str] = field(default_factory=list)
    body_parent: list[int] = field(default_factory=list)
    body_pos: list[np.ndarray] = field(default_factory=list)  # (3,) in parent frame
    body_quat: list[np.ndarray] = field(default_factory=list)  # (4,)
    body_mass: list[float] = field(default_factory=list)
    body_ipos: list[np.ndarray] = field(default_factory=list)  # COM in body frame
    body_inertia: list[np.ndarray] = field(default_factory=list)  # (3, 3) about COM, body frame
    jnt_name: list[str] = field(default_factory=list)
    jnt_type: list[int] = field(default_factory=list)
    jnt_body: list[int] = field(default_factory=list)
    jnt_pos: list[np.ndarray] = field(default_factory=list)  # anchor, body frame
    jnt_axis: list[np.ndarray] = field(default_factory=list)  # unit, body frame
    jnt_limited: list[bool] = field(default_factory=list)
    jnt_range: list[np.ndarray] = field(default_factory=list)  # (2,)
    jnt_ref: list[float] = field(default_factory=list)
    jnt_springref: list[float] = field(default_factory=list)
    jnt_stiffness: list[float] = field(default_factory=list)
    jnt_damping: list[float] = field(default_factory=list)
    jnt_armature: list[float] = field(default_factory=list)
    geom_name: list[str] = field(default_factory=list)
    geom_type: list[int] = field(default_factory=list)
    geom_body: list[int] = field(default_factory=list)
    geom_pos: list[np.ndarray] = field(default_factory=list)
    geom_quat: list[np.ndarray] = field(default_factory=list)
    geom_size: list[np.ndarray] = field(default_factory=list)  # (3,) MuJoCo semantics (half sizes)
    geom_friction: list[float] = field(default_factory=list)  # sliding friction
    geom_contype: list[int] = field(default_factory=list)
    geom_conaffinity: list[int] = field(default_factory=list)
    geom_margin: list[float] = field(default_factory=list)
    geom_rgba: list[np.ndarray] = field(default_factory=list)
    act_name: list[str] = field(default_factory=list)
    act_joint: list[int] = field(default_factory=list)
    act_gear: list[float] = field(default_factory=list)
    act_limited: list[bool] = field(default_factory=list)
    act_range: list[np.ndarray] = field(default_factory=list)
    exclude: list[tuple[int, int]] = field(default_factory=list)  # body pairs

    @property
    def nbody(self) -> int:
        return len(self.body_name)

    @property
    def njnt(self) -> int:
        return len(self.jnt_name)

    @property
    def nq(self) -> int:
        return sum(_NQ[t] for t in self.jnt_type)

    @property
    def nv(self) -> int:
        return sum(_NV[t] for t in self.jnt_type)

    @property
    def nu(self) -> int:
        return len(self.act_name)

    def qpos0(self) -> np.ndarray:
        """The reference configuration (MuJoCo's ``qpos0``)."""
        out: list[float] = []
        for j, t in enumerate(self.jnt_type):
            if t == 0:
                b = self.jnt_body[j]
                out += [*self.body_pos[b], *self.body_quat[b]]
            elif t == 1:
                out += [1.0, 0.0, 0.0, 0.0]
            else:
                out.append(self.jnt_ref[j])
        return np.asarray(out, dtype=np.float64)


# ----------------------------------------------------------------------------------------------- helpers
def _floats(text: str | None, n: int | None = None, what: str = "") -> np.ndarray:
    if text is None:
        raise MJCFError(f"missing value for {what}")
    try:
        v = np.asarray([float(x) for x in text.split()], dtype=np.float64)
    except ValueError as e:
        raise MJCFError(f"{what}: cannot parse numbers from {text!r}") from e
    if n is not None and v.size != n:
        raise MJCFError(f"{what}: expected {n} numbers, got {v.size} ({text!r})")
    if not np.all(np.isfinite(v)):
        raise MJCFError(f"{what}: non-finite value in {text!r}")
    return v


def _bool(text: str, what: str) -> bool | None:
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    if text == "auto":
        return None
    raise MJCFError(f"{what}: expected true/false/auto, got {text!r}")


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    n = np.linalg.norm(axis)
    if n < 1e-12:
        raise MJCFError("zero-length rotation axis")
    a = axis / n
    return np.array([math.cos(angle / 2), *(math.sin(angle / 2) * a)])


def _mat_to_quat(m: np.ndarray) -> np.ndarray:
    t = np.trace(m)
    if t > 0:
        s = math.sqrt(t + 1.0) * 2
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    out = np.asarray(q, dtype=np.float64)
    return out / np.linalg.norm(out)


def _z_to(vec: np.ndarray) -> np.ndarray:
    """Quaternion rotating +z onto ``vec`` (MuJoCo's frame for fromto geoms)."""
    v = vec / np.linalg.norm(vec)
    z = np.array([0.0, 0.0, 1.0])
    c = float(np.dot(z, v))
    if c > 1 - 1e-12:
        return np.array([1.0, 0, 0, 0])
    if c < -1 + 1e-12:
        return np.array([0.0, 1.0, 0, 0])
    axis = np.cross(z, v)
    return _axis_angle(axis, math.acos(c))


class _Parser:
    def __init__(self, root: ET.Element, source: str) -> None:
        self.root, self.source = root, source
        comp = root.find("compiler")
        c = comp.attrib if comp is not None else {}
        for key in c:
            if key not in {
                "angle",
                "coordinate",
                "inertiafromgeom",
                "settotalmass",
                "eulerseq",
                "meshdir",
                "texturedir",
                "autolimits",
            }:
                raise MJCFError(f"{source}: unsupported <compiler> attribute {key!r}")
        self.degree = c.get("angle", "degree") == "degree"
        if c.get("coordinate", "local") != "local":
            raise MJCFError(f"{source}: only coordinate='local' is supported")
        if c.get("inertiafromgeom", "auto") == "false":
            self.inertia_from_geom = False
        else:
            self.inertia_from_geom = True
        self.total_mass = float(c["settotalmass"]) if "settotalmass" in c else None
        self.eulerseq = c.get("eulerseq", "xyz")
        self.defaults: dict[str, dict[str, dict[str, str]]] = {}
        self._read_defaults(root.find("default"), "main", {})

    # defaults: class -> element tag -> attributes (inherited from the parent class)
    def _read_defaults(self, node: ET.Element | None, cls: str, inherited: dict[str, dict[str, str]]) -> None:
        table = {k: dict(v) for k, v in inherited.items()}
        if node is not None:
            for child in node:
                if child.tag == "default":
                    continue
                table.setdefault(child.tag, {}).update(child.attrib)
        self.defaults[cls] = table
        if node is not None:
            for child in node:
                if child.tag == "default":
                    name = child.get("class")
                    if name is None:
                        raise MJCFError(f"{self.source}: nested <default> without class")
                    self._read_defaults(child, name, table)

    def attrs(self, el: ET.Element, childclass: str) -> dict[str, str]:
        cls = el.get("class", childclass)
        if cls not in self.defaults:
            raise MJCFError(f"{self.source}: unknown default class {cls!r}")
        out = dict(self.defaults[cls].get(el.tag, {}))
        if el.tag in ("motor",):
            out = {**self.defaults[cls].get("general", {}), **out}
        out.update(el.attrib)
        out.pop("class", None)
        return out

    def angle(self, v: float) -> float:
        return math.radians(v) if self.degree else v

    def orientation(self, a: dict[str, str], what: str) -> np.ndarray:
        keys = [k for k in ("quat", "axisangle", "euler", "xyaxes", "zaxis") if k in a]
        if len(keys) > 1:
            raise MJCFError(f"{what}: more than one orientation given ({keys})")
        if not keys:
            return np.array([1.0, 0, 0, 0])
        k = keys[0]
        if k == "quat":
            q = _floats(a[k], 4, f"{what} quat")
            return q / np.linalg.norm(q)
        if k == "axisangle":
            v = _floats(a[k], 4, f"{what} axisangle")
            return _axis_angle(v[:3], self.angle(v[3]))
        if k == "euler":
            v = _floats(a[k], 3, f"{what} euler")
            q = np.array([1.0, 0, 0, 0])
            for ch, ang in zip(self.eulerseq, v, strict=True):
                axis = {"x": [1, 0, 0], "y": [0, 1, 0], "z": [0, 0, 1]}[ch.lower()]
                r = _axis_angle(np.asarray(axis, float), self.angle(ang))
                q = quat_mul(q, r) if ch.islower() else quat_mul(r, q)
            return q
        if k == "xyaxes":
            v = _floats(a[k], 6, f"{what} xyaxes")
            x = v[:3] / np.linalg.norm(v[:3])
            y = v[3:] - np.dot(v[3:], x) * x
            y /= np.linalg.norm(y)
            return _mat_to_quat(np.stack([x, y, np.cross(x, y)], axis=1))
        return _z_to(_floats(a[k], 3, f"{what} zaxis"))


def _geom_mass_inertia(gtype: int, size: np.ndarray, density: float) -> tuple[float, np.ndarray]:
    """Mass and principal inertia (geom frame) of a solid primitive of uniform density."""
    if gtype == 2:  # sphere
        r = size[0]
        m = density * 4 / 3 * math.pi * r**3
        return m, np.full(3, 0.4 * m * r * r)
    if gtype == 3:  # capsule: cylinder of height 2h + two hemispheres
        r, h = size[0], size[1]
        m_c = density * math.pi * r * r * 2 * h
        m_s = density * 4 / 3 * math.pi * r**3
        m = m_c + m_s
        iz = m_c * r * r / 2 + m_s * 0.4 * r * r
        ixx = m_c * (r * r / 4 + (2 * h) ** 2 / 12) + m_s * (0.4 * r * r + h * h + 0.75 * h * r)
        return m, np.array([ixx, ixx, iz])
    if gtype == 5:  # cylinder
        r, h = size[0], size[1]
        m = density * math.pi * r * r * 2 * h
        ixx = m * (3 * r * r + (2 * h) ** 2) / 12
        return m, np.array([ixx, ixx, m * r * r / 2])
    if gtype == 6:  # box (half sizes)
        a, b, c = size
        m = density * 8 * a * b * c
        return m, m / 3 * np.array([b * b + c * c, a * a + c * c, a * a + b * b])
    if gtype == 4:  # ellipsoid
        a, b, c = size
        m = density * 4 / 3 * math.pi * a * b * c
        return m, m / 5 * np.array([b * b + c * c, a * a + c * c, a * a + b * b])
    return 0.0, np.zeros(3)


_GEOM_NSIZE = {0: 3, 2: 1, 3: 2, 4: 3, 5: 2, 6: 3}
_BODY_CHILDREN = {"joint", "freejoint", "geom", "body", "inertial", *_IGNORED}


def parse_mjcf(text: str, source: str = "<string>") -> ModelSpec:
    """Compile MJCF text into a :class:`ModelSpec` (raises :class:`MJCFError` outside the subset)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise MJCFError(f"{source}: malformed XML: {e}") from e
    if root.tag != "mujoco":
        raise MJCFError(f"{source}: root element must be <mujoco>, got <{root.tag}>")
    for child in root:
        if child.tag not in {
            "compiler",
            "option",
            "default",
            "worldbody",
            "actuator",
            "tendon",
            "contact",
            *_IGNORED,
        }:
            raise MJCFError(f"{source}: unsupported element <{child.tag}>")
    p = _Parser(root, source)
    opt = root.find("option")
    o = opt.attrib if opt is not None else {}
    integrator = o.get("integrator", "Euler").lower()
    if integrator not in ("euler", "rk4", "implicitfast", "implicit"):
        raise MJCFError(f"{source}: unsupported integrator {o.get('integrator')!r}")
    spec = ModelSpec(
        name=root.get("model", "model"),
        timestep=float(o.get("timestep", "0.002")),
        gravity=_floats(o.get("gravity", "0 0 -9.81"), 3, "option gravity"),
        integrator="rk4" if integrator == "rk4" else "euler",
    )
    if spec.timestep <= 0:
        raise MJCFError(f"{source}: timestep must be positive")
    spec.body_name.append("world")
    spec.body_parent.append(-1)
    spec.body_pos.append(np.zeros(3))
    spec.body_quat.append(np.array([1.0, 0, 0, 0]))
    spec.body_mass.append(0.0)
    spec.body_ipos.append(np.zeros(3))
    spec.body_inertia.append(np.zeros((3, 3)))
    world = root.find("worldbody")
    if world is None:
        raise MJCFError(f"{source}: no <worldbody>")
    _parse_body(p, spec, world, 0, "main", is_world=True)
    if p.total_mass is not None:
        total = sum(spec.body_mass[1:])
        if total <= 0:
            raise MJCFError(f"{source}: settotalmass on a massless model")
        s = p.total_mass / total
        spec.body_mass = [m * s for m in spec.body_mass]
        spec.body_inertia = [i * s for i in spec.body_inertia]
    for b in range(1, spec.nbody):
        if spec.body_mass[b] <= 0 and any(jb == b for jb in spec.jnt_body):
            raise MJCFError(f"{source}: body {spec.body_name[b]!r} has joints but no mass")
    _parse_actuators(p, spec, root.find("actuator"))
    _check_tendons(source, root.find("tendon"))
    _parse_contact(p, spec, root.find("contact"))
    return spec


def load_mjcf(path: str | Path) -> ModelSpec:
    """Read and compile an MJCF file (see :func:`parse_mjcf`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MJCF file not found: {path}")
    return parse_mjcf(path.read_text(), str(path))


def _parse_body(
    p: _Parser, spec: ModelSpec, node: ET.Element, bid: int, childclass: str, is_world: bool
) -> None:
    where = f"{p.source}: body {spec.body_name[bid]!r}"
    masses: list[tuple[float, np.ndarray, np.ndarray]] = []  # (mass, com, inertia 3x3 about com)
    explicit: tuple[float, np.ndarray, np.ndarray] | None = None
    for child in node:
        tag = child.tag
        if tag not in _BODY_CHILDREN:
            raise MJCFError(f"{where}: unsupported element <{tag}>")
        if tag in _IGNORED:
            continue
        if tag in ("joint", "freejoint"):
            if is_world:
                raise MJCFError(f"{p.source}: joints are not allowed in <worldbody>")
            _parse_joint(p, spec, child, bid, childclass)
        elif tag == "geom":
            g = _parse_geom(p, spec, child, bid, childclass)
            if g is not None:
                masses.append(g)
        elif tag == "inertial":
            a = child.attrib
            mass = float(a.get("mass", "nan"))
            if not mass > 0:
                raise MJCFError(f"{where}: <inertial> needs a positive mass")
            pos = _floats(a.get("pos", "0 0 0"), 3, "inertial pos")
            rot = quat_to_mat(p.orientation(a, f"{where} inertial"))
            if "diaginertia" in a:
                inertia = np.diag(_floats(a["diaginertia"], 3, "diaginertia"))
            elif "fullinertia" in a:
                xx, yy, zz, xy, xz, yz = _floats(a["fullinertia"], 6, "fullinertia")
                inertia = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
            else:
                raise MJCFError(f"{where}: <inertial> needs diaginertia or fullinertia")
            explicit = (mass, pos, rot @ inertia @ rot.T)
        elif tag == "body":
            a = child.attrib
            name = a.get("name", f"body{spec.nbody}")
            new = spec.nbody
            spec.body_name.append(name)
            spec.body_parent.append(bid)
            spec.body_pos.append(_floats(a.get("pos", "0 0 0"), 3, f"body {name} pos"))
            spec.body_quat.append(p.orientation(a, f"body {name}"))
            spec.body_mass.append(0.0)
            spec.body_ipos.append(np.zeros(3))
            spec.body_inertia.append(np.zeros((3, 3)))
            _parse_body(p, spec, child, new, a.get("childclass", childclass), is_world=False)
    if is_world:
        return
    if explicit is not None and (not p.inertia_from_geom or not masses):
        mass, com, inertia = explicit
    elif masses:
        mass = sum(m for m, _, _ in masses)
        com = np.sum([m * c for m, c, _ in masses], axis=0) / mass
        inertia = np.zeros((3, 3))
        for m, c, ig in masses:
            d = c - com
            inertia += ig + m * (np.dot(d, d) * np.eye(3) - np.outer(d, d))
    else:
        mass, com, inertia = 0.0, np.zeros(3), np.zeros((3, 3))
    spec.body_mass[bid] = float(mass)
    spec.body_ipos[bid] = com
    spec.body_inertia[bid] = inertia


def _parse_joint(p: _Parser, spec: ModelSpec, el: ET.Element, bid: int, childclass: str) -> None:
    a = p.attrs(el, childclass) if el.tag == "joint" else dict(el.attrib)
    name = a.get("name", f"joint{spec.njnt}")
    where = f"{p.source}: joint {name!r}"
    jtype = "free" if el.tag == "freejoint" else a.get("type", "hinge")
    if jtype not in JOINT_TYPES:
        raise MJCFError(f"{where}: unsupported joint type {jtype!r}")
    t = JOINT_TYPES[jtype]
    if t == 0 and spec.body_parent[bid] != 0:
        raise MJCFError(f"{where}: a free joint must belong to a child of the world body")
    if t == 0 and any(jb == bid for jb in spec.jnt_body):
        raise MJCFError(f"{where}: a free joint must be the only joint of its body")
    axis = _floats(a.get("axis", "0 0 1"), 3, f"{where} axis")
    if np.linalg.norm(axis) < 1e-12:
        raise MJCFError(f"{where}: zero axis")
    limited = _bool(a.get("limited", "auto"), f"{where} limited")
    has_range = "range" in a
    rng = _floats(a["range"], 2, f"{where} range") if has_range else np.zeros(2)
    if limited is None:
        limited = has_range
    if limited and t in (0, 1):
        raise MJCFError(f"{where}: limits on free/ball joints are not supported")
    if limited and not has_range:
        raise MJCFError(f"{where}: limited joint without range")
    if t == 3:
        rng = np.array([p.angle(rng[0]), p.angle(rng[1])])
    if limited and rng[0] >= rng[1]:
        raise MJCFError(f"{where}: range lower bound must be below the upper bound")
    ref = float(a.get("ref", "0"))
    springref = float(a.get("springref", "0"))
    if t == 3:
        ref, springref = p.angle(ref), p.angle(springref)
    spec.jnt_name.append(name)
    spec.jnt_type.append(t)
    spec.jnt_body.append(bid)
    spec.jnt_pos.append(_floats(a.get("pos", "0 0 0"), 3, f"{where} pos"))
    spec.jnt_axis.append(axis / np.linalg.norm(axis))
    spec.jnt_limited.append(bool(limited))
    spec.jnt_range.append(rng)
    spec.jnt_ref.append(ref)
    spec.jnt_springref.append(springref)
    if t == 0:
        spec.jnt_stiffness.append(0.0)
        spec.jnt_damping.append(float(a.get("damping", "0")) if el.tag == "joint" else 0.0)
        spec.jnt_armature.append(float(a.get("armature", "0")) if el.tag == "joint" else 0.0)
    else:
        spec.jnt_stiffness.append(float(a.get("stiffness", "0")))
        spec.jnt_damping.append(float(a.get("damping", "0")))
        spec.jnt_armature.append(float(a.get("armature", "0")))
    for key in ("stiffness", "damping", "armature"):
        if float(a.get(key, "0")) < 0:
            raise MJCFError(f"{where}: {key} must be non-negative")


def _parse_geom(
    p: _Parser, spec: ModelSpec, el: ET.Element, bid: int, childclass: str
) -> tuple[float, np.ndarray, np.ndarray] | None:
    a = p.attrs(el, childclass)
    name = a.get("name", f"geom{len(spec.geom_name)}")
    where = f"{p.source}: geom {name!r}"
    gtype_s = a.get("type", "sphere")
    if gtype_s not in GEOM_TYPES:
        raise MJCFError(f"{where}: unsupported geom type {gtype_s!r} (supported: {sorted(GEOM_TYPES)})")
    t = GEOM_TYPES[gtype_s]
    size = np.zeros(3)
    if "size" in a:
        s = _floats(a["size"], None, f"{where} size")
        size[: min(3, s.size)] = s[:3]
    pos = _floats(a.get("pos", "0 0 0"), 3, f"{where} pos")
    quat = p.orientation(a, where)
    if "fromto" in a:
        if t not in (3, 5, 4, 6):
            raise MJCFError(f"{where}: fromto only applies to capsule/cylinder/box/ellipsoid")
        ft = _floats(a["fromto"], 6, f"{where} fromto")
        d = ft[3:] - ft[:3]
        length = float(np.linalg.norm(d))
        if length < 1e-12:
            raise MJCFError(f"{where}: fromto endpoints coincide")
        pos = (ft[:3] + ft[3:]) / 2
        quat = _z_to(d)
        if t in (3, 5):
            size[1] = length / 2
        else:
            size[2] = length / 2
            size[1] = size[0]
    need = _GEOM_NSIZE[t]
    if t != 0 and np.any(size[: min(need, 3)] <= 0):
        raise MJCFError(f"{where}: size must be positive ({need} values for {gtype_s})")
    if t == 0 and bid != 0:
        raise MJCFError(f"{where}: planes may only belong to the world body")
    friction = _floats(a.get("friction", "1 0.005 0.0001"), None, f"{where} friction")
    spec.geom_name.append(name)
    spec.geom_type.append(t)
    spec.geom_body.append(bid)
    spec.geom_pos.append(pos)
    spec.geom_quat.append(quat)
    spec.geom_size.append(size)
    spec.geom_friction.append(float(friction[0]))
    spec.geom_contype.append(int(a.get("contype", "1")))
    spec.geom_conaffinity.append(int(a.get("conaffinity", "1")))
    spec.geom_margin.append(float(a.get("margin", "0")))
    spec.geom_rgba.append(_floats(a.get("rgba", "0.5 0.5 0.5 1"), 4, f"{where} rgba"))
    if bid == 0 or t == 0:
        return None
    if "mass" in a:
        mass = float(a["mass"])
        m_unit, inertia = _geom_mass_inertia(t, size, 1.0)
        inertia = inertia * (mass / m_unit) if m_unit > 0 else inertia
    else:
        mass, inertia = _geom_mass_inertia(t, size, float(a.get("density", "1000")))
    rot = quat_to_mat(quat)
    return mass, pos, rot @ np.diag(inertia) @ rot.T


def _parse_actuators(p: _Parser, spec: ModelSpec, node: ET.Element | None) -> None:
    if node is None:
        return
    for el in node:
        if el.tag != "motor":
            raise MJCFError(f"{p.source}: unsupported actuator <{el.tag}> (only <motor>)")
        a = p.attrs(el, "main")
        name = a.get("name", f"act{spec.nu}")
        if "joint" not in a:
            raise MJCFError(
                f"{p.source}: actuator {name!r} must name a joint (tendon/site transmissions unsupported)"
            )
        if a["joint"] not in spec.jnt_name:
            raise MJCFError(f"{p.source}: actuator {name!r} names unknown joint {a['joint']!r}")
        j = spec.jnt_name.index(a["joint"])
        if spec.jnt_type[j] in (0, 1):
            raise MJCFError(f"{p.source}: actuator {name!r} on a free/ball joint is unsupported")
        gear = _floats(a.get("gear", "1"), None, f"actuator {name} gear")
        limited = _bool(a.get("ctrllimited", "auto"), f"actuator {name} ctrllimited")
        has = "ctrlrange" in a
        rng = _floats(a["ctrlrange"], 2, f"actuator {name} ctrlrange") if has else np.array([-1.0, 1.0])
        spec.act_name.append(name)
        spec.act_joint.append(j)
        spec.act_gear.append(float(gear[0]))
        spec.act_limited.append(has if limited is None else limited)
        spec.act_range.append(rng)


def _check_tendons(source: str, node: ET.Element | None) -> None:
    """Fixed tendons without stiffness, damping, limits or actuators exert no force: accepted."""
    if node is None:
        return
    for el in node:
        if el.tag != "fixed":
            raise MJCFError(f"{source}: unsupported tendon <{el.tag}>")
        for key in ("stiffness", "damping", "range", "limited", "frictionloss"):
            if key in el.attrib and el.attrib[key] not in ("0", "false", "0 0"):
                raise MJCFError(f"{source}: tendon {el.get('name')!r} with {key} is unsupported")


def _parse_contact(p: _Parser, spec: ModelSpec, node: ET.Element | None) -> None:
    if node is None:
        return
    for el in node:
        if el.tag != "exclude":
            raise MJCFError(f"{p.source}: unsupported contact element <{el.tag}>")
        try:
            b1, b2 = spec.body_name.index(el.attrib["body1"]), spec.body_name.index(el.attrib["body2"])
        except (KeyError, ValueError) as e:
            raise MJCFError(f"{p.source}: <exclude> needs existing body1 and body2") from e
        spec.exclude.append((b1, b2))
