"""Sessions for the labworks monorepo (uv venvs, reused between runs).

    nox -s tests                     every package in its own venv, then all packages together
    nox -s "tests(package='core')"   one package, alone with what it declares
    nox -s demo                      every package's main job on its built-in data
    nox -s lint wheels bench slow gpu

The PyTorch stack is pinned by constraints.txt in every session.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import nox
from nox.project import dependency_groups, load_toml
from nox.virtualenv import UV

nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]

ROOT = Path(__file__).parent
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())
PYTEST = ("python", "-m", "pytest", "--timeout=900", "-p", "no:cacheprovider")


def _pyproject(pkg: str) -> dict:
    return load_toml(ROOT / "packages" / pkg / "pyproject.toml")


def _siblings(pkg: str) -> list[str]:
    """``pkg`` and every labworks package it depends on, recursively (folder names)."""
    seen: list[str] = []
    todo = [pkg]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        for req in _pyproject(name)["project"].get("dependencies", []):
            m = re.match(r"labworks-([A-Za-z0-9_-]+)", req)
            if m:
                folder = m.group(1).replace("-", "_")
                if folder not in PACKAGES:
                    raise ValueError(f"{name} depends on {req!r} but packages/{folder} does not exist")
                todo.append(folder)
    return seen


def _groups(pkgs: list[str], group: str) -> list[str]:
    reqs: list[str] = []
    for pkg in pkgs:
        data = _pyproject(pkg)
        if group in data.get("dependency-groups", {}):
            reqs += [r for r in dependency_groups(data, group) if not r.startswith("labworks-")]
    return reqs


def _install(session: nox.Session, pkgs: list[str], *groups: str, extra: tuple[str, ...] = ()) -> None:
    editable = [a for p in pkgs for a in ("-e", f"packages/{p}")]
    reqs = [r for g in groups for r in _groups(pkgs, g)]
    session.install(*CONSTRAINTS, *editable, *reqs, *extra)


@nox.session
@nox.parametrize("package", [*PACKAGES, "all"])
def tests(session: nox.Session, package: str) -> None:
    """One package's tests in a venv holding only it and what it declares ('all': everything together)."""
    if package == "all":
        _install(session, PACKAGES, "test")
        # the cross-package suite: top-level tests/*.py (namespace, integration); package suites ran alone
        targets = sorted(str(p) for p in (ROOT / "tests").glob("test_*.py"))
        if (ROOT / "tests" / "integration").is_dir():
            targets.append("tests/integration")
    else:
        pkgs = _siblings(package)
        _install(session, pkgs, "test")
        targets = [f"tests/{package}"]
    session.run(*PYTEST, *targets, *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    """Tests marked slow (all packages together)."""
    _install(session, PACKAGES, "test")
    session.run(*PYTEST, "tests", "-m", "slow", *session.posargs, success_codes=[0, 5])


@nox.session(default=False)
def gpu(session: nox.Session) -> None:
    """Tests marked gpu, for the GPU machine: CUDA parity, Triton kernels, opcheck."""
    _install(session, PACKAGES, "test")
    session.run(*PYTEST, "tests", "-m", "gpu", *session.posargs, env={"CI": os.environ.get("CI", "1")})


@nox.session
def demo(session: nox.Session) -> None:
    """Run every package's main job on its built-in default data."""
    _install(session, PACKAGES)
    out = session.posargs[0] if session.posargs else "demo-output"
    session.run("labworks", "demo", "--out", out)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check + format check, mypy on every package's sources."""
    _install(session, PACKAGES, extra=("ruff>=0.8", "mypy>=1.13", "types-PyYAML"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", *[a for p in PACKAGES for a in ("-p", f"labworks.{p}")])


@nox.session
def wheels(session: nox.Session) -> None:
    """Build every wheel; install each alone (with its labworks dependencies) in a fresh venv and import it."""
    tmp = Path(session.create_tmp())
    shutil.rmtree(tmp)  # fresh venvs and wheels on every run
    dist = tmp / "dist"
    for pkg in PACKAGES:
        session.run(UV, "build", "--wheel", "-q", "-o", str(dist), f"packages/{pkg}", external=True)
    built = {pkg: next(dist.glob(f"labworks_{pkg}-*.whl")) for pkg in PACKAGES}
    for pkg, whl in built.items():
        names = zipfile.ZipFile(whl).namelist()
        if "labworks/__init__.py" in names:
            session.error(f"{whl.name} ships labworks/__init__.py: labworks must stay a PEP 420 namespace")
        stray = [n for n in names if not n.startswith((f"labworks/{pkg}/", "labworks_"))]
        if stray:
            session.error(f"{whl.name} ships files outside labworks/{pkg}/: {stray[:5]}")
        if f"labworks/{pkg}/py.typed" not in names:
            session.error(f"{whl.name} lacks labworks/{pkg}/py.typed")
        tracked = subprocess.run(  # paths relative to src/, as in the wheel
            ["git", "ls-files", f"labworks/{pkg}"],
            cwd=ROOT / "packages" / pkg / "src",
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        missing = [f for f in tracked if f not in names]
        if missing:  # package data (MJCF assets, C++ sources) must ship, not only the .py files
            session.error(f"{whl.name} lacks tracked files: {missing[:5]}")
    for pkg in PACKAGES:
        venv = tmp / f"venv-{pkg}"
        py = str(venv / "bin" / "python")
        session.run(UV, "venv", "-q", "-p", os.path.join(session.bin, "python"), str(venv), external=True)
        wheels_needed = [str(built[p]) for p in _siblings(pkg)]
        session.run(UV, "pip", "install", "-q", "-p", py, *CONSTRAINTS, *wheels_needed, external=True)
        session.run(
            py,
            "-c",
            f"import importlib.util, labworks, labworks.{pkg} as m; "
            "assert importlib.util.find_spec('labworks').origin in (None, 'namespace'), 'labworks is not a namespace'; "
            f"print('labworks-{pkg}', m.__version__, 'imports alone')",
            external=True,
        )
        session.run(str(venv / "bin" / "labworks"), "--help", external=True, silent=True)
    session.log(f"{len(built)} wheels built, each installed alone and imported: {dist}")


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark script under benchmarks/<package>/ (side by side with its peer)."""
    _install(session, PACKAGES, "test", "bench")
    scripts = sorted((ROOT / "benchmarks").glob("*/bench_*.py"))
    only = set(session.posargs)
    for script in scripts:
        if only and script.parent.name not in only:
            continue
        session.run("python", str(script))
