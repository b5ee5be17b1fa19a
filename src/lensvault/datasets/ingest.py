"""Turn a folder into a files table whose every byte is in the store.

Hash what the stat cache does not know, sniff media types and image sizes from
the same read, store new content by the chosen link mode, and make sure no file
changed between being scanned and being stored. The per-file work runs in
worker processes (``lensvault.parallel``); with a hardlink or copy store each
worker also stores the file right after reading it (``store/staging.py``), so
every file is read once and walked once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from operator import itemgetter
from pathlib import Path

from lensvault.errors import InputError, LensVaultError
from lensvault.hashing import HEAD, read_small
from lensvault.media import sniff
from lensvault.parallel import MIN_ITEMS, ChunkMapper, ForkedCall, map_chunks
from lensvault.progress import NO_PROGRESS
from lensvault.state import stat_key
from lensvault.store.base import LinkMode

from lensvault.datasets import files_table
from lensvault.datasets.scan import PartialScanRefused, ScannedFile, scan_against, scan_iter

__all__ = ["KnownContent", "folder_oids", "ingest_folder", "ingested"]


# -- in a worker process ------------------------------------------------------------------


def _read_error(path: str, e: OSError) -> InputError:
    if isinstance(e, PermissionError):
        return InputError("a file cannot be read (permission denied)", where=path, fix="chmod u+r the file, or remove it")
    return InputError(f"a file cannot be read ({e.strerror})", where=path, fix="check the file and the disk")


def _hash_one(path: str, batch, want_media: bool):
    """(oid, size, media or None, staged temp path or None) of one file, read once."""
    tmp = None
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            data = read_small(fd)
            if data is not None:
                oid = hashlib.sha256(data).hexdigest()
                size = len(data)
                head = bytes(data[:HEAD]) if want_media else b""
                if batch is not None and batch.link is LinkMode.COPY:
                    tmp = batch.stage_bytes(oid, data)
            else:
                os.lseek(fd, 0, os.SEEK_SET)
                with open(fd, "rb", buffering=0, closefd=False) as f:
                    if batch is not None and batch.link is LinkMode.COPY:
                        oid, size, head, tmp = batch.stage_stream(f)
                    else:
                        h = hashlib.sha256()
                        size = 0
                        head = b""
                        while chunk := f.read(1 << 20):
                            head = head or chunk[:HEAD]
                            h.update(chunk)
                            size += len(chunk)
                        oid = h.hexdigest()
        finally:
            os.close(fd)
    except LensVaultError:
        raise  # writing the staged copy failed (a full disk): not the source file's fault
    except OSError as e:
        raise _read_error(path, e) from e
    return oid, size, (sniff(path, head) if want_media else None), tmp


def _ingest_part(batch, want_media: bool, part: list[tuple[str, str | None]]) -> list[tuple]:
    """Worker: for each (path, oid known from the stat cache or None) →
    (oid, size or None, media or None, stat after storing or None, temp path or None)."""
    out = []
    for path, oid in part:
        if oid is None:
            out.append(list(_hash_one(path, batch, want_media)))
        else:
            out.append([oid, None, None, None])  # to be linked only
    if batch is None:
        return [(o, n, m, None, t) for o, n, m, t in out]
    if batch.link is LinkMode.HARDLINK:
        # Pinned before linking: an old unreferenced object we link onto must
        # not be taken by a gc running before our version commits.
        batch.pin({r[0] for r in out})
        for (path, _), r in zip(part, out):
            batch.link_in(path, r[0])
    results = []
    for (path, _), (oid, size, media, tmp) in zip(part, out):
        try:
            st = os.stat(path)
            after = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except FileNotFoundError:
            after = None
        results.append((oid, size, media, after, tmp))
    return results


# -- in the caller --------------------------------------------------------------------------


def _run(files: list[ScannedFile], jobs: list[tuple[int, str | None]], batch, want_media: bool, progress, title: str):
    """Yield (job, result) for jobs (index into files, cached oid or None), part by part as workers finish."""
    work = [(files[i].path, oid) for i, oid in jobs]
    done = 0
    with progress.task(title, len(work)) as advance:
        for part in map_chunks(partial(_ingest_part, batch, want_media), work, on_done=advance):
            yield zip(jobs[done : done + len(part)], part)
            done += len(part)


def folder_oids(vault, folder: Path, *, progress=NO_PROGRESS, same_as: str | None = None) -> dict[str, str] | None:
    """The sha256 of every file under ``folder`` by relative path, reading only what the stat cache lacks.

    None if nothing changed since the folder's cache record and the record's
    files-table digest is ``same_as``: the folder holds exactly that table.
    Nothing is stored; the folder's cache record is updated if anything was read.
    """
    real = os.path.realpath(folder)
    index = vault.state.index(real)
    changed, same = _walk_in_two(folder, index, (vault.dir, vault.manifests_dir), trusted_roots(vault))
    unchanged = not changed and len(same) == len(index)
    if unchanged and same_as is not None and vault.state.index_digest(real) == same_as:
        return None
    oids = dict(zip(same, map(_OID, map(index.__getitem__, same))))  # C loops: ~3x a comprehension
    if unchanged:
        return oids
    jobs = [(i, None) for i in range(len(changed))]
    added = False
    for part in _run(changed, jobs, None, False, progress, "Hashing"):
        for (i, _), (oid, size, _, _, _) in part:
            f = changed[i]
            if size != f.st.st_size:
                raise _changed(f)
            oids[f.rel] = oid
            e = index.get(f.rel)
            added = added or e is None
            # Keep what is known of the media if the content did not change.
            media = e[5:] if e is not None and e[4] == oid else (None, None, None)
            index[f.rel] = (*f.key, oid, *media)
    gone = [rel for rel in index if rel not in oids] if len(index) != len(oids) else []
    for rel in gone:
        del index[rel]
    vault.state.save_index(real, dict(sorted(index.items())) if added else index,
                           changed=[f.rel for f in changed] + gone)
    return oids


_OID = itemgetter(4)


def trusted_roots(vault) -> tuple[str, ...]:
    """Folders a source folder's symlinks may lead into: the vault's own object store (a
    `checkout --link symlink` is all links there), whose objects are this vault's bytes."""
    root = getattr(vault.store, "root", None)
    return (os.path.realpath(root),) if root is not None else ()


