"""Vision dataset versions: files + images + annotations + class map + splits.

The annotation layer (``lensvault.annotations``) turns a folder into normalized
tables; this module adds content hashes and splits, derives or checks the
version from what changed since the parent, and commits it all as one snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault.datasets.ingest import ingest_link, ingested, trusted_roots
from lensvault.datasets.table_digest import table_digest
from lensvault.errors import UsageError
from lensvault.progress import NO_PROGRESS
from lensvault.refs import SemVer, validate_name
from lensvault.store.base import LinkMode

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.engine import Connection

    from lensvault.annotations.model import AnnotationSet, ClassMap, Finding
    from lensvault.datasets.annotation_diff import AnnotationDiff
    from lensvault.datasets.files_table import FileRows
    from lensvault.datasets.handle import Dataset
    from lensvault.datasets.splits import SplitSpec
    from lensvault.datasets.versions import DatasetVersion
    from lensvault.progress import Progress
    from lensvault.vault import Vault

__all__ = ["VisionInput", "annotations_location", "annotations_path", "commit_vision", "inherit_class_ids",
           "refuse_empty_import", "snapshot_vision", "with_hashes"]


@dataclass
class VisionInput:
    """What ``dataset snapshot --format …`` was asked to do."""

    format: str = "auto"
    annotations: Path | None = None
    classes: Path | None = None
    strict: bool = False
    split: str | None = None  # "70/20/10"
    seed: int | None = None
    group_by: str | None = None
    on_bad_image: str | None = None  # warn | fail | skip (default: warn, fail with strict)
    label_key: str | None = None  # the COCO image field / labelme "flags" holding image labels
    ignore_index: int | None = None  # masks: the pixel value not scored (default 255)
    background: str | None = None  # masks: the background class's name


def snapshot_vision(
    vault: Vault, name: str, src: Path, spec: VisionInput, *, version: str | None = None, bump: str | None = None,
    notes: str = "", link: LinkMode | str = LinkMode.AUTO, parent: str | None = None, force: bool = False,
    progress: Progress = NO_PROGRESS,
) -> Dataset:
    """Import SRC's annotations and commit them with its files as NAME@VERSION.

    What can be refused without the files' hashes is refused before ingest (a taken
    version, a bad --split, an import error, an import that found nothing); the rest
    before the commit. Either way no version, manifest or event is left behind.
    """
    from lensvault.annotations import load
    from lensvault.annotations.validate import raise_if_strict
    from lensvault.datasets.splits import SplitRequest

    name = validate_name(name)
    link = ingest_link(link)  # before any work: a snapshot never symlinks
    if version is None and bump is None:
        raise UsageError("say which version to create", fix="pass --version X.Y.Z or --bump auto")
    if version is not None:
        from lensvault.datasets.snapshot import _refuse_taken

        _refuse_taken(vault, name, str(SemVer.parse(version)))
    rule = SplitRequest(spec.split, spec.seed, spec.group_by).rule()
    src = Path(src)
    ann = annotations_path(src, spec.annotations)
    aset = load(src, format=spec.format, annotations=ann, classes=spec.classes, strict=spec.strict,
                on_bad_image=spec.on_bad_image, trusted=trusted_roots(vault), label_key=spec.label_key,
                ignore_index=spec.ignore_index, background=spec.background)
    base = _base_of(vault, name, parent, version)
    classes, annotations = inherit_class_ids(aset, base)
    empty = refuse_empty_import(aset, base, src, spec, force=force)
    from lensvault.datasets.embedded import with_embedded
    from lensvault.datasets.snapshot import known_content, with_retries

    def write() -> Dataset:
        with ingested(vault, src, link=link, progress=progress, known=known_content(vault, name)) as files:
            files = with_embedded(vault.store, files, aset.embedded)
            images = with_hashes(aset.images, files)
            images, split_info = _apply_splits(images, rule, base)
            findings = [*aset.findings, *_unassigned(images, split_info)]
            raise_if_strict(findings[len(aset.findings):], strict=spec.strict, source=str(src))
            source: dict[str, Any] = {"path": str(src.absolute()), "link": LinkMode(link).value, "format": aset.source_format,
                      "annotations": annotations_location(ann, src), "description": aset.description,
                      "on_bad_image": spec.on_bad_image or ("fail" if spec.strict else "warn"),
                      "skipped_images": aset.skipped, "embedded_images": sorted(aset.embedded)}
            if aset.masks is not None:  # what `eval --task semantic-segmentation` and the masks export read
                source["masks"] = aset.masks
            # `dataset fix` reads the masks with them again
            source.update({k: v for k, v in (("ignore_index", spec.ignore_index), ("background_label", spec.background))
                           if v is not None})
            if spec.label_key is not None:  # `dataset fix` reads the labels again; the COCO export writes them
                source["label_key"] = spec.label_key
            if spec.classes is not None:  # `dataset fix` numbers the classes the same way
                source["classes"] = list(classes.names)
                source["class_ids"] = list(classes.ids)
            if empty:
                source["forced_empty_import"] = empty
            return commit_vision(
                vault, name=name, version=version, bump=bump, files=files, images=images, annotations=annotations,
                classes=classes, split_info=split_info, findings=findings, notes=notes, parent=parent,
                force=force, source=source,
            )

    return with_retries(write)


def annotations_path(src: Path, annotations: str | Path | None) -> Path | None:
    """``--annotations`` as the importer reads it: relative to the working directory when it
    exists there, else to SRC."""
    if annotations is None:
        return None
    p = Path(annotations)
    if not p.is_absolute() and not p.exists():
        p = Path(src) / p
    return p


def annotations_location(annotations: Path | None, src: Path) -> str | None:
    """Where the annotations are, as the manifest records it: relative to the dataset root,
    so that `dataset fix` finds them in the version whatever folder the snapshot was taken
    from; the absolute path when they lie outside it (the version holds no annotation file)."""
    if annotations is None:
        return None
    p = Path(annotations).resolve()
    try:
        return p.relative_to(Path(src).resolve()).as_posix()
    except ValueError:
        return str(p)


def _base_of(vault: Vault, name: str, parent: str | None, version: str | None) -> Dataset | None:
    """The version this one is compared with (as ``commit_vision`` finds it) as a ``Dataset``, or None."""
    from lensvault.datasets.handle import Dataset

    prev = _vision_parent(vault, name, parent, SemVer.parse(version) if version else None)
    return Dataset(vault, prev) if prev is not None and prev.name == name else None


def inherit_class_ids(aset: AnnotationSet, base: Dataset | None) -> tuple[ClassMap, pa.Table]:
    """The import's class map and annotations, numbered from the parent's class map when
    the importer numbered the classes itself (see ``lensvault.datasets.class_map``)."""
    if not aset.ids_from_names or base is None or not base.is_vision:
        return aset.classes, aset.annotations
    from lensvault.datasets.class_map import align_to_parent

    return align_to_parent(aset.classes, aset.annotations, base.class_map())


def refuse_empty_import(aset: AnnotationSet, base: Dataset | None, src: Path, spec: VisionInput, *, force: bool,
                        fix: str | None = None) -> str | None:
    """Refuse, before anything is stored, an import that found no annotation at all.

    A wrong ``--format`` or ``--annotations`` reads most folders as images without
    labels; committed, that is a write-once version claiming every box and class was
    removed. With ``force`` the problem is returned instead, for the manifest to record.
    """
    from lensvault.errors import InputError

    if aset.annotations.num_rows > 0:
        return None
    had = base.ref if base is not None and base.is_vision else None
    had_n = int((base.manifest().counts or {}).get("annotations", 0)) if had and base is not None else 0
    n = aset.images.num_rows
    what = (f"the import found no annotations in {n} image{'s' if n != 1 else ''}"
            + (f", but {had} has {had_n:,}" if had_n else "")
            + f" (read as {aset.description or aset.source_format})")
    if force:
        return what
    given = f"--annotations {spec.annotations}" if spec.annotations is not None else "none given"
    raise InputError(
        what, where=str(src),
        fix=fix or (f"check --format (it was {spec.format}) and --annotations ({given}); "
                    "pass --force to record a version without annotations"),
        format=aset.source_format, annotations=None if spec.annotations is None else str(spec.annotations),
    )


def with_hashes(images: pa.Table, files: FileRows) -> pa.Table:
    """Add each image's sha256 (from the files table) to the images table."""
    import pyarrow as pa

    by_path = dict(zip(files.paths, files.oids))
    shas = [by_path.get(p) for p in images["path"].to_pylist()]
    if "sha256" in images.column_names:
        images = images.drop_columns(["sha256"])
    return images.append_column("sha256", pa.array(shas, pa.string()))


