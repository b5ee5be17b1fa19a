"""``ModelVersion``: one registered model version — what ``vault.model(ref)`` returns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lensvault.errors import IntegrityError

__all__ = ["BUNDLE_FORMAT", "ModelVersion", "load_bundle"]

BUNDLE_FORMAT = "lensvault.model/1"


def load_bundle(store, oid: str) -> dict:
    """The bundle manifest, after checking its bytes still hash to ``oid``."""
    from lensvault.hashing import hash_bytes

    data = store.read_bytes(oid)
    if hash_bytes(data) != oid:
        raise IntegrityError(f"model bundle {oid[:12]}… is corrupt in the store", where=oid,
                             fix="run `lensvault verify` and restore the object from a backup")
    bundle = json.loads(data)
    if bundle.get("format") != BUNDLE_FORMAT:
        raise IntegrityError(f"object {oid[:12]}… is not a model bundle ({bundle.get('format')!r})", where=oid)
    return bundle


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    run_id: str
    bundle_oid: str
    dataset: str | None
    config_id: str | None
    code_commit: str | None
    bump: str | None
    forced: bool
    dirty: bool
    created_at: str
    created_by: str
    aliases: tuple[str, ...] = ()
    # Read from the store (hash-checked) on first use of ``bundle``: a list of versions shows
    # their summaries, which the catalog row holds, without reading every bundle.
    store: Any = field(default=None, compare=False, repr=False)
    # Every evaluation of this version or of its run, recorded before or after registration:
    # metric groups whose source names the eval id, dataset@version and split.
    evaluations: tuple[dict, ...] = field(default=(), compare=False, repr=False)

    @property
    def bundle(self) -> dict:
        """The bundle manifest (``lensvault.model/1``), read once."""
        found: dict | None = self.__dict__.get("_bundle")
        if found is None:
            found = load_bundle(self.store, self.bundle_oid)
            object.__setattr__(self, "_bundle", found)
        return found

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def files(self) -> list[dict]:
        return list(self.bundle.get("files", []))

    @property
    def label_map(self) -> dict:
        return self.bundle["label_map"]

    @property
    def metrics(self) -> list[dict]:
        """The metrics recorded at registration, one group per source (lensvault.runs.metric_sources):
        ``[{"source": {"kind", "label", "eval_id", "dataset", "split", ...}, "overall", "per_class",
        "per_slice"}]``. A bundle written before sources were recorded gives one group whose
        source kind is "unrecorded"."""
        from lensvault.runs.metric_sources import groups_of

        return groups_of(self.bundle.get("metrics"))

    @property
    def release_notes(self) -> str:
        return self.bundle.get("release_notes", "")

    @classmethod
    def from_row(cls, row, store, aliases=(), evaluations=()) -> ModelVersion:
        return cls(
            name=row.name, version=row.version, run_id=row.run_id, bundle_oid=row.bundle_oid, dataset=row.dataset,
            config_id=row.config_id, code_commit=row.code_commit, bump=row.bump, forced=bool(row.forced),
            dirty=bool(row.dirty), created_at=row.created_at, created_by=row.created_by,
            aliases=tuple(sorted(aliases)), store=store, evaluations=tuple(evaluations),
        )

    def summary(self) -> dict:
        """One line of ``model list``."""
        return {"name": self.name, "version": self.version, "ref": self.ref, "run_id": self.run_id,
                "dataset": self.dataset, "config_id": self.config_id, "aliases": list(self.aliases),
                "bump": self.bump, "forced": self.forced, "dirty": self.dirty, "created_at": self.created_at,
                "created_by": self.created_by}

    def to_dict(self) -> dict:
        b = self.bundle
        return {
            "name": self.name, "version": self.version, "ref": self.ref, "run_id": self.run_id,
            "dataset": self.dataset, "config": self.config_id, "config_id": self.config_id,
            "code_commit": self.code_commit, "architecture": b.get("architecture"),
            "task": b.get("task"), "output_schema": b.get("output_schema"),
            "metrics": self.metrics, "evaluations": list(self.evaluations),
            "files": [{"name": f["name"], "role": f["role"], "sha256": f["sha256"], "size": f["size"]} for f in self.files],
            "label_map": b.get("label_map"), "thresholds": b.get("thresholds", {}),
            "preprocess": b.get("preprocess"), "postprocess": b.get("postprocess"),
            "caveats": b.get("caveats", []), "release_notes": b.get("release_notes", ""),
            "changes": {
                "previous_version": b.get("previous_version"), "bump": self.bump,
                "decision": b.get("bump_decision"), "forced": self.forced, "forced_reason": b.get("forced_reason"),
                "dataset_changelog": b.get("dataset_changelog", []), "metric_deltas": b.get("metric_deltas", {}),
            },
            "aliases": list(self.aliases), "dirty": self.dirty, "bundle_oid": self.bundle_oid,
            "created_at": self.created_at, "created_by": self.created_by,
        }
