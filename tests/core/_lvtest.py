"""Helpers for the vault-core tests: real files, real subprocesses, no mocks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LV = [sys.executable, "-m", "lensvault.cli.main"]


def write_files(root: Path, files: dict[str, bytes | str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def settle() -> None:
    """Let files just written age past one timestamp tick (20 ms on a filesystem with nanosecond
    timestamps), so the stat cache trusts them: a file stat'ed within the tick it was last
    changed in is cached as unsure and read again next time (state.racy)."""
    import time

    time.sleep(0.03)


def _env(extra: dict | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LENSVAULT_DIR"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["COLUMNS"] = "200"
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


def lv(*args, cwd=None, env: dict | None = None, timeout: float = 120, prefix=()) -> subprocess.CompletedProcess:
    """Run the real ``lensvault`` CLI in a subprocess."""
    return subprocess.run([*prefix, *LV, *map(str, args)], cwd=cwd, env=_env(env), capture_output=True,
                          text=True, timeout=timeout)


def lv_popen(*args, cwd=None, env: dict | None = None, prefix=()) -> subprocess.Popen:
    return subprocess.Popen([*prefix, *LV, *map(str, args)], cwd=cwd, env=_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def lv_many(calls: list[tuple], *, cwd=None, env=None, timeout: float = 120) -> list[subprocess.CompletedProcess]:
    """Run several independent CLI commands at once (they only read) and collect the results."""
    procs = [lv_popen(*c, cwd=cwd, env=env) for c in calls]
    out = []
    for c, p in zip(calls, procs):
        so, se = p.communicate(timeout=timeout)
        out.append(subprocess.CompletedProcess([*LV, *c], p.returncode, so, se))
    return out


def lv_json(*args, **kw):
    r = lv(*args, "--json", **kw)
    assert r.returncode == 0, r.stderr + r.stdout
    return json.loads(r.stdout)


def store_root(vault) -> Path:
    return Path(vault.store.root)


def object_files(vault) -> list[Path]:
    root = store_root(vault)
    return sorted(p for p in root.glob("??/*") if p.is_file())


def tmp_leftovers(vault) -> list[str]:
    if vault.store.local() is None:
        return []  # a store without local files has no temp files
    return sorted(os.listdir(store_root(vault) / "tmp"))


def lose_object(vault, oid: str) -> None:
    """What a lost file or a racing gc does to an object, on any store."""
    vault.store.delete(oid)


def damage_object(vault, oid: str, offset: int = 0) -> None:
    """Flip one byte of a stored object in place (bit rot, an edit through a hardlink), on any store."""
    path = vault.store.local_path(oid)
    if path is not None:
        flip_byte(Path(path), offset)
        return
    data = bytearray(vault.store.open(oid).read())
    data[offset] ^= 0xFF
    vault.store.damage(oid, bytes(data))  # MemoryObjectStore


def version_refs(vault) -> list[str]:
    out = []
    for d in vault.datasets():
        out += [v.ref for v in vault.versions(d["name"])]
    return sorted(out)


def make_writable(path: Path) -> None:
    os.chmod(path, 0o644)


def flip_byte(path: Path, offset: int = 0) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))
    os.chmod(path, 0o444)


def assert_nothing_half_written(vault, *, refs_before: list[str], objects_before: set[str] | None = None,
                                manifests_before: list[str] | None = None) -> None:
    """No new version, no temp files, a verify that passes, no stray manifest file."""
    assert version_refs(vault) == refs_before
    assert tmp_leftovers(vault) == []
    report = vault.verify()
    assert report.ok, report.to_dict()
    if manifests_before is not None:
        assert manifest_files(vault) == manifests_before
    if objects_before is not None:
        assert {p.parent.name + p.name for p in object_files(vault)} == objects_before


def manifest_files(vault) -> list[str]:
    d = Path(vault.manifests_dir)
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def oids_in_store(vault) -> set[str]:
    if vault.store.local() is None:
        return set(vault.store.iter_oids())
    return {p.parent.name + p.name for p in object_files(vault)}


def ledger_oids(vault, catalog_id: str | None = None) -> set[str]:
    """The record objects a catalog's ledger in the store lists (every write leaves one)."""
    from lensvault.ledger import entries

    return {e.oid for e in entries(vault.store, catalog_id or vault.config.catalog_id)}


def rmtree_force(path: Path) -> None:
    def onerror(func, p, exc):
        try:
            os.chmod(p, 0o777)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=onerror)


def without_dac_override() -> list[str]:
    """A prefix that runs a command as root minus the capabilities that bypass file permissions."""
    if os.geteuid() != 0:
        return []  # an ordinary user is already subject to chmod
    probe = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", "true"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot drop CAP_DAC_OVERRIDE here (setpriv missing or not permitted)")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
