"""The ``labworks`` command line.

Packages contribute subcommands through the ``labworks.cli`` entry-point group (a ``click``
command or group, loaded only when used) and their main job through ``labworks.demo`` (a
callable ``demo(out_dir: Path, seed: int) -> Path``, run by ``labworks demo``)::

    [project.entry-points."labworks.cli"]
    ltr = "labworks.ltr.cli:cli"

    [project.entry-points."labworks.demo"]
    ltr = "labworks.ltr.demo:demo"
"""

from __future__ import annotations

import platform
import sys
import time
import traceback
from importlib.metadata import EntryPoint, distributions, entry_points
from pathlib import Path
from typing import Any

import click

from labworks.core.__about__ import __version__

CLI_GROUP = "labworks.cli"
DEMO_GROUP = "labworks.demo"
_BUILTIN = {"info", "demo"}


def _entry_points(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)  # first on sys.path wins, as for imports
    return found


def _broken(name: str, ep: EntryPoint, err: BaseException) -> click.Command:
    detail = "".join(traceback.format_exception_only(type(err), err)).strip()

    @click.command(
        name=name,
        help=f"(failed to load from {ep.value}: {detail})",
        context_settings={"ignore_unknown_options": True},
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def _cmd(args: tuple[str, ...]) -> None:
        raise click.ClickException(f"the '{name}' command could not be loaded from {ep.value}: {detail}")

    return _cmd


class PluginGroup(click.Group):
    """A click group that adds one subcommand per ``labworks.cli`` entry point, loaded lazily."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        plugins = [n for n in _entry_points(CLI_GROUP) if n not in _BUILTIN]
        return sorted(set(super().list_commands(ctx)) | set(plugins))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        builtin = super().get_command(ctx, cmd_name)
        if builtin is not None:
            return builtin
        ep = _entry_points(CLI_GROUP).get(cmd_name)
        if ep is None:
            return None
        try:
            cmd = ep.load()
        except Exception as err:
            return _broken(cmd_name, ep, err)
        if not isinstance(cmd, click.Command):
            return _broken(cmd_name, ep, TypeError(f"expected a click command, got {type(cmd).__name__}"))
        return cmd


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="labworks")
def main() -> None:
    """labworks: PyTorch implementations of published research systems.

    Each installed labworks package adds its own subcommand; `labworks demo` runs the main job of
    every installed package on its built-in data.
    """


@main.command()
def info() -> None:
    """Show installed labworks packages, torch, and the devices this machine offers."""
    import torch

    click.echo(f"python {platform.python_version()} on {platform.platform()}")
    click.echo(f"torch {torch.__version__} (cuda available: {torch.cuda.is_available()})")
    for i in range(torch.cuda.device_count()):
        click.echo(f"  cuda:{i} {torch.cuda.get_device_name(i)}")
    pkgs = sorted(
        (d.metadata["Name"], d.version)
        for d in distributions()
        if (d.metadata["Name"] or "").startswith("labworks-")
    )
    click.echo("labworks packages:")
    for name, version in pkgs:
        click.echo(f"  {name} {version}")
    click.echo(f"commands: {', '.join(n for n in _entry_points(CLI_GROUP) if n not in _BUILTIN) or '(none)'}")
    click.echo(f"demos: {', '.join(_entry_points(DEMO_GROUP)) or '(none)'}")


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Folder for every demo's outputs.",
)
@click.option("--only", multiple=True, help="Run only these packages' demos (repeatable).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed passed to every demo.")
def demo(out_dir: Path, only: tuple[str, ...], seed: int) -> None:
    """Run the main job of every installed labworks package on its built-in default data."""
    eps = _entry_points(DEMO_GROUP)
    unknown = sorted(set(only) - set(eps))
    if unknown:
        raise click.BadParameter(
            f"no demo named {', '.join(unknown)}; installed: {', '.join(sorted(eps)) or '(none)'}",
            param_hint="--only",
        )
    names = [n for n in sorted(eps) if not only or n in only]
    if not names:
        click.echo("no labworks package with a demo is installed (core has none of its own)")
        return
    results: list[tuple[str, str, float]] = []
    failed = False
    for name in names:
        click.secho(f"== {name} ==", bold=True)
        start = time.perf_counter()
        try:
            fn: Any = eps[name].load()
            where = fn(out_dir / name, seed=seed)
            results.append((name, str(where), time.perf_counter() - start))
        except Exception:
            failed = True
            traceback.print_exc()
            results.append((name, "FAILED", time.perf_counter() - start))
    click.secho("\nDemo outputs:", bold=True)
    for name, where, secs in results:
        click.echo(f"  {name:<14} {secs:7.1f}s  {where}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
