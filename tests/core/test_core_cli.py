"""The `labworks` command discovers subcommands and demos from entry points."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from labworks.core.cli import main

PLUGIN = textwrap.dedent(
    """
    import click
    from pathlib import Path

    @click.group(help="A plugin group from an entry point.")
    def cli():
        pass

    @cli.command()
    @click.option("--name", required=True)
    def greet(name):
        click.echo(f"hello {name}")

    def demo(out_dir: Path, seed: int = 0) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / "result.txt"
        target.write_text(f"seed={seed}")
        return target
    """
)


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install a fake distribution (module + dist-info with entry points) on sys.path."""
    (tmp_path / "lw_fake_plugin.py").write_text(PLUGIN)
    info = tmp_path / "lw_fake_plugin-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lw-fake-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        "[labworks.cli]\nhello = lw_fake_plugin:cli\nbroken = lw_missing_module:cli\n\n"
        "[labworks.demo]\nhello = lw_fake_plugin:demo\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_subcommand_discovered_from_entry_point(plugin_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "hello" in result.output and "info" in result.output and "demo" in result.output
    result = runner.invoke(main, ["hello", "greet", "--name", "ada"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "hello ada"
    assert "--name" in runner.invoke(main, ["hello", "greet", "--help"]).output


def test_broken_plugin_fails_loudly_but_alone(plugin_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["broken", "x"])
    assert result.exit_code != 0
    assert "could not be loaded from lw_missing_module:cli" in result.output
    assert runner.invoke(main, ["hello", "greet", "--name", "b"]).exit_code == 0


def test_demo_runs_every_demo_and_reports_outputs(plugin_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--seed", "5", "--only", "hello"])
    assert result.exit_code == 0, result.output
    assert (out / "hello" / "result.txt").read_text() == "seed=5"
    assert str(out / "hello" / "result.txt") in result.output
    bad = CliRunner().invoke(main, ["demo", "--only", "nope"])
    assert bad.exit_code != 0 and "no demo named nope" in bad.output


def test_unknown_command_and_version() -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["no-such-command"]).exit_code != 0
    from labworks.core import __version__

    assert __version__ in runner.invoke(main, ["--version"]).output


def test_console_script_in_a_real_process(plugin_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "labworks.core.cli", "hello", "greet", "--name", "proc"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hello proc"
    info = subprocess.run(
        [sys.executable, "-m", "labworks.core.cli", "info"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "labworks-core" in info.stdout and "hello" in info.stdout
