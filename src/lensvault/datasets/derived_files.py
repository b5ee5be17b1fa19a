"""What is derived from a snapshot, kept on this machine's disk so that a new process does not
derive it again: ``.lensvault/cache/snapshots/<snapshot id>.v<FORMAT>.<what>.(arrow|json)``.

A snapshot never changes, so neither does what is derived from it: a file here is written once
(to a temp file, then renamed) and read as long as it exists; tables are memory-mapped (Arrow
IPC), so reading one costs next to nothing whatever its size. It is a cache, not a record:
anything wrong with a file (missing, cut short, another format, another shape) makes the
reader derive it again from the stored tables, and a cache folder that cannot be written only
costs the time. ``gc`` removes temp files a killed writer left (integrity.py).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import pyarrow as pa

    from lensvault.vault import Vault

__all__ = ["FORMAT", "read_json", "read_table", "write_json", "write_table"]

FORMAT = 1


def _path(vault: Vault, snapshot_id: str, what: str, suffix: str) -> Path:
    return vault.dir / "cache" / "snapshots" / f"{snapshot_id}.v{FORMAT}.{what}.{suffix}"


def _write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    import pyarrow as pa

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError:
        return  # a cache that cannot be written costs only the time
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.replace(tmp, path)
    except (OSError, pa.ArrowException):  # a full disk, a read-only folder: no file, nothing half-written
        _unlink(tmp)
    except BaseException:  # Ctrl-C: the same, and it goes on
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def read_json(vault: Vault, snapshot_id: str, what: str) -> Any | None:
    try:
        return json.loads(_path(vault, snapshot_id, what, "json").read_bytes())
    except (OSError, ValueError):
        return None


def write_json(vault: Vault, snapshot_id: str, what: str, value: Any) -> None:
    data = json.dumps(value).encode()  # key order kept: it is the order a reader shows
    _write(_path(vault, snapshot_id, what, "json"), lambda out: out.write(data))


def read_table(vault: Vault, snapshot_id: str, what: str) -> pa.Table | None:
    """The table, memory-mapped (None when there is none, or it cannot be read whole)."""
    import pyarrow as pa

    path = _path(vault, snapshot_id, what, "arrow")
    try:
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_file(source).read_all()
    except (OSError, pa.ArrowException):
        return None


def write_table(vault: Vault, snapshot_id: str, what: str, table: pa.Table) -> None:
    import pyarrow as pa

    def write(out: BinaryIO) -> None:
        with pa.ipc.new_file(out, table.schema) as writer:
            writer.write_table(table)

    _write(_path(vault, snapshot_id, what, "arrow"), write)
