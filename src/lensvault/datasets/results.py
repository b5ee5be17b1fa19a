"""What the dataset operations of ``Vault`` return; ``to_dict()`` is each command's ``--json``.

Renderers: ``lensvault.render.datasets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Self

from lensvault.datasets.handle import Dataset
from lensvault.results import DictResult, JsonStream, ListResult

if TYPE_CHECKING:  # both import pyarrow-backed code; the diff is made before this is
    from collections.abc import Callable, Iterator

    from lensvault.datasets.annotation_diff import AnnotationDiff
    from lensvault.datasets.diff import FileDiff

__all__ = ["DatasetComparison", "DatasetDetails", "DatasetList", "DatasetLog", "ExportResult", "FilePage", "FixResult",
           "SnapshotResult", "findings_by_code", "findings_facts"]


def findings_facts(source: dict[str, Any], counts: dict[str, Any]) -> dict[str, Any]:
    """The findings a manifest keeps, how many there are in all and per code (versions written
    before the counts per code were recorded count the ones they kept)."""
    items = source.get("findings") or []
    return {"findings": items, "findings_total": source.get("findings_total", counts.get("findings", len(items))),
            "findings_by_code": source.get("findings_by_code") or findings_by_code(items)}


def findings_by_code(items: list[dict[str, Any]]) -> dict[str, int]:
    by_code: dict[str, int] = {}
    for f in items:
        by_code[f["code"]] = by_code.get(f["code"], 0) + 1
    return dict(sorted(by_code.items()))


class _Created(Dataset):
    """The handle of a version an operation just wrote (everything a ``Dataset`` does), plus
    the operation's own view of it: ``to_dict()`` is what its command prints, not ``show``'s."""

    @classmethod
    def of(cls, ds: Dataset) -> Self:
        made = cls.__new__(cls)
        made.__dict__.update(ds.__dict__)  # keeps what the handle has read already
        return made

    @property
    def manifest_path(self) -> str:
        return str(self.vault.manifests_dir / self.name / f"{self.version}.json")

    @cached_property
    def git_add(self) -> str | None:
        """The command that commits the new manifest with the code (None outside a git work tree)."""
        from lensvault.gitinfo import add_command

        return add_command(self.manifest_path)

    @cached_property
    def details(self) -> dict[str, Any]:
        """``dataset show``'s view of the version (``Dataset.to_dict``)."""
        return Dataset.to_dict(self)


class SnapshotResult(_Created):
    """What ``vault.snapshot`` made: ``dataset snapshot --json``."""

    def to_dict(self) -> dict[str, Any]:
        info = self.details
        out = {"name": self.name, "version": self.version, "ref": self.ref, "snapshot_id": self.snapshot_id,
               **{k: info[k] for k in ("parent", "files", "bytes", "bump", "forced", "changelog", "manifest_path")}}
        source = info.get("source") or {}
        if self.is_vision:
            out.update({k: info[k] for k in ("images", "annotations", "classes", "splits")})
            # What the human output says too: what the import found, and the images it left out.
            out.update({"source_description": source.get("description"),
                        "skipped_images": source.get("skipped_images") or []})
        out.update(findings_facts(source, info.get("counts") or {}))
        out["git_add"] = self.git_add
        out["warnings"] = self.warnings  # what the write found damaged (datasets.needs.damage_warnings)
        return out


class FixResult(_Created):
    """The PATCH version ``vault.fix`` made: ``dataset fix --json``."""

    def to_dict(self) -> dict[str, Any]:
        r = self.record
        return {"ref": r.ref, "parent": r.parent, "snapshot_id": r.snapshot_id, "bump": r.bump,
                "changelog": r.changelog, "manifest_path": self.manifest_path, "git_add": self.git_add}


class DatasetList(ListResult):
    """``dataset list``: each dataset with its latest version ({name, versions, latest, files, bytes, updated_at})."""


class DatasetLog(ListResult):
    """``dataset log``: the ``DatasetVersion`` records of one dataset, newest first."""


@dataclass(frozen=True)
class DatasetDetails:
    """``dataset show``: the version (``Dataset.to_dict``), and with ``files`` every file.

    The files are ``file_rows``: a call gives them a batch of dicts at a time, read again from the
    files table at each call (``Dataset.file_dicts``), so ``--json`` and the renderer write them
    out as they come and hold one batch. ``to_dict()`` and ``file_list`` hold them all.
    """

    info: dict[str, Any]
    file_rows: Callable[[], Iterator[list[dict[str, Any]]]] | None = None

    @property
    def ref(self) -> str:
        ref: str = self.info["ref"]
        return ref

    @property
    def is_vision(self) -> bool:
        return "images" in self.info

    @property
    def file_list(self) -> list[dict[str, Any]] | None:
        """Every file's dict (None without ``files``), all at once."""
        if self.file_rows is None:
            return None
        return [row for rows in self.file_rows() for row in rows]

    def to_dict(self) -> dict[str, Any]:
        files = self.file_list
        return self.info if files is None else {**self.info, "file_list": files}

    def json_stream(self) -> JsonStream | None:
        """``to_dict()`` with its ``file_list`` a batch at a time (None: nothing to stream)."""
        if self.file_rows is None:
            return None
        return JsonStream(self.info, "file_list", self.file_rows())


@dataclass(frozen=True)
class FilePage:
    """``GET …/versions/{version}/files``: ``dataset show --files``'s ``file_list`` a page at a
    time: ``limit`` files from ``after`` (how many come before them, in path order; a version
    never changes, so a page never shifts), how many in all, and ``next`` (None at the end)."""

    ref: str
    files: int
    after: int
    limit: int
    file_list: list[dict[str, Any]]

    @property
    def next(self) -> int | None:
        end = self.after + len(self.file_list)
        return end if self.file_list and end < self.files else None

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "files": self.files, "after": self.after, "limit": self.limit, "next": self.next,
                "file_list": self.file_list}


@dataclass(frozen=True)
class DatasetComparison:
    """``dataset diff``: the file diff, and for two annotated versions the annotation diff."""

    files: FileDiff
    annotations: AnnotationDiff | None = None

    def to_dict(self) -> dict[str, Any]:
        out = self.files.to_dict()
        out["files_summary"] = out.pop("summary")
        if self.annotations is not None:
            out.update(self.annotations.to_dict())
        return out


class ExportResult(DictResult):
    """``dataset export``: {ref, dest, format, split, images}."""
