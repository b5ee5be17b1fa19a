"""Turn a folder into a files table whose every byte is in the store.

Hash what the stat cache does not know, sniff media types and image sizes from
the same read, store new content by the chosen link mode, and make sure no file
changed between being scanned and being stored. The per-file work runs in
worker processes (``lensvault.parallel``); with a hardlink or copy store each
worker also stores the file right after reading it (``store/staging.py``), so
every file is read once and walked once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from lensvault.datasets import files_table
from lensvault.datasets.ingest_worker import (
    Batch,
    Ingested,
    Media,
    changed_error,
    check_stored,
    gone_error,
    ingest_part,
    interned,
    read_error,
    recorded_key,
    settled_link,
)
from lensvault.datasets.record_scan import RecordScan, lost_objects, scan_record
from lensvault.datasets.scan import ScannedFile, scan_iter
from lensvault.errors import InputError
from lensvault.hashing import HEAD
from lensvault.media import sniff
from lensvault.parallel import MIN_ITEMS, ChunkMapper, ForkedCall, map_chunks
from lensvault.progress import NO_PROGRESS
from lensvault.state import stat_key
from lensvault.store import local_links
from lensvault.store.base import LinkMode

if TYPE_CHECKING:
    from lensvault.folder_record import FolderRecord
    from lensvault.progress import Progress
    from lensvault.state import Entry, StatKey
    from lensvault.store.base import ObjectKey, ObjectStore
    from lensvault.vault import Vault

_Mapper: TypeAlias = "ChunkMapper[tuple[str, str | None], Ingested]"
# What ``known`` may be (see ingest_folder).
_Known: TypeAlias = "KnownContent | Iterable[str] | Callable[[], KnownContent | Iterable[str]]"

__all__ = ["KnownContent", "hash_files", "ingest_folder", "ingested"]


def _media_of(f: ScannedFile) -> tuple[str, int | None, int | None]:
    """The media of a file stored without being read here (its object known from the stat
    cache) whose cache entry no longer vouches for its media: its stat moved since (a hard
    link made to the same inode by this very ingest moves the ctime) or it never had any.
    A file's media is a function of its bytes, so the first bytes decide, as for any file."""
    try:
        with open(f.path, "rb") as fh:
            return sniff(f.path, fh.read(HEAD))
    except FileNotFoundError:
        raise gone_error(f.path) from None
    except OSError as e:
        raise read_error(f.path, e) from e


# -- in the caller --------------------------------------------------------------------------


def _run(files: list[ScannedFile], jobs: list[tuple[int, str | None]], batch: Batch | None, want_media: bool,
         progress: Progress, title: str) -> Iterator[Iterator[tuple[tuple[int, str | None], Ingested]]]:
    """Yield (job, result) for jobs (index into files, cached oid or None), part by part as workers finish."""
    work = [(files[i].path, oid) for i, oid in jobs]
    done = 0
    with progress.task(title, len(work)) as advance:
        for part in map_chunks(partial(ingest_part, batch, want_media), work, on_done=advance):
            yield zip(jobs[done : done + len(part)], part)
            done += len(part)


def hash_files(files: list[ScannedFile], progress: Progress = NO_PROGRESS) -> list[str]:
    """The sha256 of each file, read by worker processes; nothing is stored. A file whose size
    is not the walk's changed while it was read: an error, as in a snapshot."""
    jobs: list[tuple[int, str | None]] = [(i, None) for i in range(len(files))]
    oids: list[str] = [""] * len(files)
    for part in _run(files, jobs, None, False, progress, "Hashing"):
        for (i, _), (oid, size, _, _, _, _) in part:
            if size != files[i].size:
                raise changed_error(files[i])
            oids[i] = oid
    return oids


_OID = itemgetter(4)


def trusted_roots(vault: Vault) -> tuple[str, ...]:
    """Folders a source folder's symlinks may lead into: the vault's own object store (a
    `checkout --link symlink` is all links there), whose objects are this vault's bytes."""
    return local_links.trusted_roots(vault.store)