def _apply_splits(images: pa.Table, rule: SplitSpec | str | None, base: Dataset | None
                  ) -> tuple[pa.Table, dict[str, Any]]:
    """The images table with each image's split, and the manifest's ``splits`` section
    (which membership a version gets: ``lensvault.datasets.splits``)."""
    import pyarrow as pa

    from lensvault.datasets.splits import plan_splits

    parent_rule = (base.manifest().splits or {}) if base is not None and base.is_vision else None

    def parent_membership() -> dict[str, str | None]:
        assert base is not None  # only asked with a vision parent (parent_rule)
        t = base.images()
        assert t is not None
        return dict(zip(t["path"].to_pylist(), t["split"].to_pylist()))

    plan = plan_splits(images["path"].to_pylist(), images["sha256"].to_pylist(), images["split"].to_pylist(),
                       rule, parent_rule, parent_membership)
    images = images.set_column(images.column_names.index("split"), "split", pa.array(plan.splits, pa.string()))
    info = dict(plan.info)
    counts: dict[str, int] = {}
    for sp in plan.splits:
        key = sp if sp is not None else "unassigned"
        counts[key] = counts.get(key, 0) + 1
    info["counts"] = dict(sorted(counts.items()))
    return images, info


def _unassigned(images: pa.Table, split_info: dict[str, Any]) -> list[Finding]:
    """A warning when the source's split lists name some images and not others (an image added
    to a VOC folder but to no ImageSets file): trained on by nobody, evaluated by nobody."""
    from lensvault.annotations.model import Finding

    if split_info.get("method") != "source":
        return []
    splits = images["split"].to_pylist()
    left = [p for p, s in zip(images["path"].to_pylist(), splits) if s is None]
    if not left:
        return []
    named = sorted({s for s in splits if s is not None})
    shown = ", ".join(left[:5]) + (f" … and {len(left) - 5} more" if len(left) > 5 else "")
    return [Finding("warning", "no-split",
                    f"{len(left)} image(s) are in no split while {len(splits) - len(left)} are in "
                    f"{'/'.join(named)}: {shown} — list them in the source's split files, or pass "
                    "--split 70/20/10 --seed N to assign every image by hashing", "split lists", "images")]


