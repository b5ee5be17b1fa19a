"""``lensvault dataset …``: snapshot, list, log, show, diff, checkout."""

from __future__ import annotations

import click

from lensvault.cli._common import console, echo_json, human_bytes, json_option, link_option, open_vault_from, progress_for


@click.group("dataset")
def dataset():
    """Snapshot, list, show, diff and check out dataset versions."""


@dataset.command("snapshot")
@click.argument("name")
@click.argument("src", type=click.Path(file_okay=False))
@click.option("--version", "version", required=True, metavar="X.Y.Z", help="The semantic version to create (write-once).")
@click.option("--notes", default="", help="Free text stored in the manifest.")
@click.option("--parent", metavar="X.Y.Z", help="The version this one derives from (default: the highest lower version).")
@link_option
@json_option
@click.pass_context
def snapshot_cmd(ctx, name, src, version, notes, parent, link, as_json):
    """Record every file under SRC as dataset NAME@VERSION."""
    vault = open_vault_from(ctx)
    ds = vault.snapshot(name, src, version=version, notes=notes, link=link, parent=parent, progress=progress_for(as_json))
    r = ds.record
    if as_json:
        echo_json({"name": r.name, "version": r.version, "ref": r.ref, "snapshot_id": r.snapshot_id, "parent": r.parent,
                   "files": r.files, "bytes": r.bytes, "manifest": ds.to_dict()["manifest_path"]})
    else:
        click.echo(f"Created {r.ref}: {r.files} files, {human_bytes(r.bytes)}, snapshot {r.snapshot_id[:12]}"
                   + (f" (parent {r.parent})" if r.parent else ""))
        click.echo(f"  manifest: {ds.to_dict()['manifest_path']}")


@dataset.command("list")
@json_option
@click.pass_context
def list_cmd(ctx, as_json):
    """List datasets with their latest version."""
    vault = open_vault_from(ctx)
    rows = vault.datasets()
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No datasets yet. Create one with `lensvault dataset snapshot NAME SRC --version 1.0.0`.")
        return
    from rich.table import Table

    t = Table(box=None)
    for col in ("name", "latest", "versions", "files", "size", "updated"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], r["latest"], str(r["versions"]), str(r["files"]), human_bytes(r["bytes"]), r["updated_at"][:19].replace("T", " "))
    console().print(t)


@dataset.command("log")
@click.argument("name")
@json_option
@click.pass_context
def log_cmd(ctx, name, as_json):
    """Show every version of dataset NAME, newest first, with notes and changelog."""
    vault = open_vault_from(ctx)
    versions = list(reversed(vault.versions(name)))
    if as_json:
        echo_json([v.to_dict() for v in versions])
        return
    for v in versions:
        click.echo(click.style(f"{v.ref}", bold=True) + f"  snapshot {v.snapshot_id[:12]}  {v.files} files  {human_bytes(v.bytes)}")
        click.echo(f"  {v.created_at[:19].replace('T', ' ')} by {v.created_by}" + (f"  parent {v.parent}" if v.parent else "")
                   + (f"  bump {v.bump}" if v.bump else "") + ("  (forced)" if v.forced else ""))
        if v.notes:
            click.echo(f"  notes: {v.notes}")
        if v.changelog:
            summary = v.changelog.get("summary") if isinstance(v.changelog, dict) else None
            if summary:
                click.echo(f"  changes: {summary}")
        click.echo("")


@dataset.command("show")
@click.argument("ref")
@click.option("--files", "show_files", is_flag=True, help="List every file.")
@click.option("--restore-manifest", is_flag=True, help="Rewrite the manifest file in the repository from the store.")
@json_option
@click.pass_context
def show_cmd(ctx, ref, show_files, restore_manifest, as_json):
    """Show a dataset version: counts, media types, manifest path (and files)."""
    vault = open_vault_from(ctx)
    ds = vault.dataset(ref)
    if restore_manifest:
        ds.restore_manifest()
    info = ds.to_dict()
    if show_files:
        info["file_list"] = ds.files().to_pylist()
    if as_json:
        echo_json(info)
        return
    click.echo(click.style(ds.ref, bold=True) + f"  snapshot {ds.snapshot_id}")
    click.echo(f"  files: {info['files']}  size: {human_bytes(info['bytes'])}  images: {info['counts'].get('images', 0)}")
    click.echo(f"  parent: {info['parent'] or '-'}  created: {info['created_at'][:19].replace('T', ' ')} by {info['created_by']}")
    if info["notes"]:
        click.echo(f"  notes: {info['notes']}")
    click.echo("  media: " + ", ".join(f"{k} {v}" for k, v in info["media_types"].items()))
    click.echo(f"  manifest: {info['manifest_path']}")
    if show_files:
        from rich.table import Table

        t = Table(box=None)
        for col in ("path", "size", "sha256", "media type", "w×h"):
            t.add_column(col)
        for f in info["file_list"]:
            wh = f"{f['width']}×{f['height']}" if f["width"] else ""
            t.add_row(f["path"], human_bytes(f["size"]), f["sha256"][:12], f["media_type"], wh)
        console().print(t)


@dataset.command("diff")
@click.argument("a")
@click.argument("b")
@json_option
@click.pass_context
def diff_cmd(ctx, a, b, as_json):
    """What changed from dataset version A to B (file level)."""
    vault = open_vault_from(ctx)
    d = vault.diff(a, b)
    if as_json:
        echo_json(d.to_dict())
        return
    for p in d.added[:100]:
        click.echo(click.style(f"+ {p}", fg="green"))
    for p in d.removed[:100]:
        click.echo(click.style(f"- {p}", fg="red"))
    for p in d.modified[:100]:
        click.echo(click.style(f"~ {p}", fg="yellow"))
    for src, dst in d.renamed[:100]:
        click.echo(click.style(f"→ {src} -> {dst}", fg="cyan"))
    click.echo(d.summary() + f"; size {human_bytes(d.bytes['a'])} → {human_bytes(d.bytes['b'])}")


@dataset.command("checkout")
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False))
@link_option
@json_option
@click.pass_context
def checkout_cmd(ctx, ref, dest, link, as_json):
    """Write dataset version REF into DEST (a new or empty folder)."""
    vault = open_vault_from(ctx)
    result = vault.checkout(ref, dest, link=link, progress=progress_for(as_json))
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(f"Checked out {result.ref} into {result.dest}: {result.files} files, {human_bytes(result.bytes)} ({result.link})")