def _walk_in_two(folder, index: dict, exclude, trusted: tuple[str, ...] = ()) -> tuple[list[ScannedFile], list[str]]:
    """``scan_against`` of a big folder by this process and a forked child, half the sub-folders each.

    The walk is a stat per file plus Python per entry, all under the GIL: two
    processes halve it. A symlinked folder (whose target one half cannot see the
    other half follow) sends it back to one whole walk.
    """
    if len(index) < 5000:
        return scan_against(folder, index, exclude_dirs=exclude, trusted=trusted)
    try:
        with ForkedCall(scan_against, folder, index, exclude_dirs=exclude, part=(1, 2), trusted=trusted) as other:
            changed, same = scan_against(folder, index, exclude_dirs=exclude, part=(0, 2), trusted=trusted)
            changed2, same2 = other.result()
    except PartialScanRefused:
        return scan_against(folder, index, exclude_dirs=exclude, trusted=trusted)
    changed += changed2
    changed.sort(key=lambda f: f.rel)
    return changed, same + same2


def _changed(f: ScannedFile) -> InputError:
    return InputError(
        "a file changed while it was being snapshotted",
        where=f.path,
        fix="wait for whatever is writing to the folder to finish, then run the command again",
    )


def _gone(path: str) -> InputError:
    return InputError(
        "a file disappeared while it was being snapshotted",
        where=path,
        fix="run the command again when the folder is not being changed",
    )