def _vision_parent(vault: Vault, name: str, parent: str | None, semver: SemVer | None) -> DatasetVersion | None:
    from lensvault.datasets.versions import latest_version, resolve

    with vault.catalog.read() as conn:
        if parent:
            return resolve(conn, parent if "@" in parent else f"{name}@{parent}")
        return latest_version(conn, name, below=semver)


def commit_vision(
    vault: Vault, *, name: str, version: str | None, bump: str | None, files: FileRows, images: pa.Table,
    annotations: pa.Table, classes: ClassMap, split_info: dict[str, Any], findings: Sequence[Finding] = (),
    notes: str = "", parent: str | None = None, force: bool = False, source: dict[str, Any] | None = None,
    required_max: str | None = None,
) -> Dataset:
    """Derive or check the version against the parent, then commit the snapshot.

    ``required_max`` caps what the change may require (``dataset fix`` passes
    "patch": a correction that adds images or changes classes is not a fix).
    """
    from lensvault.annotations.image_ids import assign_image_ids, issued_through
    from lensvault.datasets import files_table
    from lensvault.datasets.handle import Dataset
    from lensvault.datasets.snapshot import commit_version
    from lensvault.datasets.vision_tables import VisionTables

    semver = SemVer.parse(version) if version else None
    prev = _vision_parent(vault, name, parent, semver)
    new_tables = VisionTables(f"{name}@{version or 'new'}", images, annotations, classes)
    diff: AnnotationDiff | None = None
    changelog: dict[str, Any] | None = None
    required: str | None = None
    if prev is not None:
        prev_ds = Dataset(vault, prev)
        if prev_ds.is_vision:
            from lensvault.datasets.annotation_diff import diff_vision
            from lensvault.datasets.bump import required_bump
            from lensvault.datasets.changelog import changelog_from_diff

            diff = diff_vision(prev_ds.vision_tables(), new_tables)
            required = required_bump(diff)
            changelog = changelog_from_diff(diff)
        else:
            required = "major"  # from plain files to annotated data: consumers see a new schema
    if required_max is not None:
        _refuse_beyond(required, required_max, diff, prev)
    version, warning = _decide_version(name, prev, version, bump, required, force, diff)
    if changelog is not None and warning:
        changelog["forced"] = warning

    ann_oid = vault.store.put_bytes(files_table.to_parquet_bytes(annotations))
    ann_digest = table_digest(annotations, ["image", "index"])
    class_map = classes.to_dict()
    findings = list(findings)
    counts = {"annotations": annotations.num_rows, "annotated_images": images.num_rows,
              "classes": len(classes), "findings": len(findings)}
    parent_images = prev_ds.images() if prev is not None and prev_ds.is_vision else None
    unnumbered = images
    for attempt in range(_ID_ATTEMPTS):
        # Image ids follow the parent's (docs/formats.md, "Image ids"); assigned last, on the final
        # table, above every id any version of the dataset has handed out — checked again in the
        # commit's transaction, where another snapshot of NAME may have handed out the same ids.
        seen, issued = ids_issued_by(vault, name)
        images = assign_image_ids(unnumbered, parent_images, issued=issued)
        images_oid = vault.store.put_bytes(files_table.to_parquet_bytes(images))
        images_digest = table_digest(images, ["path"])
        sections = {
            "images": {"digest": images_digest, "count": images.num_rows},
            "annotations": {"digest": ann_digest, "count": annotations.num_rows},
            "classes": class_map,
            "splits": {k: v for k, v in split_info.items() if k != "counts"},
        }
        high = issued_through(images, issued)
        tables = {
            "images": {"oid": images_oid, "digest": images_digest, "rows": images.num_rows, "ids_issued": high},
            "annotations": {"oid": ann_oid, "digest": ann_digest, "rows": annotations.num_rows},
        }
        try:
            v = commit_version(
                vault, name=name, version=version, files=files, notes=notes,
                parent=prev.ref if prev else None, sections=sections, tables=tables,
                manifest_fields={"class_map": class_map, "splits": split_info},
                counts=counts, bump=(prev.semver.bump_kind_to(SemVer.parse(version)) if prev else None),
                forced=bool(warning), changelog=changelog, allow_identical=force,
                source={**(source or {}), **findings_record(findings)},
                in_commit=None if high == issued else _ids_still_free(vault, name, seen, issued),
            )
            break
        except _IdsHandedOut:
            if attempt == _ID_ATTEMPTS - 1:
                raise UsageError(f"other snapshots of {name} kept handing out image ids while this one committed",
                                 where=name, fix="run the command again") from None
    from lensvault.datasets.snapshot import with_warnings

    return with_warnings(vault, v, files)


