"""Shared options, the vault opener, and printing a result (its JSON, or its renderer) for commands."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from lensvault.results import JsonStream, Result

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
no_fetch_option = click.option(
    "--no-fetch", "no_fetch", is_flag=True,
    help="Never use the network: fail if an object is not in this vault's store (default: fetch it from the default remote).")

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


def _dumps(data) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str, ensure_ascii=False)


def echo_json(data) -> None:
    click.echo(_dumps(data))


def echo_json_stream(stream: JsonStream) -> None:
    """What ``echo_json({**stream.head, stream.key: [...]})`` prints, byte for byte, written a
    batch of the list at a time: memory is one batch's, whatever the list's length."""
    whole = _dumps({**stream.head, stream.key: []})
    assert whole.endswith("[]\n}"), whole[-40:]  # (the list is the object's last key)
    click.echo(whole[:-len("[]\n}")] + "[", nl=False)
    wrote = False
    for rows in stream.batches:
        if rows:
            # A list of the batch's items at the top level, indented one level deeper: the items
            # as they are inside the object's list ("[\n" and "\n]" cut off).
            items = _dumps(rows)[2:-2].replace("\n", "\n  ")
            click.echo(("," if wrote else "") + "\n  " + items, nl=False)
            wrote = True
    click.echo("\n  ]\n}" if wrote else "]\n}")


def emit(result: Result, as_json: bool, render, *, stderr: bool = False, err: bool = False, **options) -> None:
    """Print what a command's one library call returned: with --json its ``to_dict()`` (the one
    place that shape is built; a result too big to hold gives it as a ``json_stream()``), else
    ``render(result, console, **options)`` from lensvault.render (on stderr with ``stderr``;
    ``err``: the renderer also gets the stderr console as ``err``; ``render`` None: the command
    printed its human output as it went)."""
    if as_json:
        stream = result.json_stream() if hasattr(result, "json_stream") else None
        if stream is not None:
            echo_json_stream(stream)
        else:
            echo_json(result.to_dict())
        return
    if render is None:
        return
    if err:
        options["err"] = console(stderr=True)
    render(result, console(stderr=stderr), **options)


# Output that is not a terminal (a log, a pipe, the quickstart's transcript) has no width to
# fit: rich would wrap it at 80 columns, splitting sentences and hashes mid-way.
PIPED_WIDTH = 200


def console(stderr: bool = False):
    import os
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty()) and "COLUMNS" not in os.environ
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=PIPED_WIDTH if piped else None)


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
