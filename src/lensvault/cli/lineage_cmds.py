"""``lensvault lineage``, ``why``, ``reproduce``."""

from __future__ import annotations

import click

from lensvault.cli._common import emit, no_fetch_option, open_vault_from, progress_for
from lensvault.render import lineage as render

PAGE = 50  # the newest runs listed below one node unless told otherwise (as `runs list` does)


@click.command("lineage")
@click.argument("ref")
@click.option("--up", "direction", flag_value="up", help="What produced REF (default for models and runs).")
@click.option("--down", "direction", flag_value="down", help="What depends on REF (default for datasets and configs).")
@click.option("--both", "direction", flag_value="both", help="Both directions.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "mermaid", "dot"]), default="text", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help=f"At most N runs (and evaluations) below a dataset version or config, newest first "
                   f"(default: {PAGE} in text, Mermaid and DOT; all with --json).")
@click.option("--all", "everything", is_flag=True, help="Every run and evaluation in text, Mermaid and DOT too.")
@click.pass_context
def lineage_cmd(ctx, ref, direction, fmt, as_json, limit, everything):
    """Lineage of a model version or alias, run, dataset version or config.

    \b
    lensvault lineage detector@production          # run → commit, config, dataset → parents; evaluations
    lensvault lineage retail@1.1.0 --down          # runs, models, evaluations, aliases that depend on it
    """
    as_json = as_json or fmt == "json"
    if limit is None and not (everything or as_json):
        limit = PAGE  # a tree of 20,000 runs is read by nobody; the output says how many more
    g = open_vault_from(ctx).lineage(ref, direction=direction or "auto", limit=limit)
    emit(g, as_json, render.graph, fmt=fmt)


@click.command("why")
@click.argument("a")
@click.argument("b")
@click.option("--allow-different-data", is_flag=True,
              help="Compare metrics even if A and B were not evaluated on the same dataset version and split.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def why_cmd(ctx, a, b, allow_different_data, as_json):
    """Explain what changed from A to B (model versions, aliases or run ids), likeliest cause first.

    Metrics come from evaluations of both on the same dataset version and split (named in the
    output); without such a pair the command refuses unless --allow-different-data.

    \b
    lensvault why detector@1.1.0 detector@production
    """
    emit(open_vault_from(ctx).why(a, b, allow_different_data=allow_different_data), as_json, render.why)


@click.command("reproduce")
@click.argument("ref")
@click.option("--tolerance", default=0.01, show_default=True, type=float, help="Largest absolute metric difference accepted.")
@no_fetch_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (the rebuilt run's log goes to stderr).")
@click.pass_context
def reproduce_cmd(ctx, ref, tolerance, no_fetch, as_json):
    """Rebuild REF (NAME@VER, NAME@ALIAS or a run id) in a clean worktree and verify it. Exit 1 on FAIL.

    \b
    lensvault reproduce detector@production --tolerance 0.01
    """
    import sys

    rep = open_vault_from(ctx).reproduce(ref, tolerance=tolerance, stream=sys.stderr.buffer if as_json else None,
                                         fetch=not no_fetch, progress=progress_for(as_json))
    emit(rep, as_json, render.reproduced)
    ctx.exit(0 if rep.passed else 1)
