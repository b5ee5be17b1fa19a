"""``lensvault catalog``: rebuild the catalog from the store."""

from __future__ import annotations

import click

from lensvault.cli._common import echo_json, json_option, progress_for

_LABELS = {
    "dataset_versions": "dataset versions", "dataset_versions_from_manifest_files": "of them from manifest files only",
    "snapshots": "snapshots", "configs": "configs", "runs": "runs", "run_params": "run params",
    "run_metric_points": "metric points", "run_artifacts": "run artifacts", "evaluations": "evaluations",
    "model_versions": "model versions", "alias_moves": "alias moves", "events": "events",
}


@click.group("catalog")
def catalog():
    """The catalog (the index of the store): rebuild it when it is lost or damaged."""


@catalog.command("rebuild")
@click.option("--force", is_flag=True, help="Replace a catalog that is not empty (it is kept beside the new one).")
@json_option
@click.pass_context
def rebuild_cmd(ctx, force, as_json):
    """Recreate the catalog from the store's ledger and the manifests in data/manifests/.

    Restores dataset versions, configs, runs (params, metrics, artifacts), evaluations, model
    versions, alias moves and events — whatever the store proves — and names what it could not.
    A missing or empty catalog is rebuilt as is; a damaged or whole one only with --force (it is
    kept beside the new one). Stop other LensVault commands of this vault first: one still writing
    to the old catalog writes into the kept copy (its ledger records stay, a second rebuild adds them).
    """
    import lensvault

    vault = lensvault.open(ctx.find_root().obj.get("vault_path"))
    ctx.call_on_close(vault.close)
    report = vault.rebuild_catalog(force=force, progress=progress_for(as_json))
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(f"Rebuilt the catalog {report.catalog} (was {report.previous}) from "
               f"{report.sources['ledger_records']} ledger record(s) and "
               f"{report.sources['manifest_files']} manifest file(s):")
    for key, label in _LABELS.items():
        if report.restored.get(key):
            click.echo(f"  {report.restored[key]:>8,}  {label}")
    if report.kept_previous:
        click.echo(f"The previous catalog is kept at {report.kept_previous}.")
    if report.unproven:
        click.echo(f"Could not prove {len(report.unproven)} item(s) (not restored):", err=True)
        for u in report.unproven[:50]:
            click.echo(f"  - {u['what']} ({u['where']}): {u['problem']}", err=True)
        if len(report.unproven) > 50:
            click.echo(f"  … and {len(report.unproven) - 50} more (see --json)", err=True)