class KnownContent:
    """Content a committed version references, so it is in the store: that version's
    files-table digest, and its set of oids, made only when the digest cannot answer
    (reading a 50,000-file listing and checking every unchanged file against it is ~0.1 s)."""

    def __init__(self, digest: str | None = None, oids=None, load=None):
        self.digest = digest
        self._oids = None if oids is None else frozenset(oids)
        self._load = load

    def oids(self) -> frozenset:
        if self._oids is None:
            self._oids = frozenset(self._load()) if self._load else frozenset()
        return self._oids


def _known(known) -> KnownContent:
    if callable(known):
        known = known()
    return known if isinstance(known, KnownContent) else KnownContent(oids=known)


def _unstored(same: list[str], cached: dict, cached_digest: str | None, known: KnownContent) -> list[str]:
    """The unchanged files whose content no committed version is known to reference."""
    if not same or (cached_digest is not None and cached_digest == known.digest):
        # The folder's record is exactly the latest version's files table: all of it is stored.
        return []
    oids = known.oids()
    if oids.issuperset(map(_OID, map(cached.__getitem__, same))):  # one C-level pass
        return []
    return [rel for rel in same if cached[rel][4] not in oids]


@contextmanager
def ingested(vault, src: Path, **kwargs) -> Iterator[files_table.FileRows]:
    """``ingest_folder`` for a caller that goes on to commit a version: a background writer
    of the files table that the commit never collected (a refused version, an error) is
    waited for on the way out, so no child process outlives the call."""
    rows = ingest_folder(vault, src, **kwargs)
    try:
        yield rows
    finally:
        rows.abandon_store()  # a no-op once the commit has collected the writer


