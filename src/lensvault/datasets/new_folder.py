"""A folder's first snapshot, as a stream: what is held is bounded, whatever the folder's size.

A folder never snapshotted before has no stat-cache record: every file is read. The walk
goes in path order (``scan.walk_files``) and the workers answer in the order they were
fed, so each answer can go straight into the files table and the folder's new record,
both written in path order (``files_table.SpooledRows``, ``state.IndexWriter``). The walk
is held back while more than ``AHEAD`` files wait for a worker, so a fast walk does not
pile up a row per file; the objects the store must keep (a copy's staged temp files,
pinned and renamed into place) and the keys of the objects this ingest hashed
(``store/verified.py``) go out a window at a time.

Up to ``files_table.SPOOL_FROM`` files it ends as before the stream: the rows are built in
memory and the table written by a forked child beside the commit (faster for the usual
folder); the stream only starts past that.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault.datasets import files_table
from lensvault.datasets.ingest_worker import (
    Batch,
    Media,
    check_stored,
    ingest_part,
    interned,
    recorded_key,
    settled_link,
)
from lensvault.datasets.scan import ScannedFile, scan_iter
from lensvault.parallel import ChunkMapper
from lensvault.store.base import LinkMode

if TYPE_CHECKING:
    from lensvault.progress import Progress
    from lensvault.state import Entry, IndexWriter
    from lensvault.store.base import ObjectKey
    from lensvault.vault import Vault

__all__ = ["AHEAD", "WINDOW", "ingest_new_folder"]

AHEAD = 32_768  # files walked but not yet answered by a worker, at most (then the walk waits)
WINDOW = 65_536  # staged copies and learned keys handed on this many at a time


def ingest_new_folder(vault: Vault, src: Path, batch: Batch, progress: Progress, *,
                      exclude_dirs: tuple[Path, ...], trusted: tuple[str, ...],
                      meanwhile: Callable[[], object]) -> files_table.FileRows:
    """The files table of a folder never snapshotted before, every byte stored by ``batch``, and
    the folder's stat-cache record saved. ``meanwhile`` runs once the walk is done, while the
    workers still hash (the caller opens the catalog there, and refuses a taken version)."""
    ingest = _Stream(vault, os.path.realpath(src), batch)
    try:
        with ChunkMapper(partial(ingest_part, batch, True)) as mapper, \
                progress.task("Hashing and storing", None) as advance:
            pending: deque[ScannedFile] = deque()
            for found in scan_iter(src, {}, [], exclude_dirs=exclude_dirs, need_media=True, trusted=trusted):
                if not pending and ingest.rows.count == 0:
                    files_table.prefetch()
                pending.extend(found)
                mapper.feed([(f.path, None) for f in found])
                if len(pending) > AHEAD:
                    for part in mapper.ready(AHEAD // 2, advance):
                        ingest.take(pending, part)
            meanwhile()
            for part in mapper.results(advance):
                ingest.take(pending, part)
        return ingest.finish()
    except BaseException:
        ingest.abort()  # after the workers have stopped (the mapper's exit waits for them)
        raise


class _Stream:
    """The answers of the workers, file by file in path order, into the new table and record."""

    def __init__(self, vault: Vault, folder: str, batch: Batch) -> None:
        self.vault, self.folder, self.batch = vault, folder, batch
        self.hardlink = batch.link is LinkMode.HARDLINK
        self.rows = _TableAndRecord(vault, folder)
        self.seen = time.time_ns()  # before any stat of the walk: the moment the racy rule measures from
        self.settled = self.seen - 2_000_000_000  # timestamps up to this are never racy (state.racy's largest tick)
        self.staged: list[tuple[str, str]] = []  # (temp path, oid): copies to rename into the store
        self.window: list[str] = []  # copy mode: the oids answered since the last hand-on (to pin)
        self.shards: set[str] = set()  # hardlink mode: the store's folders linked into (made durable at the end)
        self.learned: dict[str, ObjectKey] = {}  # oid → key of objects whose bytes this ingest hashed
        # One (media type, width, height) per distinct value, not one per file (see ingest).
        self.shared: dict[Media, Media] = {}

    def take(self, pending: deque[ScannedFile], part: list[Any]) -> None:
        hardlink, seen, settled, learned = self.hardlink, self.seen, self.settled, self.learned
        shared = self.shared
        for oid, size, m, after, stored, read_key in part:
            f = pending.popleft()
            key = check_stored(f, size, after, read_key, hardlink)
            if stored is not None:
                self.staged.append((stored[0], oid))
                learned[oid] = stored[1]
            elif hardlink and settled_link(key, seen, settled):
                learned[oid] = (key[0], key[1], key[2])  # read and hashed just now; the file is the object
            if hardlink:
                self.shards.add(oid[:2])
            else:
                self.window.append(oid)
            m = shared.get(m) or shared.setdefault(m, interned(m))
            self.rows.add(f.rel, (*recorded_key(key, hardlink, seen, settled), oid, *m))
        if len(self.window) >= WINDOW or len(learned) >= WINDOW:
            self._hand_on()

    def _hand_on(self) -> None:
        """Copy mode: pin this window's objects and rename its staged copies into the store (as the
        commit of the whole batch would, a window earlier: an object in the store before its
        version commits is harmless, and pinned). Both modes: record the keys learned."""
        if self.window or self.staged:
            self.batch.commit(self.window, self.staged)
            self.window, self.staged = [], []
        if self.learned:
            self.vault.verified.add(self.learned)
            self.learned = {}

    def finish(self) -> files_table.FileRows:
        self._hand_on()
        if self.hardlink:
            self.batch.commit(self.shards, [])  # (a hardlink batch's commit makes the shards' entries durable)
        return self.rows.finish()

    def abort(self) -> None:
        self.batch.abort()
        self.rows.abort()


class _TableAndRecord:
    """Entries in path order → the files table and the folder's stat-cache record: held in memory
    up to ``files_table.SPOOL_FROM`` entries, then both written as they come."""

    def __init__(self, vault: Vault, folder: str) -> None:
        self.vault, self.folder = vault, folder
        self.held: list[tuple[str, Entry]] = []
        self.spooled: files_table.SpooledRows | None = None
        self.writer: IndexWriter | None = None
        self.count = 0

    def add(self, rel: str, e: Entry) -> None:
        self.count += 1
        if self.spooled is None:
            self.held.append((rel, e))
            if len(self.held) > files_table.SPOOL_FROM:
                self._spool()
            return
        self.spooled.add(rel, e[4], e[1], e[5], e[6], e[7])  # type: ignore[arg-type]  # (media type: always known here)
        assert self.writer is not None
        self.writer.add(rel, e)

    def _spool(self) -> None:
        self.spooled = files_table.SpooledRows(self.vault.store)
        self.writer = self.vault.state.index_writer(self.folder)
        held, self.held = self.held, []
        for rel, e in held:
            self.spooled.add(rel, e[4], e[1], e[5], e[6], e[7])  # type: ignore[arg-type]
            self.writer.add(rel, e)

    def finish(self) -> files_table.FileRows:
        store, state = self.vault.store, self.vault.state
        if self.spooled is None:
            index = dict(self.held)
            self.held = []
            rows = files_table.FileRows.from_index(index)
            rows.fresh = frozenset(rows.oids)  # (every object: none is known from a version)
            rows.store_in_background(store)
            state.save_index(self.folder, index, digest=rows.digest())
            return rows
        spooled = self.spooled.finish()
        assert self.writer is not None
        self.writer.commit(spooled.digest())
        self.writer = None
        spooled.fresh = None  # every object of the table: the commit checks them a row group at a time
        return spooled

    def abort(self) -> None:
        if self.spooled is not None:
            self.spooled.abandon_store()
        if self.writer is not None:
            self.writer.abort()
