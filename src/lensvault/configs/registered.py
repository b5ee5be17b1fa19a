"""Registered configs: a file's bytes, parsed values, repo path and commit under an ID such as C-23c.

Registration is write-once (a trigger refuses updates). The commit recorded is the newest
commit that touched the file *only if* the file's bytes at that commit are the bytes being
registered. An uncommitted or modified file is refused before anything is written (an ID
burnt on bytes no commit holds helps nobody); with ``uncommitted=True`` it is registered with
no commit, for exploration, and the preflight then refuses it for runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault import ledger
from lensvault.errors import AlreadyExists, NotFound, UsageError

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["ConfigRecord", "add_config", "diff_registered", "get_config", "list_configs"]


@dataclass(frozen=True)
class ConfigRecord:
    config_id: str
    sha256: str
    canonical_sha256: str
    repo_path: str
    commit: str | None
    format: str
    values: dict
    created_at: str
    created_by: str

    @classmethod
    def from_row(cls, row) -> ConfigRecord:
        return cls(config_id=row.config_id, sha256=row.sha256, canonical_sha256=row.canonical_sha256,
                   repo_path=row.repo_path, commit=row.commit, format=row.format, values=json.loads(row.content),
                   created_at=row.created_at, created_by=row.created_by)

    def to_dict(self) -> dict:
        return {"config_id": self.config_id, "sha256": self.sha256, "canonical_sha256": self.canonical_sha256,
                "repo_path": self.repo_path, "commit": self.commit, "format": self.format, "values": self.values,
                "created_at": self.created_at, "created_by": self.created_by}


def _repo_relpath(vault: Vault, path: Path) -> tuple[Path, str]:
    """(git root, path relative to it) of a config file in the vault's repository."""
    from lensvault import gitinfo

    state = gitinfo.git_state(vault.root)
    root = Path(state.repo_root)
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UsageError("the config file is outside the vault's git repository", where=str(path),
                         fix=f"keep configs under {root} and commit them") from None
    return root, rel


def add_config(vault: Vault, path, config_id: str | None = None, *, uncommitted: bool = False) -> ConfigRecord:
    from lensvault import gitinfo
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.repos.configs import ConfigRepo
    from lensvault.configs import values as configs

    p = Path(path).absolute()
    if not p.is_file():
        raise NotFound("config file not found", where=str(path), fix="give the path of a YAML, JSON or TOML file")
    values = configs.load_config(p)  # InputError for unsupported or malformed files
    data = p.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    root, rel = _repo_relpath(vault, p)
    commit = None
    last = gitinfo.last_commit_touching(p)
    if last is not None:
        try:
            if gitinfo.file_at_commit(last, rel, repo=root) == data:
                commit = last
        except NotFound:
            commit = None  # deleted in its newest commit, re-created since: not committed
    if commit is None and not uncommitted:
        state = "is not tracked by git" if last is None else "has changes no commit holds"
        raise UsageError(f"the config file {state}; nothing was registered", where=rel,
                         fix=f"commit it (git add {rel} && git commit -m 'Add {rel}') and register it again, or pass "
                             "--uncommitted to register it as it is (a run's preflight refuses an uncommitted config)")
    fmt = {".yml": "yaml"}.get(p.suffix.lower(), p.suffix.lower().lstrip("."))
    oid = vault.store.put_bytes(data)
    with vault.store.committing([oid]), vault.catalog.begin() as conn:
        repo = ConfigRepo(conn)
        if config_id is None:
            config_id = configs.next_config_id(repo.ids())
        configs.validate_config_id(config_id)
        if repo.exists(config_id):
            raise AlreadyExists(f"config {config_id} is already registered", where=config_id,
                                fix="config IDs are write-once: register the changed file under a new ID")
        row: dict[str, Any] = {"config_id": config_id, "sha256": sha,
               "canonical_sha256": hashlib.sha256(configs.canonical_bytes(values)).hexdigest(),
               "repo_path": rel, "commit": commit, "format": fmt,
               "content": configs.canonical_bytes(values).decode(), "created_at": utcnow(), "created_by": vault.actor}
        repo.add(row)
        vault.catalog.add_object_refs(conn, "config", config_id, [oid])
        vault.catalog.append_event(conn, "config.add", "config", config_id,
                                   after={"path": rel, "sha256": sha, "commit": commit})
        ledger.record(vault, conn, "config", {"row": row, "oid": oid}, objects=[oid], ref=f"configs/{config_id}")
    return ConfigRecord(**{**{k: v for k, v in row.items() if k != "content"}, "values": json.loads(row["content"])})


def get_config(conn, config_id: str) -> ConfigRecord:
    from lensvault.catalog.repos.configs import ConfigRepo

    row = ConfigRepo(conn).get(config_id)
    if row is None:
        raise NotFound(f"config {config_id} is not registered", where=config_id,
                       fix=f"register it: `lensvault config add PATH --id {config_id}` (see `lensvault config list`)")
    return ConfigRecord.from_row(row)


def list_configs(conn) -> list[ConfigRecord]:
    from lensvault.catalog.repos.configs import ConfigRepo

    return [ConfigRecord.from_row(r) for r in ConfigRepo(conn).all()]


def diff_registered(a: ConfigRecord, b: ConfigRecord) -> dict:
    """Key-level diff: {"added": {k: v}, "removed": {k: v}, "changed": {k: [old, new]}}."""
    from lensvault.configs.values import flatten

    fa, fb = flatten(a.values), flatten(b.values)
    return {
        "a": a.config_id,
        "b": b.config_id,
        "added": {k: fb[k] for k in sorted(fb.keys() - fa.keys())},
        "removed": {k: fa[k] for k in sorted(fa.keys() - fb.keys())},
        "changed": {k: [fa[k], fb[k]] for k in sorted(fa.keys() & fb.keys()) if fa[k] != fb[k]},
    }


def config_file_state(vault: Vault, record: ConfigRecord) -> dict:
    """Where the registered file stands now: exists, tracked, bytes unchanged, committed."""
    from lensvault import gitinfo

    root = Path(gitinfo.git_state(vault.root).repo_root)
    p = root / record.repo_path
    out = {"path": str(p), "exists": p.is_file(), "tracked": False, "unchanged": False}
    if out["exists"]:
        out["tracked"] = gitinfo.is_tracked(p)
        out["unchanged"] = hashlib.sha256(p.read_bytes()).hexdigest() == record.sha256
    out["committed"] = record.commit is not None
    return out

