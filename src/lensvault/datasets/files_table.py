"""The files table of a snapshot: path, size, sha256, media type, width, height.

Held in the store as Parquet (columnar: a million rows open in well under a
second), in row groups of ``ROW_GROUP_ROWS`` rows, so a reader can walk it a row
group at a time (``batches``) in memory that does not grow with the table.
Tables written before that are one row group (up to 1,048,576 rows: pyarrow's
default); they are read the same way, and never rewritten. Its identity is not the Parquet bytes, which depend on the writer's
version, but a digest of a canonical serialization: for each row sorted by
path, ``path NUL sha256 NUL size NUL``. No field can contain NUL, so the byte
stream is unambiguous.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, NotRequired, TypedDict, TypeVar

if TYPE_CHECKING:
    import pyarrow as pa

    from lensvault.parallel import ForkedCall
    from lensvault.store.base import ObjectStore

__all__ = ["ROW_GROUP_ROWS", "FileRows", "SameTable", "SpooledRows", "batches", "build", "read", "to_parquet_bytes"]

_T = TypeVar("_T")

# Rows per Parquet row group of a files table (and per batch a reader holds): ~5 MB of
# paths and hashes, small next to the process, big enough that a batch costs little.
ROW_GROUP_ROWS = 65_536
# The row-group sizes files tables have been written with, newest first: a table rebuilt from
# its rows (verify --repair) matches the stored bytes only in the layout it was written in.
LAYOUTS: tuple[int | None, ...] = (ROW_GROUP_ROWS, None)


class DamagedFile(TypedDict):
    """A file changed in place while hardlinked into the store (see ingest._damaged_through_links)."""

    path: str
    rel: str
    oid: str  # the object it was, whose bytes changed with it
    now: NotRequired[str]  # what it holds now (when a snapshot found it)


def _pick(column: Sequence[_T], order: list[int]) -> list[_T]:
    return [column[i] for i in order]


def _pa() -> Any:  # the module (untyped)
    import pyarrow as pa

    return pa


def prefetch() -> None:
    """Import pyarrow in a background thread (~0.2 s) while the caller does other work.

    A snapshot that will write a new files table starts this as soon as its scan
    finds a changed file; the later import then finds the modules ready (or waits
    on the import lock for the rest). An unchanged re-snapshot never calls it.
    """
    import atexit
    import sys
    import threading

    if "pyarrow.parquet" not in sys.modules:
        thread = threading.Thread(target=_import_parquet, name="lv-prefetch", daemon=True)
        thread.start()
        # A daemon thread still inside a C extension's import when the interpreter shuts down
        # (a command interrupted early) can crash the exit (SIGSEGV, 1 Ctrl-C in ~200): the
        # exit waits for the import to end first (bounded, should the import ever hang).
        atexit.register(thread.join, 10)


def _import_parquet() -> None:
    try:
        import pyarrow.parquet  # noqa: F401
    except Exception:  # noqa: BLE001 - the real import, later, reports it
        pass


def schema() -> pa.Schema:
    pa = _pa()
    return pa.schema(
        [
            ("path", pa.string()),
            ("size", pa.int64()),
            ("sha256", pa.string()),
            ("media_type", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
        ]
    )


class FileRows:
    """A files table as Python columns sorted by path; the Arrow table only when asked.

    Snapshotting an unchanged folder needs the rows' digest and nothing else, so
    it never imports pyarrow (~0.3 s) or builds 50,000-row arrays.
    """

    __slots__ = ("_digest", "_table", "_writer", "damaged", "fresh", "heights", "media_types", "oids", "paths", "since",
                 "sizes", "widths")

    def __init__(self, paths: Sequence[str], sizes: Sequence[int], oids: Sequence[str], media_types: Sequence[str],
                 widths: Sequence[int | None], heights: Sequence[int | None], *, table: pa.Table | None = None,
                 digest: str | None = None) -> None:
        """``digest``: ``rows_digest`` of these rows, if the caller has it (the stat cache keeps it)."""
        if any(paths[i] > paths[i + 1] for i in range(len(paths) - 1)):
            order = sorted(range(len(paths)), key=paths.__getitem__)
            paths, sizes, oids, media_types, widths, heights = (
                _pick(paths, order), _pick(sizes, order), _pick(oids, order), _pick(media_types, order),
                _pick(widths, order), _pick(heights, order))
            table = None
        self.paths, self.sizes, self.oids = list(paths), list(sizes), list(oids)
        self.media_types, self.widths, self.heights = list(media_types), list(widths), list(heights)
        self._table = table
        self._digest = digest
        self._writer: ForkedCall[str] | None = None
        # Set by ingest: the oids it stored or found in the store itself, rather than knew from a
        # committed version (None: not known, so all of them), which the commit checks; and the
        # objects it found damaged through hardlinks (ingest._damaged_through_links).
        self.fresh: frozenset[str] | None = None
        self.damaged: list[DamagedFile] = []
        # The store's deletion mark taken before the ingest stored or found any object (see
        # ``LocalObjectStore.committing``); None: the commit checks every fresh object.
        self.since: tuple[int, int, int] | None = None

    @classmethod
    def from_table(cls, table: pa.Table) -> FileRows:
        return cls(*(table[c].to_pylist() for c in ("path", "size", "sha256", "media_type", "width", "height")),
                   table=table)

    @classmethod
    def from_index(cls, index: Mapping[str, Sequence[Any]], *, digest: str | None = None) -> FileRows:
        """From a folder's stat-cache entries ({path: (ino, size, mtime, ctime, sha256, media, w, h)})."""
        from operator import itemgetter

        entries = list(index.values())
        return cls(list(index), *(list(map(itemgetter(k), entries)) for k in (1, 4, 5, 6, 7)), digest=digest)

    @property
    def num_rows(self) -> int:
        return len(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def digest(self) -> str:
        if self._digest is None:
            self._digest = rows_digest(self.paths, self.oids, self.sizes)
        return self._digest

    def listing(self) -> list[tuple[str, str, int, str, int | None, int | None]] | None:
        """The rows as the stat cache keeps them (None: not at hand, see ``SameTable``)."""
        return list(zip(self.paths, self.oids, self.sizes, self.media_types, self.widths, self.heights))

    def total_bytes(self) -> int:
        return int(sum(self.sizes))

    def fresh_oids(self) -> Iterable[str]:
        """The oids the commit must find in the store (``fresh``; None: every row's)."""
        return self.fresh if self.fresh is not None else self.oids

    def media_type_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for mt in self.media_types:
            counts[mt] = counts.get(mt, 0) + 1
        return counts

    def table(self) -> pa.Table:
        if self._table is None:
            self._table = build(self.paths, self.sizes, self.oids, self.media_types, self.widths, self.heights)
        return self._table

    # -- the Parquet object ---------------------------------------------------------------
    def store_in_background(self, store: ObjectStore) -> None:
        """Start writing this table's Parquet object into ``store`` in a forked child.

        Importing pyarrow (~0.15 s), building the table and writing Parquet are the
        biggest part of re-snapshotting a folder in which a few files changed; in a
        child they run beside what the caller still has to do (the stat-cache
        record, the snapshot document, catalog reads). ``stored_oid`` collects the
        result. Skipped while another thread runs (a thread holding an import lock
        at the fork would hang the child's import): ``stored_oid`` then writes in-process.
        """
        import threading

        from lensvault.parallel import ForkedCall

        # Only into a store with local files: a child's write into another store (memory,
        # or a network client's connections copied by the fork) is not the parent's.
        if self._writer is None and threading.active_count() == 1 and store.local() is not None:
            self._writer = ForkedCall(_put_from_child, self, store, os.getpid())

    @property
    def storing(self) -> bool:
        return self._writer is not None

    def stored_oid(self, store: ObjectStore) -> str:
        """The oid of this table's Parquet object, written to ``store`` (or by the background writer)."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                return writer.result()
            finally:
                writer.close(wait=True)  # interrupted (Ctrl-C) while waiting: let it finish, never kill it
        return self._put_parquet(store)

    def abandon_store(self) -> None:
        """Wait for a background writer the caller no longer needs (its object, if written, is
        unreferenced: gc takes it). Waiting, not killing, so no temp file is left in the store."""
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            writer.result()
        except Exception:  # noqa: BLE001 - nobody needs its object: any failure of it is moot
            pass
        finally:
            writer.close(wait=True)

    def _put_parquet(self, store: ObjectStore) -> str:
        return store.put_bytes(to_parquet_bytes(self.table(), row_group_rows=ROW_GROUP_ROWS))


class SameTable(FileRows):
    """A files table already in the store, known by what its version's manifest says of it: what
    an unchanged re-snapshot of a folder holds, instead of a row per file. Its rows are read
    from the store only if asked for (``table``), a row group at a time being the usual way
    (``batches``)."""

    __slots__ = ("_facts", "_store")

    def __init__(self, facts: Mapping[str, Any], store: ObjectStore) -> None:
        """``facts``: {"oid", "digest", "rows", "bytes", "media_types"} (see ``ingest.KnownContent.table``)."""
        super().__init__([], [], [], [], [], [], digest=facts["digest"])
        self._facts = dict(facts)
        self._store = store
        self.fresh = frozenset()  # nothing was stored: every object is the version's

    @property
    def num_rows(self) -> int:
        return int(self._facts["rows"])

    def __len__(self) -> int:
        return self.num_rows

    def listing(self) -> None:
        return None  # (a version's listing is kept under its snapshot id already, if small enough)

    def total_bytes(self) -> int:
        return int(self._facts["bytes"])

    def media_type_counts(self) -> dict[str, int]:
        return dict(self._facts["media_types"])

    def table(self) -> pa.Table:
        if self._table is None:
            self._table = read_object(self._store, self._facts["oid"])
        return self._table

    def stored_oid(self, store: ObjectStore) -> str:
        return str(self._facts["oid"])

    def store_in_background(self, store: ObjectStore) -> None:
        pass


class SpooledRows(FileRows):
    """A files table written as it is built: rows are fed in path order and go to a Parquet file
    a row group at a time, the digest hashed along (``rows_digest``'s bytes), so what is held is
    one group's rows whatever the table's size. The file is the one ``to_parquet_bytes`` would
    write for the same rows (the same writer, the same groups). ``stored_oid`` puts it into the
    store; ``abandon_store`` removes it."""

    __slots__ = ("_buf", "_bytes", "_counts", "_hasher", "_held", "_last", "_n", "_pq", "_spool", "_tables")

    def __init__(self, store: ObjectStore) -> None:
        import tempfile

        super().__init__([], [], [], [], [], [])
        files = store.local()
        if files is not None:  # named after this process: gc removes it if we are killed
            self._spool = files.temp_path()
        else:
            fd, self._spool = tempfile.mkstemp(prefix="lensvault-files-", suffix=".parquet")
            os.close(fd)
        self._buf: tuple[list[Any], ...] = ([], [], [], [], [], [])
        self._hasher = hashlib.sha256()
        self._n, self._bytes, self._last = 0, 0, ""
        self._counts: dict[str, int] = {}
        self._pq: Any = None
        self._tables: list[pa.Table] = []  # Arrow rows gathered for the next row group
        self._held = 0

    def add(self, path: str, oid: str, size: int, media_type: str, width: int | None, height: int | None) -> None:
        if self._n + len(self._buf[0]) and path <= self._last:
            raise ValueError(f"files-table rows out of path order: {path!r} after {self._last!r}")
        self._last = path
        b = self._buf
        b[0].append(path)
        b[1].append(size)
        b[2].append(oid)
        b[3].append(media_type)
        b[4].append(width)
        b[5].append(height)
        if len(b[0]) >= _SPOOL_ROWS:
            self._to_arrow()

    def _to_arrow(self) -> None:
        """The rows held as Python objects, as a small Arrow table (~100 B a row, not ~300): a
        group is gathered from these, so what is held is a group of Arrow rows and 8,192 Python ones."""
        paths, sizes, oids, media, widths, heights = self._buf
        if not paths:
            return
        self._tables.append(build(paths, sizes, oids, media, widths, heights))
        self._held += len(paths)
        h = self._hasher
        for i in range(0, len(paths), 4096):
            h.update(b"".join(f"{p}\x00{o}\x00{n}\x00".encode() for p, o, n in
                              zip(paths[i : i + 4096], oids[i : i + 4096], sizes[i : i + 4096])))
        self._n += len(paths)
        self._bytes += sum(sizes)
        for mt in media:
            self._counts[mt] = self._counts.get(mt, 0) + 1
        self._buf = ([], [], [], [], [], [])
        if self._held >= ROW_GROUP_ROWS:
            self._write_groups(last=False)

    def add_table(self, table: pa.Table, *, hashed: bool = True) -> None:
        """Rows already in Arrow (files-table columns, in path order, after every row added so far),
        taken as they are: no Python object per row. ``hashed=False``: a writer that needs only
        the file (``merged_rows``), not the digest and counts of the rows."""
        if not table.num_rows:
            return
        self._to_arrow()  # (rows added one by one before these go first)
        paths = table.column("path")
        first, last = paths[0].as_py(), paths[-1].as_py()
        if self._n and first <= self._last:
            raise ValueError(f"files-table rows out of path order: {first!r} after {self._last!r}")
        self._last = last
        if hashed:
            self._bytes += tally(self._hasher, self._counts, table)
        self._n += table.num_rows
        self._tables.append(table.select([f.name for f in schema()]))
        self._held += table.num_rows
        if self._held >= ROW_GROUP_ROWS:
            self._write_groups(last=False)

    def _write_groups(self, *, last: bool) -> None:
        """Write the whole row groups gathered (and, ``last``, the rest); keep the rest otherwise."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.concat_tables(self._tables).combine_chunks() if self._tables else build([], [], [], [], [], [])
        if self._pq is None:
            self._pq = pq.ParquetWriter(self._spool, schema(), compression="zstd", write_statistics=False,
                                        use_dictionary=[c for c in _REPETITIVE if c in table.column_names])
        whole = table.num_rows if last else table.num_rows - table.num_rows % ROW_GROUP_ROWS
        if whole or (last and self._n == 0):  # (an empty table still gets its one empty group)
            self._pq.write_table(table.slice(0, whole), row_group_size=ROW_GROUP_ROWS)
        rest = table.slice(whole)
        self._tables, self._held = ([rest], rest.num_rows) if rest.num_rows else ([], 0)

    def _flush(self) -> None:
        self._to_arrow()
        self._write_groups(last=True)

    def finish(self) -> SpooledRows:
        """The last rows written and the file closed: the table is whole."""
        self._flush()
        self._pq.close()
        self._digest = self._hasher.hexdigest()
        return self

    @property
    def num_rows(self) -> int:
        return self._n

    def __len__(self) -> int:
        return self._n

    def listing(self) -> list[tuple[str, str, int, str, int | None, int | None]] | None:
        """The rows, for the stat cache to keep (as a version's listing, which also lets ``verify
        --repair`` rebuild a lost table), if they are 65,536 rows or fewer: more would be a row per
        file held again. A bigger table's listing is not kept (nor was one over 300,000 rows)."""
        if self._n > _LISTED_UP_TO:
            return None
        t = self.table()
        return list(zip(*(t[c].to_pylist() for c in ("path", "sha256", "size", "media_type", "width", "height"))))

    def total_bytes(self) -> int:
        return self._bytes

    def fresh_oids(self) -> Iterable[str]:
        """As ``FileRows.fresh_oids``; every row's is read back from the spooled file a row group
        at a time."""
        if self.fresh is not None:
            return self.fresh
        return self._spooled_oids()

    def _spooled_oids(self) -> Iterator[str]:
        import pyarrow.parquet as pq

        with pq.ParquetFile(self._spool) as f:
            for batch in f.iter_batches(batch_size=ROW_GROUP_ROWS, columns=["sha256"]):
                yield from batch.column(0).to_pylist()

    def media_type_counts(self) -> dict[str, int]:
        return dict(self._counts)

    def table(self) -> pa.Table:
        if self._table is None:
            with open(self._spool, "rb") as f:
                self._table = read(f.read(), where=self._spool)
        return self._table

    def stored_oid(self, store: ObjectStore) -> str:
        from lensvault.hashing import hash_file

        oid = hash_file(self._spool).oid
        store.put_files([(self._spool, oid)])
        return oid

    def store_in_background(self, store: ObjectStore) -> None:
        pass

    def abandon_store(self) -> None:
        if self._pq is not None:
            try:
                self._pq.close()
            except Exception:  # noqa: BLE001 - closing a writer already closed or failed: the file goes anyway
                pass
        try:
            os.unlink(self._spool)
        except OSError:
            pass


_SPOOL_ROWS = 8192
# A changed re-snapshot's table of up to this many rows is built in memory and written by a forked
# child beside the rest (faster: at 50,000 files 0.6 s, where spooling in-process took 0.8 s); a
# bigger one is spooled, so memory stops growing here.
SPOOL_FROM = 65_536
_LISTED_UP_TO = 65_536


def _put_from_child(rows: FileRows, store: ObjectStore, parent_pid: int) -> str:
    if os.getpid() != parent_pid and "pyarrow" not in sys.modules and "numpy" not in sys.modules:
        _import_pyarrow_without_numpy()
    return rows._put_parquet(store)


def _import_pyarrow_without_numpy() -> None:
    """In a writer child: import pyarrow without NumPy, which it only needs for conversions.

    NumPy is an optional dependency of pyarrow (>= 16) and half of its import time
    (~0.1 s of ~0.2 s). Building a table from Python lists and writing Parquet
    never touches it, and the bytes written are the same. The child exits after
    writing, so nothing else ever sees this pyarrow. Should a pyarrow ever insist
    on NumPy, the block is lifted and the import done the ordinary way.
    """
    sys.modules["numpy"] = None  # type: ignore[assignment]  # makes `import numpy` raise ImportError
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
            del sys.modules[name]
    finally:
        del sys.modules["numpy"]


def build(paths: Sequence[str], sizes: Sequence[int], oids: Sequence[str], media_types: Sequence[str],
          widths: Sequence[int | None], heights: Sequence[int | None]) -> pa.Table:
    """A table sorted by path (the caller passes rows in any order)."""
    pa = _pa()
    if any(paths[i] > paths[i + 1] for i in range(len(paths) - 1)):
        order = sorted(range(len(paths)), key=paths.__getitem__)
        paths, sizes, oids, media_types, widths, heights = (
            _pick(paths, order), _pick(sizes, order), _pick(oids, order), _pick(media_types, order),
            _pick(widths, order), _pick(heights, order))
    table = pa.table(
        {
            "path": pa.array(paths, pa.string()),
            "size": pa.array(sizes, pa.int64()),
            "sha256": pa.array(oids, pa.string()),
            "media_type": pa.array(media_types, pa.string()),
            "width": pa.array(widths, pa.int32()),
            "height": pa.array(heights, pa.int32()),
        },
        schema=schema(),
    )
    # Sorted above in Python (same order as Arrow's for UTF-8): Table.sort_by would
    # import pyarrow.compute, which costs more than the sort.
    return table


def update_digest(h: Any, table: pa.Table) -> None:
    """Hash ``table``'s rows into ``h`` as ``rows_digest`` does, from Arrow's joined bytes: each row
    ``path NUL sha256 NUL size NUL`` made by one compute kernel, no Python string per row (~3x faster)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    joined = pc.binary_join_element_wise(table.column("path"), table.column("sha256"),
                                         pc.cast(table.column("size"), pa.string()), "", "\x00")
    if joined.null_count:  # (a null joins to null: no files table has one, but never hash a wrong digest)
        raise ValueError("a files-table row without a path, sha256 or size")
    for chunk in joined.chunks:
        if len(chunk):
            _, offsets, data = chunk.buffers()
            (start,) = _OFFSET.unpack_from(offsets, 4 * chunk.offset)  # (a slice starts inside the buffers)
            (end,) = _OFFSET.unpack_from(offsets, 4 * (chunk.offset + len(chunk)))
            h.update(memoryview(data)[start:end])


_OFFSET = struct.Struct("=i")  # a string array's offsets: int32, in this machine's byte order (Arrow's)


def tally(h: Any, counts: dict[str, int], table: pa.Table) -> int:
    """Take Arrow rows into what a table's description adds up: their digest bytes into ``h``
    (``update_digest``), their media types into ``counts``; returns their bytes."""
    import pyarrow.compute as pc

    update_digest(h, table)
    found = pc.value_counts(table.column("media_type"))
    for mt, n in zip(found.field("values").to_pylist(), found.field("counts").to_pylist()):
        counts[mt] = counts.get(mt, 0) + n
    return int(pc.sum(table.column("size")).as_py() or 0)


def rows_digest(paths: Sequence[str], oids: Sequence[str], sizes: Sequence[int]) -> str:
    """The canonical digest of rows already sorted by path."""
    h = hashlib.sha256()
    for i in range(0, len(paths), 4096):
        h.update(b"".join(f"{p}\x00{o}\x00{n}\x00".encode() for p, o, n in
                          zip(paths[i : i + 4096], oids[i : i + 4096], sizes[i : i + 4096])))
    return h.hexdigest()


# Dictionary-encode only columns with few distinct values: for unique columns
# (paths, hashes) a dictionary is built, abandoned and then costs ~3x on read.
_REPETITIVE = ("media_type", "split", "kind", "tags", "attributes", "image")


def to_parquet_bytes(table: pa.Table, *, row_group_rows: int | None = None) -> bytes:
    """``row_group_rows``: rows per row group; None is pyarrow's default (one group up to 1,048,576
    rows), the layout of every table written before files tables were cut (and of other tables)."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_statistics=False, row_group_size=row_group_rows,
                   use_dictionary=[c for c in _REPETITIVE if c in table.column_names])
    return buf.getvalue()


