"""``lensvault catalog``: rebuild the catalog from the store."""

from __future__ import annotations

import click

from lensvault.cli._common import emit, json_option, progress_for
from lensvault.render import vault as render


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
    emit(vault.rebuild_catalog(force=force, progress=progress_for(as_json)), as_json, render.rebuilt, err=True)
