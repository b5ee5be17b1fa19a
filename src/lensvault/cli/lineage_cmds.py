"""``lensvault lineage`` (and later ``why``, ``reproduce``)."""

from __future__ import annotations

import click

from lensvault.cli._common import echo_json, open_vault_from


@click.command("lineage")
@click.argument("ref")
@click.option("--up", "direction", flag_value="up", help="What produced REF (default for models and runs).")
@click.option("--down", "direction", flag_value="down", help="What depends on REF (default for datasets and configs).")
@click.option("--both", "direction", flag_value="both", help="Both directions.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "mermaid", "dot"]), default="text", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.pass_context
def lineage_cmd(ctx, ref, direction, fmt, as_json):
    """Lineage of a model version or alias, run, dataset version or config.

    \b
    lensvault lineage detector@production          # run → commit, config, dataset → parents; evaluations
    lensvault lineage retail@1.1.0 --down          # runs, models, evaluations, aliases that depend on it
    """
    from lensvault.lineage import render

    vault = open_vault_from(ctx)
    g = vault.lineage(ref, direction=direction or "auto").to_dict()
    fmt = "json" if as_json else fmt
    if fmt == "json":
        echo_json(g)
    elif fmt == "mermaid":
        click.echo(render.to_mermaid(g))
    elif fmt == "dot":
        click.echo(render.to_dot(g))
    else:
        click.echo(render.to_text(g))
