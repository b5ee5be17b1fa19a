"""What killed writers leave behind: temp files, staging folders, scratch folders.

A writer killed with SIGKILL (or a machine that lost power) runs no cleanup. Every
such file or folder is named after its writer (``store/owner.py``), or recorded with
it, so ``gc`` can find it later and decide: the writer is gone → remove it; the
writer still runs → leave it alone whatever its age; the writer cannot be told
(another host, an older name without an owner) → remove it once it is older than
the grace period. ``gc`` lists them in its plan and removes them with the objects.

A checkout's staging folder lives beside its destination, anywhere on disk, so the
checkout records it under ``.lensvault/staging/`` before creating it and removes the
record when it is done (``staging_folder``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lensvault.store.owner import alive, current

__all__ = ["Leftover", "decide", "remove", "scan_files", "staging_folder", "staging_leftovers", "STAGING_PREFIX"]

STAGING_PREFIX = ".lensvault-checkout-"


@dataclass(frozen=True)
class Leftover:
    path: str
    kind: str  # "temp file", "staging folder", "scratch folder", …
    bytes: int
    age_seconds: float
    record: str | None = None  # the file that recorded it (removed with it)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["age_seconds"] = round(self.age_seconds, 1)
        d.pop("record")
        return d


def decide(owner: str | None, age: float, grace_seconds: float) -> bool:
    """Whether something a writer left is garbage now."""
    live = alive(owner) if owner else None
    if live is False:
        return True
    return live is None and age > grace_seconds


_TOKEN = re.compile(r"(?<![0-9a-f])[0-9a-f]{8}\.\d+\.\d+(?![.\d])")


def _owner_of(name: str) -> str | None:
    """The owner token (``HOST.PID.START``) in a name, or None."""
    m = _TOKEN.search(name)
    return m.group(0) if m else None


def _size(path: str) -> int:
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if not os.path.isdir(path) or os.path.islink(path):
        return st.st_size
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def scan_files(folder: str | os.PathLike[str], kind: str, grace_seconds: float, *,
               match: Callable[[str], bool] | None = None) -> list[Leftover]:
    """Entries of ``folder`` (not recursive) left by writers that are gone (see ``decide``).

    ``match(name)`` selects the entries that are writers' leftovers at all.
    """
    out: list[Leftover] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return out
    for e in entries:
        if match is not None and not match(e.name):
            continue
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        age = now - st.st_mtime
        if decide(_owner_of(e.name), age, grace_seconds):
            out.append(Leftover(e.path, kind, _size(e.path), age))
    return out


def remove(items: list[Leftover]) -> tuple[int, int]:
    """Remove leftovers; (count, bytes) removed. One that cannot be removed raises StorageError."""
    from lensvault.store.linking import storage_error

    n = freed = 0
    for item in items:
        try:
            if os.path.isdir(item.path) and not os.path.islink(item.path):
                _rmtree_writable(item.path)
            else:
                os.unlink(item.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise storage_error(e, item.path) from e
        if item.record:
            try:
                os.unlink(item.record)
            except OSError:
                pass
        n += 1
        freed += item.bytes
    return n, freed


def _rmtree_writable(path: str) -> None:
    def again(func: Callable[[str], object], p: str, exc: object) -> None:
        # Read-only files (hardlinked objects keep 0o444) in a read-only folder: open the folder up.
        os.chmod(os.path.dirname(p), 0o755)
        func(p)

    if sys.version_info >= (3, 12):  # onerror is deprecated there
        shutil.rmtree(path, onexc=again)
    else:
        shutil.rmtree(path, onerror=again)


# -- checkout staging folders -----------------------------------------------------------------


@contextmanager
def staging_folder(records_dir: Path, parent: Path) -> Iterator[Path]:
    """A new hidden folder in ``parent`` for a checkout to fill, recorded in ``records_dir``
    while it exists. Yields its path; the caller renames it into place or removes it."""
    records_dir = Path(records_dir)
    # Short and fixed-length: the destination's own name may already be near NAME_MAX.
    path = Path(parent) / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    record = records_dir / f"{current()}-{path.name}.json"
    try:
        records_dir.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"path": str(path)}))
    except OSError as e:
        from lensvault.store.linking import storage_error

        _unlink_quietly(record)
        raise storage_error(e, str(record)) from e
    try:
        yield path
    finally:
        _unlink_quietly(record)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def staging_leftovers(records_dir: Path, grace_seconds: float) -> list[Leftover]:
    """Staging folders of checkouts whose process is gone (or, from another host, older than the grace period)."""
    out: list[Leftover] = []
    now = time.time()
    try:
        entries = list(os.scandir(records_dir))
    except OSError:
        return out
    for e in entries:
        if not e.name.endswith(".json"):
            continue
        try:
            age = now - e.stat().st_mtime
        except OSError:
            continue
        if not decide(_owner_of(e.name), age, grace_seconds):
            continue
        try:
            path = json.loads(Path(e.path).read_text())["path"]
        except (OSError, ValueError, KeyError, TypeError):
            # Its writer died while writing it (kill -9): the record is written before its folder
            # is made (staging_folder), so there is no folder to remove, and nothing else would
            # ever remove the record.
            out.append(Leftover(e.path, "staging record", _size(e.path), age))
            continue
        if not os.path.basename(str(path)).startswith(STAGING_PREFIX):
            continue  # never remove anything but a staging folder, whatever the record says
        out.append(Leftover(str(path), "staging folder", _size(path), age, record=e.path))
    return out
