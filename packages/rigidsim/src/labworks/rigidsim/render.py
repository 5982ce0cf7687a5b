"""Viewers: a rollout as a self-contained interactive HTML page (like Brax's three.js viewer, with a small
inline WebGL-free canvas renderer: no network, no external script) or as an animated GIF.

    traj = rollout(env, policy, steps=200)                  # body poses over time
    write_html(env.model, traj, "ant.html")
    write_gif(env.model, traj, "ant.gif")
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from labworks.core import atomic_path, atomic_write_text
from labworks.rigidsim.kinematics import kinematics
from labworks.rigidsim.math import mat_to_quat
from labworks.rigidsim.model import Model

__all__ = ["Trajectory", "body_poses", "rollout_poses", "write_gif", "write_html"]

Trajectory = tuple[np.ndarray, np.ndarray]  # (T, K, 3) positions, (T, K, 4) quaternions of one environment


def body_poses(model: Model, qs: Tensor) -> Trajectory:
    """qs: (T, nq) configurations of one environment -> body positions and quaternions over time."""
    with torch.no_grad():
        kin = kinematics(model, qs.to(model.dtype))
        quat = mat_to_quat(kin.xrot)
    return kin.xpos.double().cpu().numpy(), quat.double().cpu().numpy()


def _scene(model: Model) -> list[dict[str, object]]:
    s = model.spec
    geoms = []
    for g in range(len(s.geom_type)):
        geoms.append(
            {
                "type": int(s.geom_type[g]),
                "body": int(s.geom_body[g]),
                "pos": [float(x) for x in s.geom_pos[g]],
                "quat": [float(x) for x in s.geom_quat[g]],
                "size": [float(x) for x in s.geom_size[g]],
                "rgba": [float(x) for x in s.geom_rgba[g]],
            }
        )
    return geoms


_HTML = r"""<!doctype html><html><head><meta charset="utf-8"><title>__TITLE__</title>
<style>body{margin:0;background:#f4f4f0;font:13px sans-serif}#c{display:block;width:100vw;height:calc(100vh - 44px)}
#bar{height:44px;display:flex;align-items:center;gap:10px;padding:0 10px}input[type=range]{flex:1}</style></head>
<body><canvas id="c"></canvas><div id="bar"><button id="play">pause</button><input id="t" type="range" min="0" value="0">
<span id="lbl"></span><span>drag: orbit, wheel: zoom</span></div><script>
const D=__DATA__;const cv=document.getElementById('c'),ctx=cv.getContext('2d'),sl=document.getElementById('t'),lbl=document.getElementById('lbl');
sl.max=D.pos.length-1;let frame=0,playing=true,yaw=-0.6,pitch=0.35,dist=D.dist,last=performance.now();
function qm(q){const[w,x,y,z]=q;return[[1-2*(y*y+z*z),2*(x*y-w*z),2*(x*z+w*y)],[2*(x*y+w*z),1-2*(x*x+z*z),2*(y*z-w*x)],[2*(x*z-w*y),2*(y*z+w*x),1-2*(x*x+y*y)]]}
function mv(m,v){return[m[0][0]*v[0]+m[0][1]*v[1]+m[0][2]*v[2],m[1][0]*v[0]+m[1][1]*v[1]+m[1][2]*v[2],m[2][0]*v[0]+m[2][1]*v[1]+m[2][2]*v[2]]}
function mm(a,b){const r=[[0,0,0],[0,0,0],[0,0,0]];for(let i=0;i<3;i++)for(let j=0;j<3;j++)for(let k=0;k<3;k++)r[i][j]+=a[i][k]*b[k][j];return r}
function add(a,b){return[a[0]+b[0],a[1]+b[1],a[2]+b[2]]}
function proj(p,c){const dx=p[0]-c[0],dy=p[1]-c[1],dz=p[2]-c[2];const cy=Math.cos(yaw),sy=Math.sin(yaw),cp=Math.cos(pitch),sp=Math.sin(pitch);
 const x=cy*dx+sy*dy,y0=-sy*dx+cy*dy;const depth=cp*y0+sp*dz+dist,up=-sp*y0+cp*dz;const f=Math.min(cv.width,cv.height)*1.1/Math.max(depth,0.05);
 return[cv.width/2+x*f,cv.height/2-up*f,depth,f]}
function col(c,shade){return`rgba(${Math.round(255*c[0]*shade)},${Math.round(255*c[1]*shade)},${Math.round(255*c[2]*shade)},${c[3]})`}
function draw(){cv.width=cv.clientWidth;cv.height=cv.clientHeight;ctx.clearRect(0,0,cv.width,cv.height);
 const P=D.pos[frame],Q=D.quat[frame];const c=D.track>=0?[P[D.track][0],P[D.track][1],D.center[2]]:D.center;const items=[];
 // floor grid
 ctx.strokeStyle='#d0d0c8';ctx.lineWidth=1;const g0=Math.round(c[0]),g1=Math.round(c[1]);
 for(let i=-6;i<=6;i++){let a=proj([g0+i,g1-6,0],c),b=proj([g0+i,g1+6,0],c);if(a[2]>0.05&&b[2]>0.05){ctx.beginPath();ctx.moveTo(a[0],a[1]);ctx.lineTo(b[0],b[1]);ctx.stroke()}
  a=proj([g0-6,g1+i,0],c);b=proj([g0+6,g1+i,0],c);if(a[2]>0.05&&b[2]>0.05){ctx.beginPath();ctx.moveTo(a[0],a[1]);ctx.lineTo(b[0],b[1]);ctx.stroke()}}
 for(const g of D.geoms){if(g.type===0)continue;const R=mm(qm(Q[g.body]),qm(g.quat));const p=add(P[g.body],mv(qm(Q[g.body]),g.pos));
  if(g.type===2||g.type===4){const s=proj(p,c);items.push([s[2],()=>{ctx.fillStyle=col(g.rgba,1);ctx.beginPath();ctx.arc(s[0],s[1],Math.max(1,g.size[0]*s[3]),0,7);ctx.fill()}])}
  else if(g.type===3||g.type===5){const ax=mv(R,[0,0,g.size[1]]);const a=proj(add(p,ax),c),b=proj(add(p,ax.map(v=>-v)),c);
   items.push([(a[2]+b[2])/2,()=>{ctx.strokeStyle=col(g.rgba,0.9);ctx.lineCap=g.type===3?'round':'butt';ctx.lineWidth=Math.max(1,2*g.size[0]*(a[3]+b[3])/2);ctx.beginPath();ctx.moveTo(a[0],a[1]);ctx.lineTo(b[0],b[1]);ctx.stroke()}])}
  else if(g.type===6){const faces=[[0,1,3,2],[4,5,7,6],[0,1,5,4],[2,3,7,6],[0,2,6,4],[1,3,7,5]];const v=[];
   for(const x of[-1,1])for(const y of[-1,1])for(const z of[-1,1])v.push(proj(add(p,mv(R,[x*g.size[0],y*g.size[1],z*g.size[2]])),c));
   faces.forEach((f,i)=>{const d=f.reduce((s,k)=>s+v[k][2],0)/4;items.push([d,()=>{ctx.fillStyle=col(g.rgba,0.75+0.05*i);ctx.strokeStyle='#333';ctx.lineWidth=0.5;ctx.beginPath();ctx.moveTo(v[f[0]][0],v[f[0]][1]);for(const k of f.slice(1))ctx.lineTo(v[k][0],v[k][1]);ctx.closePath();ctx.fill();ctx.stroke()}])})}}
 items.sort((a,b)=>b[0]-a[0]);for(const it of items)it[1]();lbl.textContent=`t = ${(frame*D.dt).toFixed(2)} s`;sl.value=frame}
function tick(now){if(playing&&now-last>D.dt*1000){frame=(frame+1)%D.pos.length;last=now}draw();requestAnimationFrame(tick)}
document.getElementById('play').onclick=e=>{playing=!playing;e.target.textContent=playing?'pause':'play'};sl.oninput=()=>{frame=+sl.value;playing=false};
let drag=null;cv.onmousedown=e=>drag=[e.clientX,e.clientY];window.onmouseup=()=>drag=null;
window.onmousemove=e=>{if(!drag)return;yaw+=(e.clientX-drag[0])*0.01;pitch=Math.max(-1.4,Math.min(1.4,pitch+(e.clientY-drag[1])*0.01));drag=[e.clientX,e.clientY]};
cv.onwheel=e=>{dist*=Math.exp(e.deltaY*0.001);e.preventDefault()};requestAnimationFrame(tick);
</script></body></html>"""


def write_html(
    model: Model, traj: Trajectory, path: str | Path, dt: float | None = None, track_body: int | None = 1
) -> Path:
    """A self-contained interactive HTML viewer of one environment's trajectory (no network needed)."""
    pos, quat = traj
    if pos.ndim != 3 or pos.shape[1] != model.nbody:
        raise ValueError(f"trajectory must be (T, {model.nbody}, 3) body positions")
    extent = float(np.ptp(pos[0, 1:], axis=0).max()) if model.nbody > 1 else 1.0
    data = {
        "geoms": _scene(model),
        "pos": np.round(pos, 4).tolist(),
        "quat": np.round(quat, 4).tolist(),
        "dt": float(dt or model.timestep),
        "center": [float(x) for x in pos[0, 1:].mean(0)] if model.nbody > 1 else [0.0, 0.0, 0.0],
        "dist": max(1.0, 3.0 * extent),
        "track": -1 if track_body is None or track_body >= model.nbody else int(track_body),
    }
    html = _HTML.replace("__TITLE__", f"rigidsim: {model.spec.name}").replace("__DATA__", json.dumps(data))
    return atomic_write_text(path, html)


def _project(
    points: np.ndarray, center: np.ndarray, yaw: float, pitch: float, dist: float
) -> tuple[np.ndarray, np.ndarray]:
    d = points - center
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    x = cy * d[..., 0] + sy * d[..., 1]
    y0 = -sy * d[..., 0] + cy * d[..., 1]
    depth = cp * y0 + sp * d[..., 2] + dist
    up = -sp * y0 + cp * d[..., 2]
    f = 1.0 / np.maximum(depth, 0.05)
    return np.stack([x * f, up * f], -1), depth


def write_gif(
    model: Model, traj: Trajectory, path: str | Path, dt: float | None = None, every: int = 1, size: int = 320
) -> Path:
    """An animated GIF of the trajectory (painter's algorithm over the primitive geoms)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from labworks.rigidsim.mjcf import quat_to_mat

    pos, quat = traj
    s = model.spec
    frames = []
    extent = float(np.ptp(pos[0, 1:], axis=0).max()) if model.nbody > 1 else 1.0
    dist = max(1.0, 3.0 * extent)
    for t in range(0, pos.shape[0], every):
        fig = plt.figure(figsize=(size / 80, size / 80), dpi=80)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(-0.6, 0.6)
        ax.set_ylim(-0.6, 0.6)
        ax.axis("off")
        center = (
            np.array([pos[t, 1, 0], pos[t, 1, 1], pos[0, 1:, 2].mean()]) if model.nbody > 1 else np.zeros(3)
        )
        for i in range(-5, 6):  # floor grid
            for a0, b0 in (([i, -5, 0], [i, 5, 0]), ([-5, i, 0], [5, i, 0])):
                seg = np.array([a0, b0], float) + np.array([round(center[0]), round(center[1]), 0.0])
                xy, dep = _project(seg, center, -0.6, 0.35, dist)
                if (dep > 0.05).all():
                    ax.plot(xy[:, 0], xy[:, 1], color="#d0d0c8", lw=0.6, zorder=0)
        items = []
        for g in range(len(s.geom_type)):
            gt = s.geom_type[g]
            if gt == 0:
                continue
            b = s.geom_body[g]
            rb = quat_to_mat(quat[t, b])
            p = pos[t, b] + rb @ s.geom_pos[g]
            rg = rb @ quat_to_mat(s.geom_quat[g])
            color = tuple(np.clip(s.geom_rgba[g], 0, 1))
            if gt in (3, 5):
                ax_vec = rg @ np.array([0, 0, s.geom_size[g][1]])
                xy, dep = _project(np.stack([p + ax_vec, p - ax_vec]), center, -0.6, 0.35, dist)
                items.append((dep.mean(), "seg", xy, color, s.geom_size[g][0] / dep.mean()))
            elif gt == 6:
                corners = (
                    np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * s.geom_size[g]
                )
                xy, dep = _project(p + corners @ rg.T, center, -0.6, 0.35, dist)
                for f in ([0, 1, 3, 2], [4, 5, 7, 6], [0, 1, 5, 4], [2, 3, 7, 6], [0, 2, 6, 4], [1, 3, 7, 5]):
                    items.append((dep[f].mean(), "poly", xy[f], color, 0.0))
            else:
                xy, dep = _project(p[None], center, -0.6, 0.35, dist)
                items.append((float(dep[0]), "disk", xy[0], color, s.geom_size[g][0] / float(dep[0])))
        for _, kind, xy, color, r in sorted(items, key=lambda it: -it[0]):
            if kind == "seg":
                ax.plot(xy[:, 0], xy[:, 1], color=color, lw=max(1.0, r * size * 0.9), solid_capstyle="round")
            elif kind == "poly":
                ax.fill(xy[:, 0], xy[:, 1], color=color, ec="#333", lw=0.4)
            else:
                ax.add_patch(plt.Circle(tuple(xy), r, color=color))
        fig.canvas.draw()
        frames.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]))  # type: ignore[attr-defined]
        plt.close(fig)
    path = Path(path)
    with atomic_path(path) as tmp:
        frames[0].save(
            tmp, format="GIF", save_all=True, append_images=frames[1:], loop=0,
            duration=int(1000 * (dt or model.timestep) * every),
        )  # fmt: skip
    return path


def rollout_poses(env_name: str, steps: int, seed: int = 0, agent_path: str | Path | None = None):  # type: ignore[no-untyped-def]
    """One environment's rollout (random actions or a PPO agent's deterministic ones) -> (env, trajectory)."""
    from labworks.rigidsim.envs import make

    env = make(env_name, 1, seed=seed)
    policy = None
    if agent_path is not None:
        from labworks.rigidsim.ppo import load_agent

        policy, cfg = load_agent(agent_path)
        if cfg.env != env_name:
            raise ValueError(f"the agent was trained on {cfg.env!r}, not {env_name!r}")
    gen = torch.Generator().manual_seed(seed)
    state = env.init()
    qs = [state.q[0]]
    with torch.no_grad():
        for _ in range(steps):
            if policy is not None:
                action = policy.act(state.obs.float(), deterministic=True).to(env.dtype)
            else:
                action = (torch.rand(1, env.action_size, generator=gen) * 2 - 1).to(env.dtype)
            state = env.step(state, action)
            qs.append(state.q[0])
    return env, body_poses(env.model, torch.stack(qs))