def ingest_link(link: LinkMode | str) -> LinkMode:
    """How a snapshot stores files: every mode but symlink, which is refused (a store object that
    points back into the user's folder would change with it, and would not be content-addressed)."""
    link = LinkMode(link)
    if link is LinkMode.SYMLINK:
        from lensvault.errors import UsageError

        raise UsageError(
            "a snapshot cannot store files as symlinks (the stored object would be the folder's file "
            "itself, and change with it)",
            where="--link symlink",
            fix="use --link hardlink to share the bytes without a copy, or auto, reflink or copy; "
                "`--link symlink` is for checkouts",
        )
    return link


# Files changed or gone in a folder seen before, at most, for a snapshot to work on the changes
# alone (each is held with its old entry, then read): past it the folder is read whole as a
# stream (``new_folder``), which reads the unchanged files again too but holds nothing per file.
CHANGED_HELD = 262_144


class _ReadWhole(Exception):
    """The walk found more than ``CHANGED_HELD`` files changed: read the folder as a stream."""

    def __init__(self, known: KnownContent) -> None:
        self.known = known


class KnownContent:
    """Content a committed version references, so it is in the store: that version's
    files-table digest, and its set of oids, made only when the digest cannot answer
    (reading a 50,000-file listing and checking every unchanged file against it is ~0.1 s)."""

    def __init__(self, digest: str | None = None, oids: Iterable[str] | None = None,
                 load: Callable[[], Iterable[str]] | None = None, table: dict[str, Any] | None = None) -> None:
        self.digest = digest
        self._oids = None if oids is None else frozenset(oids)
        self._load = load
        # That version's files table as its manifest describes it ({"oid", "digest", "rows",
        # "bytes", "media_types"}), if known: an unchanged folder's table is then that one.
        self.table = table

    def oids(self) -> frozenset[str]:
        if self._oids is None:
            self._oids = frozenset(self._load()) if self._load else frozenset()
        return self._oids


def _known(known: _Known) -> KnownContent:
    if callable(known):
        known = known()
    return known if isinstance(known, KnownContent) else KnownContent(oids=known)


def _to_store(same: list[str], cached: dict[str, Entry], cached_digest: str | None, known: KnownContent) -> list[str]:
    """The unchanged files whose content no committed version is known to reference."""
    if not same or (cached_digest is not None and cached_digest == known.digest):
        # The folder's record is exactly the latest version's files table: all of it is referenced.
        return []
    oids = known.oids()
    if oids.issuperset(map(_OID, map(cached.__getitem__, same))):  # one C-level pass
        return []
    return [rel for rel in same if cached[rel][4] not in oids]


def _restore_lost(store: ObjectStore, folder: str, cached: dict[str, Entry], lost: list[str], storing: set[str]
                  ) -> list[str]:
    """Store the unchanged files whose object the store lost (or holds with another size) again,
    from the folder, hash-checked (``store.restore``); those about to be stored anyway are left
    to that. Returns the ones whose bytes no longer hash to their cached oid."""
    changed = []
    for rel in lost:
        if rel in storing:
            continue
        if not store.restore(cached[rel][4], f"{folder}/{rel}"):
            changed.append(rel)
    return changed


@contextmanager
def ingested(vault: Vault, src: Path, **kwargs: Any) -> Iterator[files_table.FileRows]:
    """``ingest_folder`` for a caller that goes on to commit a version: a background writer
    of the files table that the commit never collected (a refused version, an error) is
    waited for on the way out, so no child process outlives the call."""
    rows = ingest_folder(vault, src, **kwargs)
    try:
        yield rows
    finally:
        rows.abandon_store()  # a no-op once the commit has collected the writer


def ingest_folder(vault: Vault, src: Path, *, link: LinkMode | str = LinkMode.AUTO, progress: Progress = NO_PROGRESS,
                  known: _Known = frozenset(), rows_needed: bool = True) -> files_table.FileRows:
    """The files table of ``src`` (as ``FileRows``), with every byte in the store.

    ``known`` is content an existing version already references (so it is in the
    store): a ``KnownContent`` or a set of oids, or a function returning either,
    called while the folder is scanned. Those files are not stored again; the store
    is still asked whether it holds them (existence and size), and what it lacks is
    stored again from the folder.
    """
    ingest = _FolderIngest(vault, src, ingest_link(link), progress)
    ingest.rows_needed = rows_needed
    return ingest.run(known)