def read(data: bytes, columns: list[str] | None = None, *, where: str | None = None) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # ParquetFile.read, not pq.read_table: the latter imports pyarrow.dataset (~0.4 s).
        return pq.ParquetFile(pa.BufferReader(data)).read(columns=columns, use_threads=False)
    except (pa.ArrowException, OSError, ValueError) as e:
        from lensvault.errors import IntegrityError

        raise IntegrityError(f"a table in the store cannot be read as Parquet ({e})", where=where,
                             fix="run `lensvault verify --repair`; if it says all is well, report this as a bug") from e


def read_object(store: ObjectStore, oid: str, columns: list[str] | None = None) -> pa.Table:
    """The Parquet table stored as ``oid`` (its bytes hashed first: see ObjectStore.read_bytes)."""
    return read(store.read_bytes(oid), columns, where=store.location(oid))


def batches(store: ObjectStore, oid: str, columns: list[str] | None = None, *,
            rows: int = ROW_GROUP_ROWS) -> Iterator[pa.RecordBatch]:
    """The table stored as ``oid`` as record batches of at most ``rows`` rows, in order.

    Memory stays that of a batch whatever the table's size: the object is hashed as it is
    read in chunks (a damaged table is an IntegrityError before any row is used, as with
    ``read_object``), then Parquet reads one row group's pages at a time from the file. An
    old table of one big row group is read through a buffer, page by page, in batches too.
    """
    with _parquet_of(store, oid) as pf:
        for g in range(pf.num_row_groups):
            # No Arrow thread pool: its threads, alive at exit, can abort the process (see read).
            if pf.metadata.row_group(g).num_rows <= rows:
                # A group at a time: ``iter_batches`` over the whole file reads ahead, and its
                # memory grew with the table (~+40 MB from 1M to 2M rows; this stays flat).
                yield from pf.read_row_group(g, columns=columns, use_threads=False).to_batches()
            else:  # an old table's big group: in batches, page by page
                yield from pf.iter_batches(batch_size=rows, row_groups=[g], columns=columns, use_threads=False)


