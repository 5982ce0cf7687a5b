"""Generalized-coordinate dynamics against MuJoCo: mass matrix, bias forces, kinematics, trajectories."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labworks.rigidsim import dynamics, load_model, step
from labworks.rigidsim.kinematics import com_jacobians

mujoco = pytest.importorskip("mujoco")


def _random_states(ref, n, seed):
    rng = np.random.default_rng(seed)
    data = mujoco.MjData(ref)
    out = []
    for _ in range(n):
        data.qpos[:] = ref.qpos0 + 0.4 * rng.standard_normal(ref.nq)
        for j in range(ref.njnt):
            if ref.jnt_type[j] in (0, 1):  # normalise quaternions
                a = ref.jnt_qposadr[j] + (3 if ref.jnt_type[j] == 0 else 0)
                data.qpos[a : a + 4] /= np.linalg.norm(data.qpos[a : a + 4])
        data.qvel[:] = rng.standard_normal(ref.nv)
        mujoco.mj_forward(ref, data)
        full = np.zeros((ref.nv, ref.nv))
        mujoco.mj_fullM(ref, data, full)
        out.append((data.qpos.copy(), data.qvel.copy(), full, data.qfrc_bias.copy(), data.xpos.copy()))
    return [np.array(x) for x in zip(*out, strict=True)]


# every joint type, two hinges on one body, a ball under a free root, off-axis inertias and joint anchors
MIXED = """
<mujoco>
  <option gravity="0.3 -0.2 -9.81"/>
  <default><geom contype="0" conaffinity="0"/></default>
  <worldbody>
    <body name="root" pos="0 0 1">
      <freejoint/>
      <geom type="box" size=".2 .1 .05" mass="2"/>
      <body name="arm" pos=".2 0 0" quat="0.9 0.1 0.3 0.2">
        <joint name="ball" type="ball" pos="-.05 0 0" armature=".01"/>
        <geom type="capsule" fromto="0 0 0 .3 .1 0" size=".04"/>
        <body name="wrist" pos=".3 .1 0">
          <joint name="h1" type="hinge" axis="0 0 1" pos=".02 0 0"/>
          <joint name="h2" type="hinge" axis="0 1 1" armature=".05"/>
          <geom type="box" size=".05 .03 .02" pos=".05 0 .01" euler="10 20 30"/>
          <body name="slider" pos=".1 0 0">
            <joint name="s" type="slide" axis="1 .2 0"/>
            <geom type="sphere" size=".03" pos="0 .02 0"/>
          </body>
        </body>
      </body>
      <body name="leg" pos="-.2 0 0">
        <joint name="h3" type="hinge" axis="1 0 0" pos="0 .01 .02" damping=".1"/>
        <geom type="capsule" fromto="0 0 0 0 0 -.3" size=".03"/>
      </body>
    </body>
  </worldbody>
