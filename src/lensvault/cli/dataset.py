"""``lensvault dataset …``: snapshot, list, log, show, diff, checkout."""

from __future__ import annotations

import click

from lensvault.cli._common import emit, json_option, link_option, no_fetch_option, open_vault_from, progress_for
from lensvault.render import datasets as render


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
@click.option("--format", "fmt", type=click.Choice(["auto", "coco", "yolo", "voc", "labelme", "masks", "imagefolder", "labels"]),
              help="Import annotations in this format (auto detects and says what it found).")
@click.option("--annotations", type=click.Path(),
              help="Annotation file or folder, when not in the usual place (relative to the working folder or to SRC).")
@click.option("--classes", type=click.Path(exists=True, dir_okay=False), help="Class names file fixing the class order.")
@click.option("--label-key", metavar="KEY",
              help="Image labels from this field: a COCO image field (or attributes key); labelme: flags.")
@click.option("--ignore-index", type=int, help="Masks: the pixel value that is not scored (default 255).")
@click.option("--background-label", metavar="NAME", help="Masks: the background class (its pixels are no objects).")
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
def snapshot_cmd(ctx, name, src, version, bump, notes, parent, fmt, annotations, classes, label_key, ignore_index,
                 background_label, strict, on_bad_image, split, seed, group_by, force, link, as_json):
    """Record every file under SRC as dataset NAME@VERSION (with --format: annotations too)."""
    if bool(version) == bool(bump):
        raise click.UsageError("pass exactly one of --version X.Y.Z and --bump auto|major|minor|patch")
    ds = open_vault_from(ctx).snapshot(
        name, src, version=version, bump=bump, notes=notes, link=link, parent=parent, format=fmt,
        annotations=annotations, classes=classes, strict=strict, split=split, seed=seed, group_by=group_by,
        force=force, on_bad_image=on_bad_image, label_key=label_key, ignore_index=ignore_index,
        background=background_label, progress=progress_for(as_json))
    emit(ds, as_json, render.snapshot, err=True)


@dataset.command("list")
@json_option
@click.pass_context
def list_cmd(ctx, as_json):
    """List datasets with their latest version."""
    emit(open_vault_from(ctx).datasets(), as_json, render.listing)


@dataset.command("log")
@click.argument("name")
@json_option
@click.pass_context
def log_cmd(ctx, name, as_json):
    """Show every version of dataset NAME, newest first, with notes and changelog."""
    emit(open_vault_from(ctx).dataset_log(name), as_json, render.log)


@dataset.command("show")
@click.argument("ref")
@click.option("--files", "show_files", is_flag=True, help="List every file.")
@click.option("--restore-manifest", is_flag=True, help="Rewrite the manifest file in the repository from the store.")
@json_option
@click.pass_context
def show_cmd(ctx, ref, show_files, restore_manifest, as_json):
    """Show a dataset version: counts, media types, manifest path (and files)."""
    details = open_vault_from(ctx).dataset_details(ref, files=show_files, restore_manifest=restore_manifest)
    emit(details, as_json, render.show)


@dataset.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True), metavar="PATH",
              help="Also write a self-contained HTML report with before/after overlays of the changed images.")
@json_option
@click.pass_context
def diff_cmd(ctx, a, b, html_path, as_json):
    """What changed from dataset version A to B: files, and for annotated versions images, boxes, classes, splits."""
    vault = open_vault_from(ctx)
    result = vault.compare_datasets(a, b)
    report = None
    if html_path:
        from lensvault.server.report import write_diff_report

        report = write_diff_report(vault, result, html_path)
    emit(result, as_json, render.diff, report=report)


@dataset.command("checkout")
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False))
@link_option
@click.option("--path", "paths", multiple=True, metavar="PATH|DIR/|GLOB",
              help="Only these files: a path, a folder (ending in /) or a glob (* within a folder, ** across). Repeatable.")
@no_fetch_option
@json_option
@click.pass_context
def checkout_cmd(ctx, ref, dest, link, paths, no_fetch, as_json):
    """Write dataset version REF into DEST (a new or empty folder).

    Files whose objects are not here are fetched from the default remote first (hash-checked)."""
    emit(open_vault_from(ctx).checkout(ref, dest, link=link, paths=paths, fetch=not no_fetch,
                                       progress=progress_for(as_json)), as_json, render.checkout)


@dataset.command("export")
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["coco", "yolo", "voc", "imagefolder", "labels", "labelme", "masks"]), required=True)
@click.option("--split", help="Only this split (e.g. train).")
@link_option
@no_fetch_option
@json_option
@click.pass_context
def export_cmd(ctx, ref, dest, fmt, split, link, no_fetch, as_json):
    """Write an annotated version's images and labels to DEST in a training format."""
    emit(open_vault_from(ctx).export(ref, dest, format=fmt, split=split, link=link, fetch=not no_fetch,
                                     progress=progress_for(as_json)), as_json, render.export)


@dataset.command("fix")
@click.argument("ref")
@click.option("--annotations", "corrected", required=True, type=click.Path(exists=True),
              help="Corrected annotation file or folder (same format as the dataset).")
@click.option("--format", "fmt", default="auto", type=click.Choice(["auto", "coco", "yolo", "voc", "labelme", "masks", "labels"]))
@click.option("--version", "version", metavar="X.Y.Z", help="Default: the next PATCH version.")
@click.option("--notes", default="", help="Why the labels changed.")
@json_option
@click.pass_context
def fix_cmd(ctx, ref, corrected, fmt, version, notes, as_json):
    """Apply corrected labels to REF as the next PATCH version, with a changelog."""
    ds = open_vault_from(ctx).fix(ref, corrected, format=fmt, version=version, notes=notes,
                                  progress=progress_for(as_json))
    emit(ds, as_json, render.fix)


@dataset.command("check")
@click.argument("ref")
@no_fetch_option
@json_option
@click.pass_context
def check_cmd(ctx, ref, no_fetch, as_json):
    """Duplicates and near-duplicates within and across splits; split moves. Exit 1 if train and
    test share an image, or if an image could not be read (the check is incomplete)."""
    report = open_vault_from(ctx).check(ref, fetch=not no_fetch, progress=progress_for(as_json))
    emit(report, as_json, render.check)
    ctx.exit(1 if report.has_train_test_leak or report.unreadable else 0)