MAX_FINDINGS = 200  # kept in the manifest; the total and the count per code are always recorded


def findings_record(findings: Sequence[Finding]) -> dict[str, Any]:
    """The manifest's findings: the first ``MAX_FINDINGS`` in full, and how many there are in all
    (per code too), so a reader can say "… and N more" instead of cutting the list silently."""
    by_code: dict[str, int] = {}
    for f in findings:
        by_code[f.code] = by_code.get(f.code, 0) + 1
    return {"findings": [f.to_dict() for f in findings[:MAX_FINDINGS]], "findings_total": len(findings),
            "findings_by_code": dict(sorted(by_code.items()))}


_ID_ATTEMPTS = 5


class _IdsHandedOut(Exception):
    """Another version of the dataset handed out image ids after this one chose its own."""


def _ids_still_free(vault: Vault, name: str, seen: frozenset[str], issued: int) -> Callable[[Connection], None]:
    """A check run inside the commit's transaction: no version committed since ids were chosen
    has handed out ids above ``issued`` (else ``_IdsHandedOut``: choose them again).

    SQLite runs write transactions one at a time (BEGIN IMMEDIATE); PostgreSQL takes a lock
    on the dataset's name, held to COMMIT, so two snapshots of NAME check one after the other.
    """

    def check(conn: Connection) -> None:
        from lensvault.catalog.locks import lock_name

        lock_name(conn, "dataset image ids", name)
        _, now = ids_issued_by(vault, name, conn=conn, skip=seen, issued=issued)
        if now > issued:
            raise _IdsHandedOut()

    return check


