"""Shared options, the vault opener, and output helpers (JSON or rich) for commands."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
link_option = click.option(
    "--link",
    type=click.Choice(["auto", "reflink", "hardlink", "symlink", "copy"]),
    default="auto",
    show_default=True,
    help="How bytes move: auto = reflink if the filesystem can, else copy.",
)


def open_vault_from(ctx: click.Context):
    import lensvault

    vault = lensvault.open(ctx.find_root().obj.get("vault_path"))
    # Closed when the command ends, not left to interpreter teardown (main freezes the
    # garbage collector on the way out, so nothing may depend on a final collection).
    ctx.call_on_close(vault.close)
    return vault


def echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str, ensure_ascii=False))


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def table(*columns: str, title: str | None = None, right: tuple[str, ...] = ()):
    """A borderless rich table whose cells fold instead of being cut: a name or ref that
    does not fit the terminal goes on over the next line, never ends in '…'."""
    from rich.table import Table

    t = Table(box=None, title=title, pad_edge=False)
    for col in columns:
        t.add_column(col, overflow="fold", justify="right" if col in right else "left")
    return t


def print_table(t, indent: int = 0) -> None:
    """Print a table, indented under the lines above it."""
    if indent:
        from rich.padding import Padding

        t = Padding(t, (0, 0, 0, indent), expand=False)
    console().print(t)


class RichProgress:
    """Progress bars on stderr, shown only for work that outlasts a moment."""

    def __init__(self):
        self._console = console(stderr=True)

    @contextmanager
    def task(self, description, total):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=self._console, transient=True,
        ) as p:
            tid = p.add_task(description, total=total)
            yield lambda n=1: p.advance(tid, n)


def progress_for(as_json: bool):
    from lensvault.progress import NO_PROGRESS

    if as_json or not sys.stderr.isatty():
        return NO_PROGRESS
    return RichProgress()


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    x = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if x < 1024 or unit == "TB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{n} B"
