"""The repository layout every package follows, and the PEP 420 namespace rule."""

from __future__ import annotations

import importlib
import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())


def test_there_are_packages() -> None:
    assert "core" in [p.name for p in PACKAGES]


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_package_layout(pkg: Path) -> None:
    name = pkg.name
    assert not (pkg / "src" / "labworks" / "__init__.py").exists(), "labworks must stay a PEP 420 namespace"
    src = pkg / "src" / "labworks" / name
    for required in ("__init__.py", "__about__.py", "py.typed"):
        assert (src / required).is_file(), f"{src / required} missing"
    for required in ("README.md", "CHANGELOG.md"):
        assert (pkg / required).is_file(), f"{pkg / required} missing"
    meta = tomllib.loads((pkg / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "labworks-" + name.replace("_", "-")
    assert meta["build-system"]["build-backend"] == "hatchling.build"
    assert meta["tool"]["hatch"]["version"]["path"] == f"src/labworks/{name}/__about__.py"
    assert meta["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/labworks"]
    assert re.match(r"^__version__ = \"\d+\.\d+\.\d+", (src / "__about__.py").read_text())
    assert (ROOT / "tests" / name).is_dir(), f"tests/{name} missing"
    if name != "core":
        deps = meta["project"]["dependencies"]
        assert any(d.startswith("labworks-core") for d in deps), (
            f"{name} must depend on labworks-core by range"
        )


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_installed_package_is_namespace_member(pkg: Path) -> None:
    if importlib.util.find_spec(f"labworks.{pkg.name}") is None:
        pytest.skip(f"labworks-{pkg.name} not installed in this environment")
    import labworks

    assert getattr(labworks, "__file__", None) is None, "labworks resolved to a regular package"
    assert type(labworks.__path__).__name__ == "_NamespacePath"
    mod = importlib.import_module(f"labworks.{pkg.name}")
    assert mod.__version__