@contextmanager
def _parquet_of(store: ObjectStore, oid: str) -> Iterator[Any]:
    """The table stored as ``oid`` opened as a ``pq.ParquetFile``, its bytes hashed first in 1 MB
    reads (a damaged table is an error before any row is used); what Parquet cannot read inside
    the block is an IntegrityError that says where and what to run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = store.location(oid)
    with store.open(oid) as f:
        if f.seekable():
            _check_hash(f, oid, store)
            f.seek(0)
            source: Any = f
        else:  # a stream (another backend): read whole, as read_object does
            source = pa.BufferReader(store.read_bytes(oid))
        try:
            yield pq.ParquetFile(source, buffer_size=1 << 20)
        except (pa.ArrowException, OSError, ValueError) as e:
            from lensvault.errors import IntegrityError

            raise IntegrityError(f"a table in the store cannot be read as Parquet ({e})", where=where,
                                 fix="run `lensvault verify --repair`; if it says all is well, report this as a bug") from e


def _check_hash(f: BinaryIO, oid: str, store: ObjectStore) -> None:
    """Hash an open object in 1 MB reads (not ``read_bytes``: that holds the whole object)."""
    h = hashlib.sha256()
    while chunk := f.read(1 << 20):
        h.update(chunk)
    if h.hexdigest() != oid:
        from lensvault.store.base import corrupt_object

        raise corrupt_object(oid, store.location(oid))


def read_object_columns(store: ObjectStore, oid: str, columns: list[str]) -> pa.Table:
    """Those of ``columns`` that the table stored as ``oid`` has: a table written before a column
    was added lacks it, and asking Parquet for it by name would be an error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = store.read_bytes(oid)
    try:
        have = set(pq.ParquetFile(pa.BufferReader(data)).schema_arrow.names)
    except (pa.ArrowException, OSError, ValueError):
        have = set(columns)  # (unreadable: ``read`` says so, as it does for any table)
    return read(data, [c for c in columns if c in have], where=store.location(oid))


def rows_at(store: ObjectStore, oid: str, start: int, count: int) -> pa.Table:
    """Rows ``start`` to ``start + count`` of the table stored as ``oid`` (fewer at its end, none
    past it): only the row groups that hold them are read, after the object is hashed as
    ``batches`` hashes it (a page of a big table costs a row group or two, not the table)."""
    with _parquet_of(store, oid) as pf:
        sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
        firsts = [sum(sizes[:g]) for g in range(len(sizes))]
        groups = [g for g, (at, n) in enumerate(zip(firsts, sizes)) if at < start + count and at + n > start]
        if not groups:
            empty: pa.Table = pf.schema_arrow.empty_table()
            return empty
        table: pa.Table = pf.read_row_groups(groups, use_threads=False).slice(start - firsts[groups[0]], count)
        return table
