"""Physics properties: differentiability (vs finite differences), contacts, dtype, bad models."""

from __future__ import annotations

import pytest
import torch

from labworks.rigidsim import load_model, step
from labworks.rigidsim.contact import collide
from labworks.rigidsim.kinematics import kinematics


def test_gradients_through_many_steps_match_finite_differences(assets):
    """d(final fingertip x)/d(initial velocity, control) through 30 RK4 steps, float64."""
    model = load_model(assets / "reacher.xml", dtype=torch.float64)
    tip = model.spec.body_name.index("fingertip")
    q0 = model.qpos0[None].clone()

    def loss(qd0: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        q, qd = q0, qd0
        for _ in range(30):
            q, qd = step(model, q, qd, u)
        return kinematics(model, q).com[0, tip, 0] + 0.1 * qd[0, 0]

    qd0 = torch.tensor([[0.3, -0.2, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    u = torch.tensor([[0.1, -0.05]], dtype=torch.float64, requires_grad=True)
    g_qd, g_u = torch.autograd.grad(loss(qd0, u), (qd0, u))
    eps = 1e-6
    for var, grad in ((qd0, g_qd), (u, g_u)):
        for i in range(var.shape[1]):
            d = torch.zeros_like(var)
            d[0, i] = eps
            with torch.no_grad():
                fd = (loss(qd0 + d if var is qd0 else qd0, u + d if var is u else u)
                      - loss(qd0 - d if var is qd0 else qd0, u - d if var is u else u)) / (2 * eps)  # fmt: skip
            assert float(grad[0, i]) == pytest.approx(float(fd), rel=1e-5, abs=1e-8)


def test_gradients_through_contacts_are_finite(assets):
    model = load_model(assets / "ant.xml", dtype=torch.float64)
    model.integrator = "euler"
    q = model.qpos0[None].clone()
    q[0, 2] = 0.6
    u = torch.zeros(1, 8, dtype=torch.float64, requires_grad=True)
    qd = torch.zeros(1, model.nv, dtype=torch.float64)
    for _ in range(20):
        q, qd = step(model, q, qd, u)
    (g,) = torch.autograd.grad(q[0, 0] + q[0, 2], u)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_ant_rests_on_the_floor(assets):
    """Dropped with zero control, the Ant settles: no penetration beyond a few mm, no drift, no explosion."""
    model = load_model(assets / "ant.xml", dtype=torch.float64)
    model.integrator = "euler"
    q, qd = model.qpos0[None].clone(), torch.zeros(1, model.nv, dtype=torch.float64)
    u = torch.zeros(1, 8, dtype=torch.float64)
    for _ in range(200):
        q, qd = step(model, q, qd, u)
    kin = kinematics(model, q)
    con = collide(model, kin.xpos, kin.xrot)
    assert con is not None
    assert float(con.dist.min()) > -0.01  # penetration (beyond the margin) under 1 cm
    assert 0.45 < float(q[0, 2]) < 0.7  # MuJoCo's Ant rests near 0.55-0.6
    assert float(q[0, :2].abs().max()) < 0.02
    assert float(qd.abs().max()) < 0.5


def test_sphere_capsule_box_contacts():
    xml = """<mujoco><option timestep="0.005"/><worldbody><geom type="plane" size="5 5 1"/>
    <body pos="0 0 0.3"><freejoint/><geom type="sphere" size="0.1"/></body>
    <body pos="1 0 0.3"><freejoint/><geom type="box" size="0.1 0.1 0.1"/></body>
    <body pos="2 0 0.3"><freejoint/><geom type="capsule" size="0.05 0.2" euler="0 90 0"/></body>
    </worldbody></mujoco>"""
    model = load_model(xml, dtype=torch.float64)
    model.options.max_contacts = None  # all 11 candidates (the default keeps the 8 deepest)
    q, qd = model.qpos0[None].clone(), torch.zeros(1, model.nv, dtype=torch.float64)
    for _ in range(400):
        q, qd = step(model, q, qd)
    z = q[0, [2, 9, 16]]
    torch.testing.assert_close(z, torch.tensor([0.1, 0.1, 0.05], dtype=torch.float64), atol=6e-3, rtol=0)
    assert float(qd.abs().max()) < 1e-2


def test_box_box_contact_is_rejected():
    xml = """<mujoco><worldbody><body><freejoint/><geom type="box" size=".1 .1 .1"/></body>
    <body pos="1 0 0"><freejoint/><geom type="box" size=".1 .1 .1"/></body></worldbody></mujoco>"""
    with pytest.raises(ValueError, match="not supported"):
        load_model(xml)


def test_bad_ctrl_shape(assets):
    model = load_model(assets / "reacher.xml")
    with pytest.raises(ValueError, match="ctrl must have shape"):
        step(model, model.qpos0[None], torch.zeros(1, model.nv), torch.zeros(1, 3))


@pytest.mark.slow
@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_compiled_step_equals_eager(assets, integrator):
    """torch.compile (inductor, CPU) of the step gives the eager result (Ant, with contacts); the compiled
    RK4 stages solve with the sparse LDL^T, eager with LAPACK."""
    model = load_model(assets / "ant.xml", dtype=torch.float32)
    model.integrator = integrator
    gen = torch.Generator().manual_seed(0)
    q = model.qpos0.expand(64, -1).clone()
    q[:, 2] -= 0.15
    qd = 0.1 * torch.randn(64, model.nv, generator=gen)
    u = torch.rand(64, model.nu, generator=gen) * 2 - 1
    fn = torch.compile(lambda a, b, c: step(model, a, b, c), dynamic=False)
    q_e, qd_e = step(model, q, qd, u)
    q_c, qd_c = fn(q, qd, u)
    torch.testing.assert_close(q_c, q_e, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(qd_c, qd_e, atol=1e-3, rtol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("integrator", ["rk4", "euler"])
def test_compile_step_chunks_equal_eager(assets, integrator):
    """compile_step splits a batch above its chunk size into equal chunks and gives the eager result (the
    Euler step compiles with inductor's C++ wrapper on CPU, RK4 without)."""
    from labworks.rigidsim import compile_step

    model = load_model(assets / "reacher.xml", dtype=torch.float32)
    model.integrator = integrator
    gen = torch.Generator().manual_seed(1)
    q = model.qpos0.expand(8, -1) + 0.3 * torch.randn(8, model.nq, generator=gen)
    qd = torch.randn(8, model.nv, generator=gen)
    u = torch.rand(8, model.nu, generator=gen) * 2 - 1
    q_c, qd_c = compile_step(model, chunk=4)(q, qd, u)
    q_e, qd_e = step(model, q, qd, u)
    torch.testing.assert_close(q_c, q_e, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(qd_c, qd_e, atol=1e-4, rtol=1e-4)


_DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.slow
@pytest.mark.parametrize("device", _DEVICES)
def test_compile_step_graph_mode_keeps_earlier_states(assets, device):
    """compile_step(mode="reduce-overhead"): chunked steps equal eager ones, and a state returned by one
    call is still intact after the next calls (on a GPU the step replays as a CUDA graph whose static
    output buffers the next replay overwrites)."""
    from labworks.rigidsim import compile_step

    model = load_model(assets / "reacher.xml", device=device, dtype=torch.float32)
    gen = torch.Generator().manual_seed(2)
    q = (model.qpos0.cpu().expand(8, -1) + 0.3 * torch.randn(8, model.nq, generator=gen)).to(device)
    qd = torch.randn(8, model.nv, generator=gen).to(device)
    u = (torch.rand(8, model.nu, generator=gen) * 2 - 1).to(device)
    fn = compile_step(model, chunk=4, mode="reduce-overhead")
    states, q_c, qd_c = [], q, qd
    for _ in range(4):  # CUDA graphs are recorded after a warm-up call
        q_c, qd_c = fn(q_c, qd_c, u)
        states.append((q_c, qd_c))
    q_e, qd_e = q, qd
    for q_k, qd_k in states:
        q_e, qd_e = step(model, q_e, qd_e, u)
        torch.testing.assert_close(q_k, q_e, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(qd_k, qd_e, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_compile_step_euler_is_differentiable(assets):
    """Gradients flow through the compiled Euler step (C++ wrapper) and equal the eager step's."""
    from labworks.rigidsim import compile_step

    model = load_model(assets / "reacher.xml", dtype=torch.float32)
    model.integrator = "euler"
    gen = torch.Generator().manual_seed(3)
    q = model.qpos0.expand(4, -1) + 0.3 * torch.randn(4, model.nq, generator=gen)
    qd = torch.randn(4, model.nv, generator=gen)
    grads = []
    for fn in (compile_step(model), lambda a, b, c: step(model, a, b, c)):
        u = (torch.rand(4, model.nu, generator=torch.Generator().manual_seed(4)) - 0.5).requires_grad_()
        q_n, qd_n = fn(q, qd, u)
        (q_n.square().sum() + qd_n.square().sum()).backward()
        grads.append(u.grad)
    assert grads[0] is not None and grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], atol=1e-4, rtol=1e-4)