class _FolderIngest:
    """One folder's ingest, in its steps: **plan** what to read (the walk: changed files; the
    unchanged ones whose object the store lost; those no version references yet), fed to
    worker processes as it is found; **execute** (the workers hash, and store or link, each
    file; their results are checked against the walk); **reconcile** (what was not stored by
    the workers is stored; media the cache cannot vouch for is read); **record** (the
    folder's new stat-cache record and the files table).

    ``files[i]`` is a file read or stored by this ingest and ``jobs`` the workers' tasks
    (index into ``files``, the oid already known from the cache or None); ``oids``,
    ``media`` and ``keys`` are per file of ``files``.
    """

    def __init__(self, vault: Vault, src: Path, link: LinkMode, progress: Progress) -> None:
        self.vault, self.src, self.progress = vault, src, progress
        self.folder = os.path.realpath(src)
        self.link = link
        self.store = vault.store
        # The folder's stat-cache record, read a chunk at a time by the walk; loaded whole
        # (``cached``) only when something changed.
        self.record = vault.state.open_index(self.folder)
        # Before any object is stored or found: if none leaves the store until the commit, the
        # commit need not look for each (``LocalObjectStore.committing``).
        self.since = self.store.deletion_mark()
        self.cached: dict[str, Entry] = {}
        self.cached_digest: str | None = None
        self.rows_needed = True  # False: an unchanged folder may come back as its known table (SameTable)
        self.same_table: files_table.FileRows | None = None
        # Changes only (see ``_changes_only``): ``cached`` holds the old entries of what changed,
        # ``gone`` the paths no longer there; the rest is read from ``record`` again at the end.
        self.changes_only = False
        self.base_table: str | None = None  # changes only: the oid of the files table the record is
        self.gone: list[str] = []
        self.batch = local_links.ingest_batch(self.store, link)
        self.hardlink = self.batch is not None and self.batch.link is LinkMode.HARDLINK
        self.files: list[ScannedFile] = []
        self.same: list[str] = []  # unchanged paths (the cache knows their content)
        self.lost: list[str] = []  # unchanged paths whose object the store lacks (or holds damaged)
        # Read: what the cache does not know and, when copying, what must be stored
        # anyway. Hardlink mode links a cached-but-unstored file without reading it.
        self.jobs: list[tuple[int, str | None]] = []
        self.put: list[int] = []  # no batch: stored after hashing, by put_files
        self.staged: list[tuple[str, str]] = []  # (temp path, oid) of objects staged by copy
        self.learned: dict[str, ObjectKey] = {}  # oid → key of objects whose bytes this ingest hashed (store/verified.py)
        self.oids: list[str | None] = []  # (both filled for every file by the end)
        self.media: list[Media | None] = []
        self.keys: list[StatKey] = []
        self.seen = time.time_ns()  # before any stat of the walk: the moment the racy rule measures from
        self.settled = self.seen - 2_000_000_000  # timestamps up to this are never racy (state.racy's largest tick)

    def run(self, known: _Known) -> files_table.FileRows:
        try:
            rows = self._run(known)
            rows.since = self.since
            return rows
        finally:
            if self.record is not None:
                self.record.close()

    def _run(self, known: _Known) -> files_table.FileRows:
        batch = self.batch
        if self.record is None and batch is not None and not self.rows_needed:
            return self._stream(batch, known)  # a new folder into a local store
        try:
            with ChunkMapper(partial(ingest_part, batch, True)) as mapper:
                known = self._walk(mapper, known)
                if self.same_table is not None:  # unchanged, and exactly the latest version's table
                    if batch is not None:
                        batch.commit([], [])
                    return self.same_table
                self._plan_unchanged(mapper, known)
                self._execute(mapper)
            if batch is not None:
                batch.commit(cast("list[str]", [self.oids[i] for i, _ in self.jobs]), self.staged)
                self.vault.verified.add(self.learned)
                self.learned = {}  # recorded: not held (a key per file) while the table is built
        except _ReadWhole as whole:  # (nothing was fed to the workers or stored yet)
            assert batch is not None  # (see _walk)
            return self._stream(batch, whole.known)
        except BaseException:
            if batch is not None:
                batch.abort()  # after the workers have stopped (the mapper's exit waits for them)
            raise
        self._store_the_rest()
        return self._record()

    def _stream(self, batch: Batch, known: _Known) -> files_table.FileRows:
        """The folder read whole as a stream, in memory bounded whatever its size (``new_folder``): a
        new folder, or one in which more than ``CHANGED_HELD`` files changed (every file is read
        again then, where the changes would have been held per file)."""
        from lensvault.datasets.new_folder import ingest_new_folder

        return ingest_new_folder(self.vault, self.src, batch, self.progress,
                                 exclude_dirs=(self.vault.dir, self.vault.manifests_dir),
                                 trusted=trusted_roots(self.vault), meanwhile=lambda: _known(known))

    # -- plan -------------------------------------------------------------------------------------
    def _walk(self, mapper: _Mapper, known: _Known) -> KnownContent:
        """Find the changed and new files and hand them to the workers; ``known`` answered meanwhile."""
        store, record = self.store, self.record
        exclude = (self.vault.dir, self.vault.manifests_dir)
        trusted = trusted_roots(self.vault)
        if record is not None:
            # A folder seen before: mostly unchanged, so the walk is the work. It runs
            # in a child process while this one answers ``known`` (opening the catalog
            # holds the GIL for ~0.3 s: a thread would only take turns with the walk).
            # The walk is merged with the record in path order, a chunk of it at a time,
            # and asks the store for the unchanged files' objects a chunk at a time too.
            local = store.local() is not None
            streams = self.batch is not None and not self.rows_needed
            with ForkedCall(scan_record, self.src, record, exclude_dirs=exclude, trusted=trusted, need_media=True,
                            store=store if local else None, hardlink=self.hardlink,
                            changed_up_to=CHANGED_HELD if streams else None) as walk:
                answered = _known(known)
                scanned = walk.result()
            if scanned.too_many:
                raise _ReadWhole(answered)
            if scanned.lost is None:  # (a store without local files is asked here, not in a child)
                scanned.lost = lost_objects(store, record, scanned, self.hardlink)
            whole = not (scanned.damaged or record.damaged) and record.digest is not None
            if not self.rows_needed and whole and record.digest == answered.digest:
                # The record is the latest version's table (what a snapshot leaves behind).
                if scanned.unchanged and not scanned.lost and _describes(answered.table, record.digest):
                    self.same_table = files_table.SameTable(cast("dict[str, Any]", answered.table), store)
                    return answered
                self._changes_only(scanned)
                if _describes(answered.table, record.digest):
                    self.base_table = cast("dict[str, Any]", answered.table)["oid"]
            else:  # the rest of the ingest works on the record as a dict
                self.cached = dict(record.items())
                self.cached_digest = record.digest if whole and not record.damaged else None
                moved = {f.rel for f, _ in scanned.changed}
                moved.update(rel for rel, _ in scanned.gone)
                self.same = [rel for rel in self.cached if rel not in moved]
                self.lost = [rel for rel, _ in scanned.lost]
            found = [f for f, _ in scanned.changed]
            if len(found) >= MIN_ITEMS:
                # Worker processes will hash for a while: import pyarrow for the new
                # files table meanwhile. For a few changed files the table is written
                # by a forked child instead (see the end), which needs no thread here.
                files_table.prefetch()
            self._read(mapper, found)
            return answered
        # A new folder: workers start on the first sub-folders while the walk goes on.
        for found in scan_iter(self.src, self.cached, self.same, exclude_dirs=exclude, need_media=True,
                               trusted=trusted):
            if not self.files:
                files_table.prefetch()
            self._read(mapper, found)
        return _known(known)  # the catalog opens while the workers still hash

    def _changes_only(self, scanned: RecordScan) -> None:
        """Work on what changed alone: every unchanged file's content is the latest version's (the
        record is its table), so nothing of it needs storing but what the store lost, and the new
        table is the record with the changes merged in, read again a chunk at a time at the end."""
        self.changes_only = True
        self.cached = {f.rel: e for f, e in scanned.changed if e is not None}
        self.cached.update(cast("list[tuple[str, Entry]]", scanned.lost))
        self.cached_digest = cast("FolderRecord", self.record).digest
        self.gone = [rel for rel, _ in scanned.gone]
        self.lost = [rel for rel, _ in cast("list[tuple[str, Entry]]", scanned.lost)]

    def _read(self, mapper: _Mapper, found: list[ScannedFile]) -> None:
        """Give the workers ``found`` to read (hash, and store or link)."""
        self.jobs.extend((len(self.files) + j, None) for j in range(len(found)))
        self.files.extend(found)
        mapper.feed([(f.path, None) for f in found])

    def _plan_unchanged(self, mapper: _Mapper, known: KnownContent) -> None:
        """The unchanged files that must be stored after all: those whose object the store
        lost (stored again from the folder, or read again if their bytes changed) and those
        no committed version references yet."""
        cached, folder = self.cached, self.folder
        to_store = _to_store(self.same, cached, self.cached_digest, known)
        for rel in _restore_lost(self.store, folder, cached, self.lost, set(to_store)):
            # Its bytes are not what the cache says any more: read it like a changed file.
            self._read(mapper, [_rescan(folder, rel)])
        extra: list[tuple[int, str | None]] = []
        for rel in to_store:
            self.files.append(_rescan(folder, rel))
            i = len(self.files) - 1
            if self.hardlink:
                extra.append((i, cached[rel][4]))
            elif self.batch is not None:
                extra.append((i, None))
            else:
                self.put.append(i)
        self.jobs.extend(extra)
        mapper.feed([(self.files[i].path, oid) for i, oid in extra])

    # -- execute ----------------------------------------------------------------------------------
    def _execute(self, mapper: _Mapper) -> None:
        """Collect the workers' results, checking each against the walk."""
        files, cached, jobs = self.files, self.cached, self.jobs
        n = len(files)
        oids: list[str | None] = [None] * n
        media: list[Media | None] = [None] * n
        keys: list[StatKey] = [f.key for f in files]  # refreshed below where storing moved a ctime
        for i in range(n):
            e = cached.get(files[i].rel)
            if e is not None and e[:4] == files[i].key and e[5] is not None:
                oids[i], media[i] = e[4], e[5:]
        self.oids, self.media, self.keys = oids, media, keys
        batch, hardlink, seen, settled = self.batch, self.hardlink, self.seen, self.settled
        staged, learned, put = self.staged, self.learned, self.put
        title = "Hashing" if batch is None else "Hashing and storing"
        # Each worker's answer comes unpickled as new objects: one (media type, width,
        # height) per distinct value is kept, not one per file (most images of a dataset
        # share a few sizes; ~100 B a file otherwise).
        shared: dict[Media, Media] = {}
        done = 0
        with self.progress.task(title, len(jobs)) as advance:
            for part in mapper.results(advance):
                for (i, _), (oid, size, m, after, stored, read_key) in zip(jobs[done : done + len(part)], part):
                    f = files[i]
                    if size is not None and size != f.size:
                        raise changed_error(f)
                    if stored is not None:
                        staged.append((stored[0], oid))
                        learned[oid] = stored[1]
                    oids[i] = oid
                    if m is not None:
                        media[i] = shared.get(m) or shared.setdefault(m, interned(m))
                    if batch is None:
                        put.append(i)  # put_files skips what the store holds intact
                        continue
                    keys[i] = after = check_stored(f, size, after, read_key, hardlink)
                    if hardlink and size is not None and settled_link(after, seen, settled):
                        learned[oid] = (after[0], after[1], after[2])  # read and hashed just now; the file is the object
                done += len(part)

    # -- reconcile --------------------------------------------------------------------------------
    def _store_the_rest(self) -> None:
        """Without a batch (a store that is not local files), store what was hashed, then take
        each file's key again (storing may have moved its ctime)."""
        if self.batch is not None or not self.put:
            return
        files, put = self.files, sorted(set(self.put))
        with self.progress.task("Storing", len(put)) as advance:
            local_links.put_files(self.store, cast("list[tuple[str, str]]", [(files[i].path, self.oids[i]) for i in put]),
                                  self.link,
                                  on_done=advance)
        for i in put:
            self.keys[i] = _recheck(files[i])

    # -- record -----------------------------------------------------------------------------------
    def _record(self) -> files_table.FileRows:
        """The files table, and the folder's new cache record (saved)."""
        files, cached, same = self.files, self.cached, self.same
        damaged = _damaged_through_links(self.store, files, self.oids, cached)
        if self.changes_only:
            return self._record_changes(damaged)
        if not files and len(same) == len(cached):
            # Nothing changed, nothing added or removed: the record is the table (saved sorted).
            rows = files_table.FileRows.from_index(cached, digest=self.cached_digest)
            rows.fresh = frozenset()  # (what ``restore`` stored again it pinned first)
            return rows
        del files
        index, changed = self._new_index()
        # What this ingest stored or found in the store, as opposed to what a committed version
        # references: the commit checks that these are still there (under the gc lock).
        fresh = frozenset(cast("list[str]", self.oids))
        # The index now holds what the per-file lists did: let them go before the files
        # table is built (and forked off to be written) beside it.
        self.files, self.oids, self.media, self.keys, self.jobs = [], [], [], [], []
        rows = files_table.FileRows.from_index(index)
        rows.fresh = fresh
        rows.damaged = damaged
        # The new files table goes to the store from a child while this process saves
        # the cache record and the caller describes the version (see FileRows).
        rows.store_in_background(self.store)
        self.vault.state.save_index(self.folder, index, changed=changed, digest=rows.digest())
        return rows

    def _record_changes(self, damaged: list[files_table.DamagedFile]) -> files_table.FileRows:
        """``_record`` of a changes-only ingest: the files table written as the record merged with
        the changes is read (``SpooledRows``), and the changes saved to the record."""
        from lensvault.state import merged_entries

        record = cast("FolderRecord", self.record)
        changes: dict[str, Entry | None] = dict.fromkeys(self.gone)
        changes.update(self._new_entries())
        fresh = frozenset(cast("list[str]", self.oids))
        self.files, self.oids, self.media, self.keys, self.jobs = [], [], [], [], []
        merged = merged_entries(record.items(), sorted(changes.items()))
        if record.count + len(changes) <= files_table.SPOOL_FROM:
            # A small table: its rows in memory (bounded by SPOOL_FROM), written by a forked child
            # while this process saves the record and describes the version (the faster way).
            small = files_table.FileRows.from_index(dict(merged))
            if record.damaged:
                raise InputError("the folder's stat cache could not be read again", where=self.folder,
                                 fix="run the snapshot again (check the disk if this repeats)")
            small.fresh, small.damaged = fresh, damaged
            small.store_in_background(self.store)
            self.vault.state.save_changes(self.folder, record, changes, small.digest(), small.num_rows)
            return small
        if self.base_table is not None:
            made = self._merged_table(record, changes, fresh, damaged)
            if made is not None:
                return made
        rows = files_table.SpooledRows(self.store)
        try:
            for rel, e in merged:
                rows.add(rel, e[4], e[1], cast("str", e[5]), e[6], e[7])
            rows.finish()
            if record.damaged:  # a chunk read well in the walk and not now (a failing disk): its files are missing
                raise InputError("the folder's stat cache could not be read again", where=self.folder,
                                 fix="run the snapshot again (check the disk if this repeats)")
        except BaseException:
            rows.abandon_store()
            raise
        rows.fresh = fresh
        rows.damaged = damaged
        self.vault.state.save_changes(self.folder, record, changes, rows.digest(), rows.num_rows)
        return rows

    def _merged_table(self, record: FolderRecord, changes: dict[str, Entry | None], fresh: frozenset[str],
                      damaged: list[files_table.DamagedFile]) -> files_table.FileRows | None:
        """``_record_changes`` of a big folder whose record is a stored table: that table with the
        changes merged in (``MergedRows``), written by a child while this process hashes its digest.
        None: that table cannot be read (damaged: ``verify`` reports it); the record makes the rows."""
        from lensvault.datasets.merged_rows import MergedRows
        from lensvault.errors import IntegrityError, ObjectMissing

        rows = MergedRows(self.store, cast("str", self.base_table),
                          [(rel, None if e is None else (e[1], e[4], cast("str", e[5]), e[6], e[7]))
                           for rel, e in sorted(changes.items())])
        rows.fresh, rows.damaged = fresh, damaged
        rows.store_in_background(self.store)
        try:
            try:
                digest = rows.digest()
            except (IntegrityError, ObjectMissing):
                rows.abandon_store()
                return None
            self.vault.state.save_changes(self.folder, record, changes, digest, rows.num_rows)
        except BaseException:
            rows.abandon_store()
            raise
        return rows

    def _new_entries(self) -> dict[str, Entry]:
        """The new cache entries of the files this ingest read or stored."""
        files, media, hardlink, seen, settled = self.files, self.media, self.hardlink, self.seen, self.settled
        for i in range(len(files)):
            if media[i] is None:
                media[i] = _media_of(files[i])
        out: dict[str, Entry] = {}
        for f, k, o, m in zip(files, self.keys, cast("list[str]", self.oids), cast("list[Media]", media)):
            out[f.rel] = (*recorded_key(k, hardlink, seen, settled), o, *m)
        return out

    def _new_index(self) -> tuple[dict[str, Entry], set[str]]:
        """The folder's new cache record and the paths that changed in it: the old record
        (sorted), updated in place, so that only added paths make it re-sort and only removed
        ones make it filter."""
        files = self.files
        index = dict(self.cached)
        new = self._new_entries()
        added = any(rel not in index for rel in new)
        index.update(new)
        changed = {f.rel for f in files}
        if len(self.same) + len(changed) != len(index):  # some cached paths are gone
            present = set(self.same)
            present.update(changed)
            changed.update(rel for rel in index if rel not in present)
            index = {rel: e for rel, e in index.items() if rel in present}
        if added:
            index = dict(sorted(index.items()))
        return index, changed


