"""What a model bundle holds besides what registration generates (metrics, release notes,
the manifest): the weights, verified against the files the run recorded; the label map,
given or the class map of the run's dataset version; pre/post-processing settings; the
thresholds. Collected and stored before the registering transaction (lensvault/registry/register.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault.errors import InputError, IntegrityError
from lensvault.registry.label_map import read_label_map
from lensvault.registry.rules import Facts
from lensvault.registry.run_facts import RunFacts

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["RESERVED_NAMES", "BundleInputs", "canonical", "collect", "parse_thresholds", "store"]

RESERVED_NAMES = ("bundle.json", "metrics.json", "RELEASE_NOTES.md")


def canonical(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


def parse_thresholds(items) -> dict[str, float]:
    """``["score=0.5", "nms_iou=0.6"]`` (or a mapping) -> ``{"nms_iou": 0.6, "score": 0.5}``."""
    if isinstance(items, dict):
        items = [f"{k}={v}" for k, v in items.items()]
    out: dict[str, float] = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        key = key.strip()
        try:
            if not sep or not key:
                raise ValueError
            out[key] = float(value)
        except ValueError:
            raise InputError(f"threshold {item!r} is not KEY=NUMBER", where=str(item),
                             fix="write e.g. --threshold score=0.5 --threshold nms_iou=0.6") from None
    return dict(sorted(out.items()))


@dataclass
class BundleInputs:
    """What the bundle holds besides what registration generates (metrics, notes, the manifest)."""

    files: list[dict]  # name, role, sha256, size, and source (a path) or data (bytes)
    unverified: list[str]  # weights files the run did not record
    label_map: dict
    label_map_source: str
    settings: dict  # preprocess / postprocess: the parsed file, or None
    thresholds: dict

    def facts(self, run: RunFacts) -> Facts:
        """What decides the version bump (registry/rules.py)."""
        return Facts(
            dataset=run.dataset, config_id=run.config_id, config=run.config, code_commit=run.code_commit,
            label_map=self.label_map, preprocess=self.settings["preprocess"], postprocess=self.settings["postprocess"],
            thresholds=self.thresholds,
            weights=tuple(sorted(f["sha256"] for f in self.files if f["role"] == "weights")),
        )


def collect(vault: Vault, run: RunFacts, *, weights, labelmap=None, preprocess=None, postprocess=None,
            thresholds=()) -> BundleInputs:
    """Weights (verified against what the run recorded), the label map, the settings files
    and the thresholds; nothing is stored yet (:func:`store`)."""
    from lensvault.configs.values import load_config
    from lensvault.hashing import hash_file

    files: list[dict] = []
    unverified: list[str] = []
    for w in weights:
        p = Path(w)
        if not p.is_file():
            raise InputError(f"weights file {p} does not exist", where=str(p), fix="pass the path of the trained weights")
        fh = hash_file(p)
        if not _verify_weights(run, p, fh.oid):
            unverified.append(p.name)
        files.append({"name": p.name, "role": "weights", "sha256": fh.oid, "size": fh.size, "source": str(p)})

    label_map, label_map_source = _label_map(vault, labelmap, run, files)

    settings: dict[str, Any] = {}
    for role, path in (("preprocess", preprocess), ("postprocess", postprocess)):
        if path is None:
            settings[role] = None
            continue
        path = Path(path)
        settings[role] = load_config(path)
        files.append({"name": role + path.suffix, "role": role, "data": path.read_bytes()})
    thresholds = parse_thresholds(thresholds)

    names = [f["name"] for f in files]
    clash = sorted({n for n in names if names.count(n) > 1 or n in RESERVED_NAMES})
    if clash:
        raise InputError(f"bundle file name(s) {', '.join(clash)} used twice or reserved", where=", ".join(clash),
                         fix="rename the weights file(s): bundle.json, metrics.json and RELEASE_NOTES.md are the bundle's own")
    return BundleInputs(files, unverified, label_map, label_map_source, settings, thresholds)


def _label_map(vault: Vault, labelmap, run: RunFacts, files: list[dict]) -> tuple[dict, str]:
    """The label map given, or the class map of the run's dataset version (its file is added to ``files``)."""
    if labelmap is not None:
        given = read_label_map(Path(labelmap))
        lm_path = Path(labelmap)
        files.append({"name": "labelmap" + (lm_path.suffix or ".txt"), "role": "labelmap", "data": lm_path.read_bytes()})
        return given, f"file {lm_path.name}"
    label_map = _dataset_label_map(vault, run)
    if label_map is None:
        raise InputError(
            "weights without a label map are refused",
            where=run.dataset or run.run_id,
            fix="pass --labelmap PATH (the run's dataset version has no class map)"
            if run.dataset else "pass --labelmap PATH (the run used no dataset version)",
        )
    files.append({"name": "labelmap.json", "role": "labelmap", "data": canonical(label_map)})
    return label_map, f"dataset {run.dataset}"


def store(vault: Vault, files: list[dict]) -> None:
    """Store the bundle's files (pinned: gc keeps them until the commit, which checks they
    are still there); a weights object that does not hash right is replaced from its file."""
    for f in files:
        if "data" in f:
            f["sha256"] = vault.store.put_bytes(f["data"])
            f["size"] = len(f["data"])
    vault.store.put_files([(f["source"], f["sha256"]) for f in files if "source" in f])
    for f in files:
        # A stored object that is not the bytes we hashed: damaged in the store (the file still
        # hashes right: its bytes replace the object), or the file changed meanwhile.
        if ("source" in f and vault.store.check(f["sha256"]) != "ok"
                and not vault.store.restore(f["sha256"], f["source"])):
            raise IntegrityError(f"weights file {f['source']} changed while it was being registered",
                                     where=f["source"], fix="wait for the writer to finish and register again")


def _verify_weights(run: RunFacts, path: Path, oid: str) -> bool:
    """True if the run recorded these bytes; IntegrityError if it recorded this path with other bytes."""
    if any(sha == oid for sha, _ in run.artifacts.values()):
        return True
    posix = path.absolute().as_posix()
    matches = [a for a in run.artifacts if posix == a or posix.endswith("/" + a.lstrip("./"))]
    if matches:
        art = max(matches, key=len)
        raise IntegrityError(
            f"weights {path.name} changed after run {run.run_id} recorded them "
            f"(run: {run.artifacts[art][0][:12]}…, file now: {oid[:12]}…)",
            where=str(path),
            fix="register the file the run produced (restore it), or re-run training",
            expected=run.artifacts[art][0], actual=oid,
        )
    return False


def _dataset_label_map(vault: Vault, run: RunFacts) -> dict | None:
    if not run.dataset:
        return None
    cm = vault.dataset(run.dataset).class_map()
    if cm is None:
        return None
    return {"classes": [{"id": int(i), "name": str(n)} for i, n in zip(cm.ids, cm.names)]}