</mujoco>
"""


def _model_path(assets, name, tmp_path):
    """A gymnasium asset, or the MIXED model written to tmp_path."""
    if name != "mixed":
        return assets / f"{name}.xml"
    path = tmp_path / "mixed.xml"
    path.write_text(MIXED)
    return path


@pytest.mark.parametrize("name", ["reacher", "half_cheetah", "ant", "humanoid", "hopper", "mixed"])
def test_mass_matrix_and_bias_equal_mujoco(assets, name, tmp_path):
    path = _model_path(assets, name, tmp_path)
    ref = mujoco.MjModel.from_xml_path(str(path))
    q, qd, full, bias, xpos = _random_states(ref, 4, seed=1)
    model = load_model(path, dtype=torch.float64)
    dyn = dynamics(model, torch.tensor(q), torch.tensor(qd))
    scale = max(1.0, np.abs(bias).max())
    np.testing.assert_allclose(dyn.kin.xpos.numpy(), xpos, atol=1e-12)
    np.testing.assert_allclose(dyn.mass_matrix.numpy(), full, atol=1e-11)
    np.testing.assert_allclose(dyn.bias.numpy(), bias, atol=1e-11 * scale)


def test_float32_close_to_float64(assets):
    path = assets / "ant.xml"
    ref = mujoco.MjModel.from_xml_path(str(path))
    q, qd, full, bias, _ = _random_states(ref, 3, seed=2)
    dyn = dynamics(load_model(path, dtype=torch.float32), torch.tensor(q).float(), torch.tensor(qd).float())
    np.testing.assert_allclose(dyn.mass_matrix.numpy(), full, atol=1e-5)
    np.testing.assert_allclose(dyn.bias.numpy(), bias, rtol=1e-4, atol=1e-4)


def test_reacher_trajectory_matches_mujoco_rk4(assets):
    """Contact-free, limits inactive: the same RK4 step as MuJoCo, agreeing to 1e-9 over 1 s."""
    path = assets / "reacher.xml"
    ref = mujoco.MjModel.from_xml_path(str(path))
    data = mujoco.MjData(ref)
    rng = np.random.default_rng(3)
    data.qpos[:] = ref.qpos0 + 0.1 * rng.standard_normal(ref.nq)
    data.qvel[:] = 0.05 * rng.standard_normal(ref.nv)
    data.ctrl[:] = [0.05, -0.03]
    model = load_model(path, dtype=torch.float64)
    q, qd = torch.tensor(data.qpos.copy())[None], torch.tensor(data.qvel.copy())[None]
    u = torch.tensor(data.ctrl.copy())[None]
    for _ in range(100):
        mujoco.mj_step(ref, data)
        q, qd = step(model, q, qd, u)
    np.testing.assert_allclose(q[0].numpy(), data.qpos, atol=1e-9)
    np.testing.assert_allclose(qd[0].numpy(), data.qvel, atol=1e-9)


def test_batched_equals_single(assets):
    model = load_model(assets / "half_cheetah.xml", dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    q = model.qpos0 + 0.1 * torch.randn(5, model.nq, generator=gen, dtype=torch.float64)
    qd = torch.randn(5, model.nv, generator=gen, dtype=torch.float64)
    u = torch.rand(5, model.nu, generator=gen, dtype=torch.float64) * 2 - 1
    qb, qdb = step(model, q, qd, u)
    for i in range(5):
        qi, qdi = step(model, q[i : i + 1], qd[i : i + 1], u[i : i + 1])
        torch.testing.assert_close(qi[0], qb[i])
        torch.testing.assert_close(qdi[0], qdb[i])


def test_com_jacobians_give_body_velocities(assets, tmp_path):
    path = tmp_path / "mixed.xml"
    path.write_text(MIXED)
    ref = mujoco.MjModel.from_xml_path(str(path))
    q, qd, *_ = _random_states(ref, 3, seed=4)
    model = load_model(path, dtype=torch.float64)
    dyn = dynamics(model, torch.tensor(q), torch.tensor(qd))
    jv, jw = com_jacobians(model, dyn.kin)
    qdt = torch.tensor(qd)
    torch.testing.assert_close(torch.einsum("bkvd,bv->bkd", jv, qdt), dyn.com_vel)
    torch.testing.assert_close(torch.einsum("bkvd,bv->bkd", jw, qdt), dyn.ang_vel)
    data = mujoco.MjData(ref)
    for i in range(3):  # MuJoCo's cvel: (angular, linear at the subtree COM) -> COM velocity of each body
        data.qpos[:], data.qvel[:] = q[i], qd[i]
        mujoco.mj_forward(ref, data)
        for k in range(1, ref.nbody):
            vel = np.zeros(6)
            mujoco.mj_objectVelocity(ref, data, mujoco.mjtObj.mjOBJ_BODY, k, vel, 0)
            np.testing.assert_allclose(dyn.ang_vel[i, k].numpy(), vel[:3], atol=1e-10)


@pytest.mark.parametrize("name", ["mixed", "ant", "humanoid"])
def test_written_out_tree_sums_equal_the_mask_products(assets, name, tmp_path, monkeypatch):
    """Under torch.compile the tree sums are written out over the masks' nonzeros; run eagerly with the
    compile switch faked, the dynamics (mass matrix, bias, body velocities) equal the mask products'."""
    path = _model_path(assets, name, tmp_path)
    model = load_model(path, dtype=torch.float64)
    assert set(model.tree_rows) == {"body_dof", "frame_dof", "dof_subtree"}
    gen = torch.Generator().manual_seed(3)
    q = model.qpos0 + 0.3 * torch.randn(4, model.nq, generator=gen, dtype=torch.float64)
    qd = torch.randn(4, model.nv, generator=gen, dtype=torch.float64)
    want = dynamics(model, q, qd)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    got = dynamics(model, q, qd)
    for a, b in [(got.mass_matrix, want.mass_matrix), (got.bias, want.bias), (got.com_vel, want.com_vel)]:
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
    assert want.mass_matrix.abs().max() > 0.1 and want.com_vel.abs().max() > 0.1


SPINNER = """
<mujoco>
  <option gravity="0 0 0" integrator="RK4" timestep="{h}"/>
  <worldbody>
    <body pos="0 0 1">
      <freejoint/>
      <geom type="box" size=".3 .2 .1" mass="1" contype="0" conaffinity="0"/>
      <body pos=".3 0 0">
        <joint type="ball"/>
        <geom type="capsule" fromto="0 0 0 .3 .1 0" size=".05" contype="0" conaffinity="0"/>
      </body>
    </body>
  </worldbody>
</mujoco>
"""
SPIN_QVEL = [0.1, 0.2, 0.3, 1.0, 2.0, 3.0, -1.0, 0.5, 2.0]


