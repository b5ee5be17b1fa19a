"""What must hold after any kill, whatever the command: shared by the kill -9 scenarios."""

from __future__ import annotations

import os
from pathlib import Path

import lensvault


def files(root: Path, n: int, salt: str = "") -> Path:
    """``n`` small distinct files in 8 folders: above the size that starts worker processes.

    An existing file is replaced, not written in place: in a folder snapshotted with hardlinks
    the file is the stored object (writing through it is the documented hardlink-mode risk)."""
    for i in range(n):
        p = root / f"d{i % 8}" / f"f{i:05}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.unlink(missing_ok=True)
        p.write_bytes((f"{salt}{i:06}|" * 60).encode())
    return root


def refs(vault) -> list[str]:
    out = []
    for d in vault.datasets():
        out += [v.ref for v in vault.versions(d["name"])]
    return sorted(out)


def _hidden_temp_files(folder: Path) -> list[str]:
    out = []
    for d, _dirs, names in os.walk(folder):
        out += [os.path.join(d, n) for n in names if n.startswith(".") and n.endswith(".tmp")]
    return out


def left_behind(vault) -> list[str]:
    """What a killed command may leave, after gc: must be nothing."""
    store = Path(vault.store.root)
    out = [f"store tmp: {n}" for n in os.listdir(store / "tmp")]
    from lensvault.store.owner import alive

    out += [f"pin of a dead writer: {n}" for n in os.listdir(store / "pins")
            if alive(n.partition("-")[0]) is False or n.endswith(".tmp")]
    out += [f"ledger temp file: {p}" for p in _hidden_temp_files(store / "ledgers")]
    out += [f"vault record temp file: {p}" for p in _hidden_temp_files(store / "vaults")]
    out += [f"manifest temp file: {p}" for p in _hidden_temp_files(vault.manifests_dir)]
    out += [f"unfinished catalog write: {p}" for p in (store / "ledgers").glob("*/pending/*")]
    staging = vault.dir / "staging"
    if staging.is_dir():
        out += [f"staging record: {n}" for n in os.listdir(staging)]
    out += [f"scratch: {n}" for n in os.listdir(vault.dir) if n.startswith("fix-")]
    work = vault.dir / "tmp"  # a run's data folder and partial log (ended runs remove theirs)
    if work.is_dir():
        out += [f"run work folder: {n}" for n in os.listdir(work) if n.startswith("run-")]
    return out


def whole_or_absent(vault, refs_before: list[str], new_ref: str | None) -> list[str]:
    """The dataset versions visible are those before, plus at most ``new_ref``, each with its
    manifest file; returns them."""
    now = refs(vault)
    allowed = [refs_before] + ([sorted([*refs_before, new_ref])] if new_ref else [])
    assert now in allowed, f"half-visible or unexpected versions: {now}"
    for ref in now:
        name, _, version = ref.partition("@")
        assert (vault.manifests_dir / name / f"{version}.json").is_file(), f"{ref} has no manifest file"
    return now


def verified_and_collected(vault) -> None:
    """``verify`` is clean, and gc (default grace: a dead writer's leftovers go at once) leaves nothing."""
    report = vault.verify()
    assert report.ok, f"verify after the kill: {report.to_dict()}"
    vault.gc().execute()
    left = left_behind(vault)
    assert not left, f"left behind after gc: {left}"


def after_kill(root: Path, refs_before: list[str], new_ref: str | None) -> list[str]:
    """The common invariants of a dataset write; returns the refs now visible."""
    with lensvault.open(root) as vault:
        now = whole_or_absent(vault, refs_before, new_ref)
        verified_and_collected(vault)
        return now
