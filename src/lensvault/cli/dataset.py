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
@click.option("--version", "version", metavar="X.Y.Z", help="The semantic version to create (write-once).")
@click.option("--bump", type=click.Choice(["auto", "major", "minor", "patch"]),
              help="Derive the version from the latest one; auto = from what changed.")
@click.option("--notes", default="", help="Free text stored in the manifest.")
@click.option("--parent", metavar="X.Y.Z", help="The version this one derives from (default: the highest lower version).")
@click.option("--format", "fmt", type=click.Choice(["auto", "coco", "yolo", "voc", "labelme", "masks"]),
              help="Import annotations in this format (auto detects and says what it found).")
@click.option("--annotations", type=click.Path(),
              help="Annotation file or folder, when not in the usual place (relative to the working folder or to SRC).")
@click.option("--classes", type=click.Path(exists=True, dir_okay=False), help="Class names file fixing the class order.")
@click.option("--strict", is_flag=True, help="Treat validation warnings as errors.")
@click.option("--on-bad-image", type=click.Choice(["warn", "fail", "skip"]),
              help="Images decoders read only partly: keep with a warning (default), fail, or leave out.")
@click.option("--split", metavar="70/20/10|none",
              help="Assign train/val/test by hashing (overrides split files of the source); none: no splits. "
                   "Default: the parent's rule, else the source's splits.")
@click.option("--seed", type=int, help="Seed of the split (required with --split).")
@click.option("--group-by", metavar="REGEX", help="Keep images whose paths share this key in one split (first group).")
@click.option("--force", is_flag=True, help="Record anyway: a version lower than the change requires, identical "
                                            "content, or an import that found no annotations (recorded).")
@link_option
@json_option
@click.pass_context
def snapshot_cmd(ctx, name, src, version, bump, notes, parent, fmt, annotations, classes, strict, on_bad_image, split,
                 seed, group_by, force, link, as_json):
    """Record every file under SRC as dataset NAME@VERSION (with --format: annotations too)."""
    if bool(version) == bool(bump):
        raise click.UsageError("pass exactly one of --version X.Y.Z and --bump auto|major|minor|patch")
    vault = open_vault_from(ctx)
    ds = vault.snapshot(name, src, version=version, bump=bump, notes=notes, link=link, parent=parent, format=fmt,
                        annotations=annotations, classes=classes, strict=strict, split=split, seed=seed,
                        group_by=group_by, force=force, on_bad_image=on_bad_image, progress=progress_for(as_json))
    from lensvault.cli import dataset_render

    info = ds.to_dict()
    git_add = _git_add(info["manifest_path"])
    if as_json:
        echo_json({"name": ds.name, "version": ds.version, "ref": ds.ref, "snapshot_id": ds.snapshot_id,
                   **{k: info[k] for k in ("parent", "files", "bytes", "bump", "forced", "changelog", "manifest_path")},
                   **({k: info[k] for k in ("images", "annotations", "classes", "splits")} if ds.is_vision else {}),
                   **dataset_render.findings_facts(info.get("source") or {}, info.get("counts") or {}),
                   "git_add": git_add, "warnings": ds.warnings})
        return
    r = ds.record
    click.echo(f"Created {r.ref}: {r.files} files, {human_bytes(r.bytes)}, snapshot {r.snapshot_id[:12]}"
               + (f" (parent {r.parent}" + (f", {r.bump} bump)" if r.bump else ")") if r.parent else ""))
    if ds.is_vision:
        src_info = info.get("source") or {}
        if src_info.get("description"):
            click.echo(f"  found: {src_info['description']}")
        click.echo(f"  {info['images']} images, {info['annotations']} annotations, classes: {', '.join(info['classes'])}")
        splits = info["splits"]
        click.echo("  splits: " + (", ".join(f"{k} {splits[k]}" for k in dataset_render.split_names(splits)) or "none"))
        dataset_render.findings(src_info.get("findings", []), r.ref, total=(info.get("counts") or {}).get("findings"),
                                by_code=src_info.get("findings_by_code"))
        if src_info.get("skipped_images"):
            click.echo(f"  skipped images: {len(src_info['skipped_images'])} (`lensvault dataset show {r.ref}` lists them)")
    if r.changelog and r.changelog.get("summary"):
        click.echo(f"  changes: {r.changelog['summary']}")
    if r.forced:
        click.echo(click.style(f"  forced: {r.changelog.get('forced') if r.changelog else 'version below the rule'}", fg="yellow"))
    click.echo(f"  manifest: {info['manifest_path']}")
    _echo_git_add(git_add)
    _echo_warnings(ds.warnings)


def _echo_warnings(warnings) -> None:
    """What the write found damaged on the way (datasets.needs.damage_warnings), on stderr."""
    for w in warnings:
        click.echo(click.style(f"warning: {w['what']}", fg="yellow") + f"\n  fix: {w['fix']}", err=True)


