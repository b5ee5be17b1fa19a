"""``lensvault model``: register, show, list, promote, rollback, history, pull."""

from __future__ import annotations

import click

from lensvault.cli._common import console, echo_json, human_bytes, json_option, link_option, open_vault_from


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
@json_option
@click.pass_context
def register_cmd(ctx, name, run_id, weights, labelmap, preprocess, postprocess, thresholds, version, bump, caveats,
                 force, allow_dirty, as_json):
    """Bundle a run's weights with label map, settings, metrics and release notes as NAME@X.Y.Z."""
    vault = open_vault_from(ctx)
    m = vault.register_model(name, run=run_id, weights=list(weights), labelmap=labelmap, preprocess=preprocess,
                             postprocess=postprocess, thresholds=list(thresholds), version=version, bump=bump,
                             caveats=caveats, force=force, allow_dirty=allow_dirty)
    if as_json:
        echo_json(m.to_dict())
        return
    why = (m.bundle.get("bump_decision") or {}).get("reasons") or {}
    reasons = "; ".join(r for k in ("major", "minor", "patch") for r in why.get(k, [])) or "no change"
    click.echo(f"Registered {m.ref}" + (f" ({m.bump.upper()} from {m.bundle['previous_version']}: {reasons})"
                                        if m.bump else " (first version)"))
    click.echo(f"  run {m.run_id}, dataset {m.dataset}, config {m.config_id}, bundle {m.bundle_oid[:12]}")
    for f in m.files:
        click.echo(f"  {f['role']}: {f['name']} ({human_bytes(f['size'])})")
    thresholds = m.bundle.get("thresholds") or {}
    if thresholds:
        click.echo("  thresholds: " + ", ".join(f"{k}={v}" for k, v in thresholds.items()))
    for c in m.bundle.get("caveats") or []:
        click.echo(f"  caveat: {c}")
    if m.forced:
        click.echo(f"  forced: {m.bundle.get('forced_reason')}", err=True)
    if m.dirty:
        click.echo("  marked dirty: the run used uncommitted code", err=True)


@model.command("show")
@click.argument("ref")
@json_option
@click.pass_context
def show_cmd(ctx, ref, as_json):
    """Show a model version (NAME@X.Y.Z or NAME@ALIAS): files, lineage and release notes."""
    vault = open_vault_from(ctx)
    m = vault.model(ref)
    if as_json:
        echo_json(m.to_dict())
        return
    click.echo(m.release_notes.rstrip())
    _echo_metric_sources(m)
    click.echo("\n## Files\n")
    for f in m.files:
        click.echo(f"- {f['name']} ({f['role']}, {human_bytes(f['size'])}) sha256:{f['sha256']}")
    click.echo(f"\nbundle sha256:{m.bundle_oid}" + (f"   aliases: {', '.join(m.aliases)}" if m.aliases else ""))


def _echo_metric_sources(m) -> None:
    """Evaluations of the version or its run (also those recorded after registration), each with its
    source; and a warning when the release notes predate recorded sources."""
    if any(g["source"]["kind"] == "unrecorded" for g in m.metrics):
        click.echo("\n> The metrics above were recorded before LensVault recorded metric sources: they merge values "
                   "logged by the run with its evaluations. The evaluations, each with its data, follow.")
    click.echo("\n## Evaluations\n")
    for e in m.evaluations:
        ov = e["overall"]
        click.echo(f"- {e['source']['label']}: " + ", ".join(f"{k}={ov[k]:.4f}" for k in ("AP", "AP50", "AP75")
                                                            if isinstance(ov.get(k), (int, float))))
    if not m.evaluations:
        click.echo(f"- none recorded (lensvault eval --model {m.ref} --dataset NAME@VER --split test --predictions FILE)")


@model.command("list")
@click.argument("name", required=False)
@json_option
@click.pass_context
def list_cmd(ctx, name, as_json):
    """List model versions (of NAME) with their aliases."""
    vault = open_vault_from(ctx)
    rows = [m.summary() for m in vault.models(name)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No models registered yet.")
        return
    from lensvault.cli._common import table

    t = table("model", "run", "dataset", "config", "aliases", "created")
    for r in rows:
        flags = " (forced)" * r["forced"] + " (dirty)" * r["dirty"]
        t.add_row(r["ref"] + flags, r["run_id"], r["dataset"] or "-", r["config_id"] or "-", ", ".join(r["aliases"]),
                  r["created_at"][:19].replace("T", " "))
    console().print(t)


@model.command("promote")
@click.argument("ref")
@click.argument("alias")
@click.option("--reason", help="Why (recorded in the history).")
@click.option("--new", is_flag=True, help="Create ALIAS: the model has never had it (guards against typos).")
@json_option
@click.pass_context
def promote_cmd(ctx, ref, alias, reason, new, as_json):
    """Point ALIAS (e.g. production) at the version REF names."""
    vault = open_vault_from(ctx)
    move = vault.promote(ref, alias, reason=reason, new=new)
    if as_json:
        echo_json(move.to_dict())
        return
    click.echo(f"{move.name}@{alias}: {move.from_version or '(new)'} → {move.to_version}"
               + (f"  ({move.reason})" if move.reason else ""))


@model.command("rollback")
@click.argument("name")
@click.argument("alias")
@click.option("--reason", help="Why (recorded in the history).")
@json_option
@click.pass_context
def rollback_cmd(ctx, name, alias, reason, as_json):
    """Move ALIAS back to the version that held it before the last promotion."""
    vault = open_vault_from(ctx)
    move = vault.rollback(name, alias, reason=reason)
    if as_json:
        echo_json(move.to_dict())
        return
    click.echo(f"{move.name}@{alias}: rolled back {move.from_version} → {move.to_version}"
               + (f"  ({move.reason})" if move.reason else ""))
    click.echo(f"  {alias} has held: {', '.join(move.held)} (oldest first)")
    click.echo(f"  a further rollback would go to {move.next_rollback}" if move.next_rollback
               else "  no earlier version left to roll back to")


@model.command("history")
@click.argument("name")
@click.option("--alias", help="Only this alias.")
@json_option
@click.pass_context
def history_cmd(ctx, name, alias, as_json):
    """Every alias move of NAME: from, to, who, when, why."""
    vault = open_vault_from(ctx)
    moves = vault.model_history(name, alias)
    if as_json:
        echo_json([m.to_dict() for m in moves])
        return
    if not moves:
        click.echo(f"No alias of {name} has been moved yet.")
        return
    from lensvault.cli._common import table

    t = table("when", "alias", "action", "from", "to", "who", "why")
    for m in moves:
        t.add_row(m.at[:19].replace("T", " "), m.alias, m.action, m.from_version or "-", m.to_version, m.actor,
                  m.reason or "")
    console().print(t)


@model.command("pull")
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False))
@link_option
@json_option
@click.pass_context
def pull_cmd(ctx, ref, dest, link, as_json):
    """Write the bundle of REF (NAME@X.Y.Z or NAME@ALIAS) into DEST, verifying every hash."""
    vault = open_vault_from(ctx)
    result = vault.pull_model(ref, dest, link="copy" if link == "auto" else link)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"Pulled {result.ref} into {result.dest}: {len(result.files)} files + bundle.json, all hashes verified")
    for f in result.files:
        click.echo(f"  {f}")