def ids_issued_by(vault: Vault, name: str, *, conn: Connection | None = None, skip: frozenset[str] = frozenset(),
                  issued: int = 0) -> tuple[frozenset[str], int]:
    """(the versions of ``name``, the highest image id any of them has handed out — 0 for a new
    dataset, at least ``issued``); versions in ``skip`` are not read again; ``conn``: read
    within that transaction.

    Each vision version records its mark (``tables.images.ids_issued``); a version written
    before that counts as the highest id of its images table. Every version counts, not only
    the parent: a version branched from an older one (1.1.0 made after 2.0.0) must not hand
    out an id that 2.0.0 gave to another image.
    """
    from contextlib import nullcontext

    from lensvault.annotations.image_ids import issued_through
    from lensvault.datasets.handle import Dataset
    from lensvault.datasets.versions import list_versions

    with (nullcontext(conn) if conn is not None else vault.catalog.read()) as c:
        versions = list_versions(c, name)
    top = issued
    for record in versions:
        if record.version in skip:
            continue
        ds = Dataset(vault, record)
        entry = ds.manifest().tables.get("images")
        if entry is None:
            continue
        mark = entry.get("ids_issued")
        top = max(top, int(mark) if mark is not None else issued_through(ds.images()))
    return frozenset(v.version for v in versions), top


def _refuse_beyond(required: str | None, cap: str, diff: AnnotationDiff | None, prev: DatasetVersion | None) -> None:
    from lensvault.datasets.bump import bump_rank
    from lensvault.errors import VersionRuleError

    if required is not None and bump_rank(required) > bump_rank(cap):  # (rank 0: None)
        summary = diff.summary() if diff is not None else "the change"
        raise VersionRuleError(
            f"this correction is not a {cap}: it needs a {required.upper()} version ({summary})",
            where=prev.ref if prev else None,
            fix="a fix may only change annotations of existing images; snapshot a new version for added images or class changes",
        )


def _decide_version(name: str, prev: DatasetVersion | None, version: str | None, bump: str | None,
                    required: str | None, force: bool, diff: AnnotationDiff | None) -> tuple[str, str | None]:
    prev_v = prev.version if prev else None
    if prev is None:
        return ("1.0.0", None) if version is None else (str(SemVer.parse(version)), None)
    from lensvault.datasets.bump import bump_rank, bump_reasons, check_explicit_version, next_version

    reasons = bump_reasons(diff) if diff is not None else ["turns a plain file dataset into an annotated one"]
    if version is None:
        kind = bump if bump in ("major", "minor", "patch") else required
        if kind is None:
            raise UsageError(
                f"nothing changed since {prev.ref}",
                where=prev.ref,
                fix="there is nothing to version; check the source folder",
            )
        if bump in ("major", "minor", "patch") and bump_rank(bump) < bump_rank(required) and not force:
            check_explicit_version(prev_v, next_version(prev_v, bump), required, force=False, name=name, reasons=reasons)
        return next_version(prev_v, kind), None
    warning = check_explicit_version(prev_v, version, required, force=force, name=name, reasons=reasons)
    return str(SemVer.parse(version)), warning