def _git_add(manifest_path: str) -> str | None:
    from lensvault.gitinfo import add_command

    return add_command(manifest_path)


def _echo_git_add(command: str | None) -> None:
    if command:
        click.echo(f"  commit the manifest with your code: `{command}`")


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
    from lensvault.cli._common import table

    t = table("name", "latest", "versions", "files", "size", "updated", right=("versions", "files", "size"))
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
        info["file_list"] = ds.file_list()
    if as_json:
        echo_json(info)
        return
    from lensvault.cli import dataset_render

    dataset_render.show(info)
    if show_files:
        from lensvault.cli._common import table

        ids = ds.is_vision  # the image id every export, run file and evaluation uses
        t = table("path", "size", "sha256", "media type", "w×h", *(("image id",) if ids else ()),
                  right=("size", "image id"))
        for f in info["file_list"]:
            wh = f"{f['width']}×{f['height']}" if f["width"] else ""
            t.add_row(f["path"], human_bytes(f["size"]), f["sha256"][:12], f["media_type"], wh,
                      *((_or_dash(f["image_id"]),) if ids else ()))
        console().print(t)


def _or_dash(v) -> str:
    return "-" if v is None else str(v)


@dataset.command("diff")
@click.argument("a")
@click.argument("b")
@json_option
@click.pass_context
def diff_cmd(ctx, a, b, as_json):
    """What changed from dataset version A to B: files, and for annotated versions images, boxes, classes, splits."""
    vault = open_vault_from(ctx)
    da, db = vault.dataset(a), vault.dataset(b)
    d = da.diff(db)
    ad = da.diff_annotations(db) if da.is_vision and db.is_vision else None
    if as_json:
        out = d.to_dict()
        out["files_summary"] = out.pop("summary")
        if ad is not None:
            out.update(ad.to_dict())
        echo_json(out)
        return
    from lensvault.cli import dataset_render

    dataset_render.file_diff(d)
    if ad is not None:
        dataset_render.annotation_diff(ad)  # its summary ends with the suggested bump


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


@dataset.command("export")
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["coco", "yolo", "voc"]), required=True)
@click.option("--split", help="Only this split (e.g. train).")
@link_option
@json_option
@click.pass_context
def export_cmd(ctx, ref, dest, fmt, split, link, as_json):
    """Write an annotated version's images and labels to DEST in a training format."""
    vault = open_vault_from(ctx)
    result = vault.export(ref, dest, format=fmt, split=split, link=link)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"Exported {result['ref']} ({result['images']} images{', split ' + split if split else ''}) as {fmt} into {result['dest']}")


@dataset.command("fix")
@click.argument("ref")
@click.option("--annotations", "corrected", required=True, type=click.Path(exists=True),
              help="Corrected annotation file or folder (same format as the dataset).")
@click.option("--format", "fmt", default="auto", type=click.Choice(["auto", "coco", "yolo", "voc", "labelme", "masks"]))
@click.option("--version", "version", metavar="X.Y.Z", help="Default: the next PATCH version.")
@click.option("--notes", default="", help="Why the labels changed.")
@json_option
@click.pass_context
def fix_cmd(ctx, ref, corrected, fmt, version, notes, as_json):
    """Apply corrected labels to REF as the next PATCH version, with a changelog."""
    vault = open_vault_from(ctx)
    ds = vault.fix(ref, corrected, format=fmt, version=version, notes=notes, progress=progress_for(as_json))
    r = ds.record
    manifest = str(vault.manifests_dir / ds.name / f"{ds.version}.json")
    git_add = _git_add(manifest)
    if as_json:
        echo_json({"ref": r.ref, "parent": r.parent, "snapshot_id": r.snapshot_id, "bump": r.bump, "changelog": r.changelog,
                   "manifest_path": manifest, "git_add": git_add})
        return
    click.echo(f"Created {r.ref} from {r.parent} ({r.bump} bump), snapshot {r.snapshot_id[:12]}")
    if r.changelog and r.changelog.get("summary"):
        click.echo(f"  changes: {r.changelog['summary']}")
    click.echo(f"  manifest: {manifest}")
    _echo_git_add(git_add)


@dataset.command("check")
@click.argument("ref")
@json_option
@click.pass_context
def check_cmd(ctx, ref, as_json):
    """Duplicates and near-duplicates within and across splits; split moves. Exit 1 if train and test share an image."""
    vault = open_vault_from(ctx)
    report = vault.check(ref, progress=progress_for(as_json))
    if as_json:
        echo_json(report.to_dict())
    else:
        from lensvault.cli import dataset_render

        dataset_render.check(report)
    ctx.exit(1 if report.has_train_test_leak else 0)
