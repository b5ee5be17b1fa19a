"""The per-file work of an ingest: read a file once, hash it, sniff its media, and store it
(link or stage a copy) in a worker process; and the checks the caller makes of each answer
against the walk, with the errors they raise. Shared by ``ingest`` (a folder seen before)
and ``new_folder`` (a folder streamed into its first version)."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypeAlias

from lensvault.errors import InputError, LensVaultError
from lensvault.hashing import HEAD, hash_stream, read_small
from lensvault.media import sniff
from lensvault.state import racy, unsure
from lensvault.store.base import LinkMode

if TYPE_CHECKING:
    from lensvault.datasets.scan import ScannedFile
    from lensvault.state import StatKey
    from lensvault.store.base import ObjectKey

__all__ = ["Batch", "Ingested", "Media", "Staged", "changed_error", "check_stored", "gone_error", "hash_one",
           "ingest_part", "interned", "read_error", "recorded_key", "settled_link"]

# A staged copy: (temp path, the new object's key for store/verified.py).
Staged: TypeAlias = "tuple[str, ObjectKey]"


class Batch(Protocol):
    """What ingest uses of the batch ``local_links.ingest_batch`` returns (a store backend's own
    class, so named here by what it does)."""

    @property
    def link(self) -> LinkMode: ...
    def pin(self, oids: Iterable[str]) -> None: ...
    def link_in(self, path: str, oid: str, size: int | None = None) -> None: ...
    def stage_bytes(self, oid: str, data: bytes | bytearray | memoryview) -> Staged | None: ...
    def stage_stream(self, f: BinaryIO, chunk: int = ...) -> tuple[str, int, bytes, Staged | None]: ...
    def commit(self, oids: Iterable[str], staged: list[tuple[str, str]]) -> None: ...
    def abort(self) -> None: ...


# (media type, width, height) of a file, as media.sniff tells it (a stat-cache entry that knows only
# the hash has None for all three)
Media: TypeAlias = tuple[str | None, int | None, int | None]
# A worker's answer for one file: (oid, size or None, media or None, stat after storing or None,
# staged copy or None, stat once read or None); see ingest_part.
Ingested: TypeAlias = tuple[str, int | None, "Media | None", "StatKey | None", "Staged | None", "StatKey | None"]





def read_error(path: str, e: OSError) -> InputError:
    if isinstance(e, PermissionError):
        return InputError("a file cannot be read (permission denied)", where=path, fix="chmod u+r the file, or remove it")
    return InputError(f"a file cannot be read ({e.strerror})", where=path, fix="check the file and the disk")


def hash_one(path: str, batch: Batch | None, want_media: bool
              ) -> tuple[str, int, Media | None, Staged | None, StatKey | None]:
    """(oid, size, media or None, staged or None, stat key once read or None) of one file, read once.

    ``staged`` (copy mode, new content): (temp path, the new object's key for store/verified.py).

    The key once read is taken in hardlink mode only: linking moves the ctime, so the
    stat after storing cannot tell a rewrite during the read (mtime restored, as
    ``cp -p`` or ``rsync --inplace`` do) from our own link; a stat of the open file
    right after the read can.
    """
    tmp: Staged | None = None
    read_key: StatKey | None = None
    copy = batch is not None and batch.link is LinkMode.COPY
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            data = read_small(fd)
            if data is not None:
                oid = hashlib.sha256(data).hexdigest()
                size = len(data)
                head = bytes(data[:HEAD]) if want_media else b""
                if batch is not None and copy:
                    tmp = batch.stage_bytes(oid, data)  # (path, key) or None
            else:
                os.lseek(fd, 0, os.SEEK_SET)
                with open(fd, "rb", buffering=0, closefd=False) as f:
                    if batch is not None and copy:
                        oid, size, head, tmp = batch.stage_stream(f)
                    else:
                        read = hash_stream(f)
                        oid, size, head = read.oid, read.size, read.head
            if batch is not None and not copy:  # hardlink
                st = os.fstat(fd)
                read_key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        finally:
            os.close(fd)
    except LensVaultError:
        raise  # writing the staged copy failed (a full disk): not the source file's fault
    except OSError as e:
        raise read_error(path, e) from e
    return oid, size, (sniff(path, head) if want_media else None), tmp, read_key


def ingest_part(batch: Batch | None, want_media: bool, part: list[tuple[str, str | None]]) -> list[Ingested]:
    """Worker: for each (path, oid known from the stat cache or None) →
    (oid, size or None, media or None, stat after storing or None, stored, stat once read or None).

    ``stored``: (temp path, key) for a new object staged by copy, else None.
    """
    out: list[tuple[str, int | None, Media | None, Staged | None, StatKey | None]] = []
    for path, oid in part:
        if oid is None:
            out.append(hash_one(path, batch, want_media))
        else:
            out.append((oid, None, None, None, None))  # to be linked only
    if batch is None:
        return [(o, n, m, None, t, k) for o, n, m, t, k in out]
    if batch.link is LinkMode.HARDLINK:
        # Pinned before linking: an old unreferenced object we link onto must
        # not be taken by a gc running before our version commits.
        batch.pin({r[0] for r in out})
        for (path, _), r in zip(part, out):
            batch.link_in(path, r[0], r[1])
    results: list[Ingested] = []
    for (path, _), (oid, size, media, tmp, read_key) in zip(part, out):
        try:
            st = os.stat(path)
            after: StatKey | None = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except FileNotFoundError:
            after = None
        results.append((oid, size, media, after, tmp, read_key))
    return results


def changed_error(f: ScannedFile) -> InputError:
    return InputError(
        "a file changed while it was being snapshotted",
        where=f.path,
        fix="wait for whatever is writing to the folder to finish, then run the command again",
    )

def gone_error(path: str) -> InputError:
    return InputError(
        "a file disappeared while it was being snapshotted",
        where=path,
        fix="run the command again when the folder is not being changed",
    )

def interned(m: Media) -> Media:
    return (sys.intern(m[0]), m[1], m[2]) if m[0] is not None else m


def check_stored(f: ScannedFile, size: int | None, after: StatKey | None, read_key: StatKey | None,
                 hardlink: bool) -> StatKey:
    """The file's stat key once a worker stored it, refusing if it is not the file the walk saw.

    Copy mode leaves the source alone, so the whole key must match (a rewrite that restored
    the mtime still moved the ctime); hardlinking and chmod move the ctime, so there the key
    taken right after the read is compared whole, and the key after storing is the one to
    keep (else the next snapshot would re-hash everything).
    """
    if size is not None and size != f.size:
        raise changed_error(f)
    if after is None:
        raise gone_error(f.path)
    key = f.key
    if read_key is not None and read_key != key:
        raise changed_error(f)
    if after[0] != key[0] or after[1] != key[1] or after[2] != key[2] or (not hardlink and after[3] != key[3]):
        raise changed_error(f)
    return after


def recorded_key(key: StatKey, hardlink: bool, seen: int, settled: int) -> StatKey:
    """The key a stat-cache entry records for a file stored just now: marked unsure (``state.unsure``)
    when a timestamp is racy against ``seen`` (the moment before the walk's first stat; timestamps
    up to ``settled`` never are). A hardlink moved the ctime itself, so only the mtime counts there."""
    if (key[2] > settled or (not hardlink and key[3] > settled)) and racy(key, seen, ctime=not hardlink):
        return unsure(key)
    return key


def settled_link(key: StatKey, seen: int, settled: int) -> bool:
    """Whether a file hardlinked into the store just now, read and hashed, may be recorded as a verified
    object (``store/verified.py``): its mtime is not racy, so a later write would move it."""
    return key[2] <= settled or not racy(key, seen, ctime=False)
