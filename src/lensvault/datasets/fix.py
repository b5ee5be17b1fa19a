"""``dataset fix``: corrected annotations in, the next PATCH version out.

The version is rebuilt in a scratch folder (files linked from the store, so it
costs no copies) with the corrected annotation files laid over the originals,
then snapshotted like any other folder — so the new version's files, tables
and changelog are all consistent. A correction that adds images or changes
the class map is refused: that is not a patch.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from lensvault.errors import InputError, UsageError
from lensvault.progress import NO_PROGRESS
from lensvault.store.base import LinkMode

if TYPE_CHECKING:
    from lensvault.datasets.handle import Dataset
    from lensvault.progress import Progress
    from lensvault.vault import Vault

__all__ = ["annotations_in_version", "fix_annotations", "overlay_targets"]


def overlay_targets(corrected: Path, dataset_paths: list[str]) -> list[tuple[Path, str]]:
    """Where each corrected file goes: the dataset path with the longest matching path suffix.

    ``fixes/instances.json`` replaces ``annotations/instances.json``; a folder of VOC
    XMLs replaces ``Annotations/*.xml`` file by file. A file that matches nothing is
    added beside the annotations it belongs with only if its name is unique; an
    ambiguous match is refused, since guessing would silently fix the wrong file.
    """
    if corrected.is_file():
        files = [(corrected, PurePosixPath(corrected.name))]
    else:
        files = [(p, PurePosixPath(p.relative_to(corrected).as_posix())) for p in sorted(corrected.rglob("*")) if p.is_file()]
    if not files:
        raise InputError("no corrected files found", where=str(corrected), fix="pass the corrected annotation file or folder")
    by_name: dict[str, list[str]] = {}
    for p in dataset_paths:
        by_name.setdefault(PurePosixPath(p).name, []).append(p)
    out = []
    for src, rel in files:
        candidates = by_name.get(rel.name, [])
        best, best_len, tie = None, -1, False
        for cand in candidates:
            n = _common_suffix(PurePosixPath(cand).parts, rel.parts)
            if n > best_len:
                best, best_len, tie = cand, n, False
            elif n == best_len:
                tie = True
        if best is None:
            raise InputError(
                f"corrected file {rel} matches no file in the dataset",
                where=str(src),
                fix="name corrected files like the originals (e.g. the same COCO JSON name, or one XML per image)",
            )
        if tie:
            raise InputError(
                f"corrected file {rel} matches several dataset files",
                where=str(src),
                fix="pass a folder that mirrors the dataset layout (e.g. labels/train/x.txt)",
            )
        out.append((src, best))
    return out


def _common_suffix(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def fix_annotations(vault: Vault, ref: str, corrected: Path, *, format: str = "auto", version: str | None = None,
                    notes: str = "", progress: Progress = NO_PROGRESS) -> Dataset:
    ds = vault.dataset(ref)
    if not ds.is_vision:
        raise UsageError(f"{ds.ref} has no annotations to fix", where=ds.ref,
                         fix="snapshot the dataset with --format first")
    corrected = Path(corrected)
    if not corrected.exists():
        raise InputError("corrected annotations not found", where=str(corrected), fix="check the path")
    source = ds.manifest().source or {}
    dataset_paths = ds.files()["path"].to_pylist()
    ann = annotations_in_version(ds, source, dataset_paths)
    targets = overlay_targets(corrected, dataset_paths)
    fmt = format if format != "auto" else source.get("format", "auto")
    from lensvault.datasets.snapshot import with_retries

    return with_retries(lambda: _fix_in_scratch(vault, ds, targets, source, ann, fmt, corrected, version, notes,
                                                progress))


def _fix_in_scratch(vault: Vault, ds: Dataset, targets: list[tuple[Path, str]], source: dict[str, Any], ann: str | None,
                    fmt: str, corrected: Path, version: str | None, notes: str, progress: Progress) -> Dataset:
    import pyarrow as pa

    from lensvault.annotations import load
    from lensvault.datasets.ingest import ingested
    from lensvault.datasets.vision import (
        VisionInput,
        commit_vision,
        inherit_class_ids,
        refuse_empty_import,
        with_hashes,
    )
    from lensvault.store.owner import current

    m = ds.manifest()
    # Named after this process: gc removes the folder if the process is killed (store/leftovers.py).
    scratch = Path(tempfile.mkdtemp(prefix=f"fix-{current()}-", dir=vault.dir))
    try:
        work = scratch / "data"
        ds.checkout(work, link=_scratch_link(vault))
        (work / ".lensvault-checkout.json").unlink(missing_ok=True)
        for src, dst in targets:
            target = work / dst
            target.unlink(missing_ok=True)  # may be a read-only hardlink into the store
            shutil.copyfile(src, target)
        classes = None
        if source.get("classes"):  # the --classes the version was snapshotted with, ids as given
            import json

            ids = source.get("class_ids") or list(range(len(source["classes"])))
            classes = scratch / "classes.json"
            classes.write_text(json.dumps({"names": {str(i): n for i, n in zip(ids, source["classes"])}}),
                               encoding="utf-8")
        # The parent's bad-image mode, so images it left out stay out (the checkout has their files).
        aset = load(work, format=fmt, annotations=(work / ann) if ann else None, classes=classes,
                    on_bad_image=source.get("on_bad_image"), label_key=source.get("label_key"),
                    ignore_index=source.get("ignore_index"), background=source.get("background_label"))
        class_map, annotations = inherit_class_ids(aset, ds)
        refuse_empty_import(aset, ds, corrected, VisionInput(format=fmt), force=False,
                            fix="pass the corrected annotation files, in the dataset's format")
        with ingested(vault, work, link=LinkMode.COPY, progress=progress,
                      known=frozenset(ds.files()["sha256"].to_pylist())) as files:
            images = with_hashes(aset.images, files)
            # A fix never moves images between splits: keep the parent's membership exactly.
            parent_images = ds.images()
            assert parent_images is not None  # a vision version (fix_annotations checked)
            split_of = dict(zip(parent_images["path"].to_pylist(), parent_images["split"].to_pylist()))
            col = pa.array([split_of.get(p) for p in images["path"].to_pylist()], pa.string())
            images = images.set_column(images.column_names.index("split"), "split", col)
            return commit_vision(
                vault, name=ds.name, version=version, bump=None, files=files, images=images,
                annotations=annotations, classes=class_map, split_info=dict(m.splits or {}),
                findings=aset.findings, notes=notes or f"annotation fix of {ds.ref}", parent=ds.ref,
                source={**source, "fix_of": ds.ref, "corrected": str(corrected.absolute())}, required_max="patch",
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def annotations_in_version(ds: Dataset, source: dict[str, Any], dataset_paths: list[str]) -> str | None:
    """The version's annotation file or folder, relative to its root (None: found by the format's layout).

    Versions record it relative to the dataset root. Earlier ones recorded what was typed
    — relative to the folder the snapshot ran in, or absolute — so that is mapped into the
    version too: the longest tail of the recorded path that names a file or folder in it.
    """
    recorded = source.get("annotations")
    if not recorded:
        return None
    folders = {str(PurePosixPath(p).parent) for p in dataset_paths}
    for p in list(folders):
        folders.update(str(a) for a in PurePosixPath(p).parents)
    present = set(dataset_paths) | folders

    def inside(rel: str) -> bool:
        return rel in present

    path = PurePosixPath(recorded)
    if not path.is_absolute() and inside(path.as_posix()):
        return path.as_posix()
    if path.is_absolute() and source.get("path"):
        try:
            rel = Path(recorded).relative_to(source["path"]).as_posix()
        except ValueError:
            rel = None
        if rel and inside(rel):
            return rel
    parts = [x for x in path.parts if x not in ("/", "..", ".")]
    for i in range(len(parts)):
        tail = PurePosixPath(*parts[i:]).as_posix()
        if inside(tail):
            return tail
    raise UsageError(
        f"{ds.ref} read its annotations from outside its folder ({recorded}), so it holds no "
        "annotation file to correct",
        where=ds.ref,
        fix=f"snapshot the corrected annotations as a new version: `lensvault dataset snapshot {ds.name} "
            f"{source.get('path') or 'SRC'} --format {source.get('format') or 'auto'} --annotations CORRECTED "
            "--bump auto`",
    )


def _scratch_link(vault: Vault) -> LinkMode:
    # Hardlinks from the store cost nothing when the scratch folder shares its
    # filesystem; otherwise copies.
    from lensvault.store.local_links import same_filesystem

    return LinkMode.HARDLINK if same_filesystem(vault.store, vault.dir) else LinkMode.COPY
