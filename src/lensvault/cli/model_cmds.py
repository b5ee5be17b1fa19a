"""``lensvault model``: register, show, list, promote, rollback, history, pull."""

from __future__ import annotations

import click

from lensvault.cli._common import emit, json_option, link_option, no_fetch_option, open_vault_from, progress_for
from lensvault.render import registry as render


@click.group("model")
def model():
    """Register trained weights as versioned bundles; promote, roll back and pull them."""


@model.command("register")
@click.argument("name")
@click.option("--run", "run_id", required=True, metavar="RUN_ID", help="The run that produced the weights.")
@click.option("--weights", required=True, multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Weights file (repeat for several).")
@click.option("--labelmap", type=click.Path(exists=True, dir_okay=False),
              help="Label map file (default: the class map of the run's dataset version).")
@click.option("--preprocess", type=click.Path(exists=True, dir_okay=False), help="Pre-processing settings (YAML/JSON/TOML).")
@click.option("--postprocess", type=click.Path(exists=True, dir_okay=False), help="Post-processing settings (YAML/JSON/TOML).")
@click.option("--threshold", "thresholds", multiple=True, metavar="KEY=NUMBER", help="A decision threshold (repeatable).")
@click.option("--version", "version", metavar="X.Y.Z", help="The version to create (checked against the change).")
@click.option("--bump", type=click.Choice(["auto", "major", "minor", "patch"]),
              help="Derive the version from the latest one (auto: from what changed).")
@click.option("--caveat", "caveats", multiple=True, metavar="TEXT", help="A known caveat for the release notes (repeatable).")
@click.option("--force", is_flag=True, help="Accept a version lower than the change requires (recorded).")
@click.option("--allow-dirty", is_flag=True, help="Accept a run on uncommitted code (the version is marked dirty).")
@click.option("--task", type=click.Choice(["detection", "instance-segmentation", "keypoints", "semantic-segmentation",
                                           "classification"]),
              help="What the model does (default: read from the run's dataset version); a change is MAJOR.")
@json_option
@click.pass_context
def register_cmd(ctx, name, run_id, weights, labelmap, preprocess, postprocess, thresholds, version, bump, caveats,
                 force, allow_dirty, task, as_json):
    """Bundle a run's weights with label map, settings, metrics and release notes as NAME@X.Y.Z."""
    m = open_vault_from(ctx).register_model(
        name, run=run_id, weights=list(weights), labelmap=labelmap, preprocess=preprocess, postprocess=postprocess,
        thresholds=list(thresholds), version=version, bump=bump, caveats=caveats, force=force, allow_dirty=allow_dirty,
        task=task)
    emit(m, as_json, render.registered, err=True)


@model.command("show")
@click.argument("ref")
@json_option
@click.pass_context
def show_cmd(ctx, ref, as_json):
    """Show a model version (NAME@X.Y.Z or NAME@ALIAS): files, lineage and release notes."""
    emit(open_vault_from(ctx).model(ref), as_json, render.model)


@model.command("list")
@click.argument("name", required=False)
@json_option
@click.pass_context
def list_cmd(ctx, name, as_json):
    """List model versions (of NAME) with their aliases."""
    emit(open_vault_from(ctx).models(name), as_json, render.models)


@model.command("promote")
@click.argument("ref")
@click.argument("alias")
@click.option("--reason", help="Why (recorded in the history).")
@click.option("--new", is_flag=True, help="Create ALIAS: the model has never had it (guards against typos).")
@json_option
@click.pass_context
def promote_cmd(ctx, ref, alias, reason, new, as_json):
    """Point ALIAS (e.g. production) at the version REF names."""
    emit(open_vault_from(ctx).promote(ref, alias, reason=reason, new=new), as_json, render.promoted)


@model.command("rollback")
@click.argument("name")
@click.argument("alias")
@click.option("--reason", help="Why (recorded in the history).")
@json_option
@click.pass_context
def rollback_cmd(ctx, name, alias, reason, as_json):
    """Move ALIAS back to the version that held it before the last promotion."""
    emit(open_vault_from(ctx).rollback(name, alias, reason=reason), as_json, render.rolled_back)


@model.command("history")
@click.argument("name")
@click.option("--alias", help="Only this alias.")
@json_option
@click.pass_context
def history_cmd(ctx, name, alias, as_json):
    """Every alias move of NAME: from, to, who, when, why."""
    emit(open_vault_from(ctx).model_history(name, alias), as_json, render.history)


@model.command("pull")
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False))
@link_option
@no_fetch_option
@json_option
@click.pass_context
def pull_cmd(ctx, ref, dest, link, no_fetch, as_json):
    """Write the bundle of REF (NAME@X.Y.Z or NAME@ALIAS) into DEST, verifying every hash.

    Files not here are fetched from the default remote first (hash-checked)."""
    result = open_vault_from(ctx).pull_model(ref, dest, link="copy" if link == "auto" else link, fetch=not no_fetch,
                                             progress=progress_for(as_json))
    emit(result, as_json, render.pulled)