def test_rk4_is_fourth_order_with_quaternions():
    """Free + ball joints tumbling: halving the step divides the error at a fixed time by ~16."""

    def run(h, n):
        model = load_model(SPINNER.format(h=h), dtype=torch.float64)
        q, qd = model.qpos0[None].clone(), torch.tensor([SPIN_QVEL], dtype=torch.float64)
        for _ in range(n):
            q, qd = step(model, q, qd)
        return torch.cat([q, qd], 1)

    exact = run(0.04 / 64, 64 * 8)
    err = [(run(0.04 / k, k * 8) - exact).abs().max().item() for k in (1, 2)]
    assert err[0] / err[1] > 12, err  # (2nd order: ~4)


def test_rk4_quaternions_match_mujoco():
    if int(mujoco.__version__.split(".")[0]) < 4:
        pytest.skip("MuJoCo < 4 integrates quaternions in RK4 by the exponential map (2nd order)")
    for h, tol in ((0.01, 1e-9), (0.005, 1e-10)):
        ref = mujoco.MjModel.from_xml_string(SPINNER.format(h=h))
        data = mujoco.MjData(ref)
        data.qvel[:] = SPIN_QVEL
        q0, v0 = data.qpos.copy(), data.qvel.copy()
        mujoco.mj_step(ref, data)
        model = load_model(SPINNER.format(h=h), dtype=torch.float64)
        q, qd = step(model, torch.tensor(q0)[None], torch.tensor(v0)[None])
        np.testing.assert_allclose(q[0].numpy(), data.qpos, atol=tol)
        np.testing.assert_allclose(qd[0].numpy(), data.qvel, atol=10 * tol)


def test_eager_chunking_equals_one_pass(assets, monkeypatch):
    import sys

    physics = sys.modules["labworks.rigidsim.physics"]
    model = load_model(assets / "ant.xml", dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    q = model.qpos0 + 0.05 * torch.randn(5, model.nq, generator=gen, dtype=torch.float64)
    qd = torch.randn(5, model.nv, generator=gen, dtype=torch.float64)
    u = torch.rand(5, model.nu, generator=gen, dtype=torch.float64) * 2 - 1
    whole = step(model, q, qd, u)
    monkeypatch.setattr(physics, "EAGER_CHUNK", 2)
    chunked = step(model, q, qd, u)
    for a, b in zip(whole, chunked, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["ant", "humanoid", "mixed"])
def test_tree_ldl_solves_like_dense(assets, name, tmp_path):
    """The sparse LDL^T used under torch.compile equals a dense solve on the (MuJoCo-checked) mass
    matrices, including free, ball and several hinges on one body."""
    from labworks.rigidsim.linalg import ldl_factor, ldl_solve

    path = _model_path(assets, name, tmp_path)
    ref = mujoco.MjModel.from_xml_path(str(path))
    _, _, full, _, _ = _random_states(ref, 5, seed=3)
    model = load_model(path, dtype=torch.float64)
    # the dof tree is MuJoCo's
    assert model.dof_parent_ids == list(ref.dof_parentid)
    rhs = torch.randn(5, model.nv, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mass = torch.tensor(full)
    parents = model.dof_parent_ids
    x = ldl_solve(ldl_factor(mass.permute(1, 2, 0), parents), parents, rhs.permute(1, 2, 0))
    np.testing.assert_allclose(x.permute(2, 0, 1).numpy(), np.linalg.solve(full, rhs.numpy()), atol=1e-9)
    # a matrix that is not positive definite gives NaN, no exception
    bad = mass.clone()
    bad[0] = -bad[0]
    x = ldl_solve(ldl_factor(bad.permute(1, 2, 0), parents), parents, rhs.permute(1, 2, 0)).permute(2, 0, 1)
    assert torch.isnan(x[0]).all() and torch.isfinite(x[1:]).all()


@pytest.mark.parametrize("name", ["ant", "humanoid"])
def test_compiled_spd_inverse_is_the_dense_inverse(assets, name, tmp_path, monkeypatch):
    """spd_inverse's compiled branch (the LDL^T solved for identity columns, batch-first) equals the dense
    inverse, and a matrix that is not positive definite gives NaN rows; the branch is run eagerly here, with
    the C++ op (which would take precedence on CPU) switched off."""
    from labworks.rigidsim import cpu_ops
    from labworks.rigidsim.linalg import spd_inverse

    path = _model_path(assets, name, tmp_path)
    ref = mujoco.MjModel.from_xml_path(str(path))
    _, _, full, _, _ = _random_states(ref, 5, seed=4)
    model = load_model(path, dtype=torch.float64)
    mass = torch.tensor(full)
    bad = mass.clone()
    bad[0] = -bad[0]
    monkeypatch.setattr(cpu_ops, "available", lambda: False)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    inv = spd_inverse(mass, model.dof_parent_ids)
    assert inv.shape == mass.shape and inv.is_contiguous()
    np.testing.assert_allclose(inv.numpy(), np.linalg.inv(full), atol=1e-9)
    inv_bad = spd_inverse(bad, model.dof_parent_ids)
    assert torch.isnan(inv_bad[0]).any() and torch.isfinite(inv_bad[1:]).all()