def _describes(table: dict[str, Any] | None, digest: str | None) -> bool:
    """Whether a version's files table (``KnownContent.table``) has these rows and all the facts a
    commit takes from it (an old manifest may lack some: its rows are then built as usual)."""
    return (table is not None and digest is not None and table.get("digest") == digest
            and all(table.get(k) is not None for k in ("oid", "rows", "bytes", "media_types")))


def _rescan(folder: str, rel: str) -> ScannedFile:
    """An unchanged file looked at again, to be stored: its stat now."""
    path = f"{folder}/{rel}"
    try:
        return ScannedFile(rel, path, os.lstat(path))
    except FileNotFoundError:
        raise gone_error(path) from None


def _damaged_through_links(store: ObjectStore, files: list[ScannedFile], oids: list[str | None], cached: dict[str, Entry]
                           ) -> list[files_table.DamagedFile]:
    """Files that changed in place while hardlinked into the store, which changed their object too.

    A changed file whose cached content (object O) differs from what it holds now, and
    whose inode is O's: O no longer holds O's bytes. Its store entry is removed (the
    bytes it names are gone; a missing object is reported and repaired like any other),
    and the caller says which versions needed it. One stat per changed file.
    """
    out: list[files_table.DamagedFile] = []
    for f, oid in zip(files, oids):
        e = cached.get(f.rel)
        if e is None or e[4] == oid or oid is None:
            continue
        old = e[4]
        if local_links.drop_if_linked(store, old, f.ino):
            out.append({"path": f.path, "rel": f.rel, "oid": old, "now": oid})
    return out


def _recheck(f: ScannedFile) -> StatKey:
    """The stat key of a file stored by copy or reflink, refusing if it changed after the scan
    (its whole key: those modes leave the source alone, so even its ctime must not move)."""
    try:
        st = os.stat(f.path)
    except FileNotFoundError:
        raise gone_error(f.path) from None
    if stat_key(st) != f.key:
        raise changed_error(f)
    return f.key
