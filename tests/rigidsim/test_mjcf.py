"""The MJCF reader against MuJoCo's own compiler on gymnasium's models, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from labworks.rigidsim import MJCFError, load_mjcf, parse_mjcf

mujoco = pytest.importorskip("mujoco")

MODELS = [
    "ant",
    "half_cheetah",
    "humanoid",
    "reacher",
    "hopper",
    "walker2d",
    "swimmer",
    "inverted_double_pendulum",
]


@pytest.mark.parametrize("name", MODELS)
def test_compiled_model_matches_mujoco(assets, name):
    path = assets / f"{name}.xml"
    spec = load_mjcf(path)
    ref = mujoco.MjModel.from_xml_path(str(path))
    assert (spec.nbody, spec.nq, spec.nv, spec.nu) == (ref.nbody, ref.nq, ref.nv, ref.nu)
    np.testing.assert_allclose(spec.body_mass, ref.body_mass, rtol=1e-12, atol=1e-14)
    # principal inertia (MuJoCo stores the diagonalised tensor)
    eig = np.array([np.sort(np.linalg.eigvalsh(i)) for i in spec.body_inertia])
    np.testing.assert_allclose(eig, np.sort(ref.body_inertia, 1), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(spec.qpos0(), ref.qpos0, atol=1e-12)
    assert spec.timestep == pytest.approx(ref.opt.timestep)
    np.testing.assert_allclose(spec.act_gear, ref.actuator_gear[:, 0])
    limited = [bool(x) for x in ref.jnt_limited]
    assert spec.jnt_limited == limited
    np.testing.assert_allclose(np.array(spec.jnt_range)[limited], ref.jnt_range[limited], atol=1e-12)
    np.testing.assert_allclose(spec.jnt_armature, [ref.dof_armature[a] for a in ref.jnt_dofadr])
    np.testing.assert_allclose(spec.jnt_damping, [ref.dof_damping[a] for a in ref.jnt_dofadr])


BASE = """<mujoco><worldbody><body name="b" pos="0 0 1">{inner}</body></worldbody>{extra}</mujoco>"""


@pytest.mark.parametrize(
    ("inner", "extra", "match"),
    [
        ('<geom type="mesh" size="1"/>', "", "unsupported geom type 'mesh'"),
        ('<geom size="0.1"/><composite/>', "", "unsupported element <composite>"),
        ('<geom size="0.1"/><joint type="hinge"/>', "<equality/>", "unsupported element <equality>"),
        (
            '<geom size="0.1"/><joint name="j"/>',
            '<actuator><position joint="j"/></actuator>',
            "unsupported actuator <position>",
        ),
        (
            '<geom size="0.1"/><joint name="j"/>',
            '<actuator><motor joint="nope"/></actuator>',
            "unknown joint 'nope'",
        ),
        ('<geom size="-1"/>', "", "size must be positive"),
        ('<geom size="0.1"/><joint range="1 0" limited="true"/>', "", "lower bound"),
        ('<geom size="0.1" quat="1 0 0 nan"/>', "", "non-finite"),
        ('<geom fromto="0 0 0 0 0 0" size="0.1" type="capsule"/>', "", "endpoints coincide"),
        ("<joint/>", "", "has joints but no mass"),
    ],
)
def test_clear_errors(inner, extra, match):
    with pytest.raises(MJCFError, match=match):
        parse_mjcf(BASE.format(inner=inner, extra=extra))


def test_malformed_xml():
    with pytest.raises(MJCFError, match="malformed XML"):
        parse_mjcf("<mujoco><worldbody></mujoco>")


def test_default_classes_and_childclass():
    xml = """<mujoco><default><default class="heavy"><geom density="2000"/></default></default>
    <worldbody><body childclass="heavy"><geom size="0.1"/><joint/></body>
    <body pos="1 0 0"><geom size="0.1"/><joint/></body></worldbody></mujoco>"""
    spec = parse_mjcf(xml)
    assert spec.body_mass[1] == pytest.approx(2 * spec.body_mass[2])