def ingest_folder(vault, src: Path, *, link: LinkMode | str = LinkMode.AUTO, progress=NO_PROGRESS,
                  known=frozenset()) -> files_table.FileRows:
    """The files table of ``src`` (as ``FileRows``), with every byte in the store.

    ``known`` is content an existing version already references (so it is in the
    store): a ``KnownContent`` or a set of oids, or a function returning either,
    called while the folder is scanned. Those files are neither stored again nor
    re-checked.
    """
    folder = os.path.realpath(src)
    link = LinkMode(link)
    store = vault.store
    state = vault.state
    cached = state.index(folder)
    cached_digest = state.index_digest(folder)
    batch = store.ingest_batch(link)
    hardlink = batch is not None and batch.link is LinkMode.HARDLINK
    files: list[ScannedFile] = []
    same: list[str] = []
    # Read: what the cache does not know and, when copying, what must be stored
    # anyway. Hardlink mode links a cached-but-unstored file without reading it.
    jobs: list[tuple[int, str | None]] = []
    put: list[int] = []  # no batch: stored after hashing, by put_files
    staged = []
    exclude = (vault.dir, vault.manifests_dir)
    trusted = trusted_roots(vault)
    try:
        with ChunkMapper(partial(_ingest_part, batch, True)) as mapper:
            if cached:
                # A folder seen before: mostly unchanged, so the walk is the work. It runs
                # in a child process while this one answers ``known`` (opening the catalog
                # holds the GIL for ~0.3 s: a thread would only take turns with the walk).
                with ForkedCall(scan_against, src, cached, exclude_dirs=exclude, need_media=True,
                                trusted=trusted) as walk:
                    known = _known(known)
                    found, same = walk.result()
                if len(found) >= MIN_ITEMS:
                    # Worker processes will hash for a while: import pyarrow for the new
                    # files table meanwhile. For a few changed files the table is written
                    # by a forked child instead (see the end), which needs no thread here.
                    files_table.prefetch()
                jobs.extend((j, None) for j in range(len(found)))
                files.extend(found)
                mapper.feed([(f.path, None) for f in found])
            else:
                # A new folder: workers start on the first sub-folders while the walk goes on.
                for found in scan_iter(src, cached, same, exclude_dirs=exclude, need_media=True, trusted=trusted):
                    if not files:
                        files_table.prefetch()
                    jobs.extend((len(files) + j, None) for j in range(len(found)))
                    files.extend(found)
                    mapper.feed([(f.path, None) for f in found])
                known = _known(known)  # the catalog opens while the workers still hash
            extra = []
            for rel in _unstored(same, cached, cached_digest, known):
                oid = cached[rel][4]
                path = f"{folder}/{rel}"
                try:
                    files.append(ScannedFile(rel, path, os.lstat(path)))
                except FileNotFoundError:
                    raise _gone(path) from None
                i = len(files) - 1
                if hardlink:
                    extra.append((i, oid))
                elif batch is not None:
                    extra.append((i, None))
                else:
                    put.append(i)
            jobs.extend(extra)
            mapper.feed([(files[i].path, oid) for i, oid in extra])
            n = len(files)
            oids: list = [None] * n
            media: list = [None] * n
            keys: list = [f.key for f in files]  # refreshed below where storing moved a ctime
            for i in range(n):
                e = cached.get(files[i].rel)
                if e is not None and e[:4] == files[i].key and e[5] is not None:
                    oids[i], media[i] = e[4], e[5:]
            title = "Hashing" if batch is None else "Hashing and storing"
            done = 0
            with progress.task(title, len(jobs)) as advance:
                for part in mapper.results(advance):
                    for (i, _), (oid, size, m, after, tmp) in zip(jobs[done : done + len(part)], part):
                        f = files[i]
                        if size is not None and size != f.st.st_size:
                            raise _changed(f)
                        if tmp:
                            staged.append((tmp, oid))
                        oids[i] = oid
                        if m is not None:
                            media[i] = m
                        if batch is None:
                            if oid not in known.oids():
                                put.append(i)
                            continue
                        # Re-stat after storing: the file must be the one scanned; hardlinking
                        # and chmod move ctime, so the cache key is refreshed (else the next
                        # snapshot would re-hash everything).
                        if after is None:
                            raise _gone(f.path)
                        if after[0] != f.st.st_ino or after[1] != f.st.st_size or after[2] != f.st.st_mtime_ns:
                            raise _changed(f)
                        keys[i] = after
                    done += len(part)
        if batch is not None:
            batch.commit([oids[i] for i, _ in jobs], staged)
    except BaseException:
        if batch is not None:
            batch.abort()  # after the workers have stopped (the mapper's exit waits for them)
        raise
    if batch is None and put:
        put = sorted(set(put))
        with progress.task("Storing", len(put)) as advance:
            store.put_files([(files[i].path, oids[i]) for i in put], link, on_done=advance)
        for i in put:
            keys[i] = _recheck(files[i])
    if not files and len(same) == len(cached):
        # Nothing changed, nothing added or removed: the record is the table (saved sorted).
        return files_table.FileRows.from_index(cached, digest=cached_digest)
    # The folder's new cache record: the old one (sorted), updated in place, so
    # that only added paths make it re-sort and only removed ones make it filter.
    index = dict(cached)
    added = False
    for f, k, o, m in zip(files, keys, oids, media):
        if not added and f.rel not in index:
            added = True
        index[f.rel] = (*k, o, *m)
    changed = {f.rel for f in files}
    if len(same) + len(changed) != len(index):  # some cached paths are gone
        present = set(same)
        present.update(changed)
        changed.update(rel for rel in index if rel not in present)
        index = {rel: e for rel, e in index.items() if rel in present}
    if added:
        index = dict(sorted(index.items()))
    rows = files_table.FileRows.from_index(index)
    # The new files table goes to the store from a child while this process saves
    # the cache record and the caller describes the version (see FileRows).
    rows.store_in_background(store)
    state.save_index(folder, index, changed=changed, digest=rows.digest())
    return rows


def _recheck(f: ScannedFile) -> tuple:
    """The stat key of a stored file, refusing if it changed after the scan (links and chmod move ctime only)."""
    try:
        st = os.stat(f.path)
    except FileNotFoundError:
        raise _gone(f.path) from None
    if st.st_size != f.st.st_size or st.st_mtime_ns != f.st.st_mtime_ns or st.st_ino != f.st.st_ino:
        raise _changed(f)
    return stat_key(st)
