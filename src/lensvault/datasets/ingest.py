"""Turn a folder into a files table whose every byte is in the store.

Hash what the stat cache does not know (in parallel), sniff media types and
image sizes from the same read, store new content by the chosen link mode, and
make sure no file changed between being hashed and being stored.
"""

from __future__ import annotations

import os
from pathlib import Path

from lensvault.errors import InputError, StorageError
from lensvault.hashing import hash_file, hash_files
from lensvault.media import sniff
from lensvault.progress import NO_PROGRESS
from lensvault.state import StatKey
from lensvault.store.base import LinkMode

from lensvault.datasets import files_table
from lensvault.datasets.scan import ScannedFile, scan

__all__ = ["hash_scanned", "ingest_folder"]


def _hash_one(path: str, hasher=hash_file):
    try:
        fh = hasher(path)
    except StorageError:
        raise  # writing the staged copy failed (a full disk): not the source file's fault
    except PermissionError as e:
        raise InputError("a file cannot be read (permission denied)", where=path, fix="chmod u+r the file, or remove it") from e
    except OSError as e:
        raise InputError(f"a file cannot be read ({e.strerror})", where=path, fix="check the file and the disk") from e
    return fh.oid, fh.size, sniff(path, fh.head)


def hash_scanned(vault, files: list[ScannedFile], *, progress=NO_PROGRESS, media: bool = True,
                 hashed: list[int] | None = None, hasher=hash_file):
    """(oids, media) for scanned files, hashing only what the stat cache lacks.

    Returns oids in input order and a dict oid -> (media_type, width, height)
    (empty when ``media`` is False). Indices of the files actually read are
    appended to ``hashed``.
    """
    want_media = media
    keys = [StatKey.of(f.st) for f in files]
    cached = vault.state.lookup(keys)
    oids: list[str | None] = [cached.get(k) for k in keys]
    todo = [i for i, o in enumerate(oids) if o is None]
    if hashed is not None:
        hashed.extend(todo)
    media: dict[str, tuple] = (vault.state.media({o for o in oids if o})
                               if want_media and len(todo) < len(files) else {})
    fresh_stat = []
    fresh_media = []
    if todo:
        fn = _hash_one if hasher is hash_file else (lambda p: _hash_one(p, hasher))
        with progress.task("Hashing", len(todo)) as advance:
            results = hash_files([files[i].path for i in todo], fn=fn, on_done=advance)
            try:
                for i, (_, (oid, size, m)) in zip(todo, results):
                    if size != files[i].st.st_size:
                        raise _changed(files[i])
                    oids[i] = oid
                    if oid not in media:
                        media[oid] = m
                        fresh_media.append((oid, *m))
                    fresh_stat.append((keys[i], oid))
            finally:
                results.close()  # waits for the workers before any cleanup runs
    # A cached hash with no cached media (an old cache) is sniffed once here.
    for i, oid in enumerate(oids):
        if want_media and oid not in media:
            with open(files[i].path, "rb") as fh:
                media[oid] = sniff(files[i].path, fh.read(64 * 1024))
            fresh_media.append((oid, *media[oid]))
    vault.state.save(fresh_stat)
    vault.state.save_media(fresh_media)
    return oids, media


def _changed(f: ScannedFile) -> InputError:
    return InputError(
        "a file changed while it was being snapshotted",
        where=f.path,
        fix="wait for whatever is writing to the folder to finish, then run the command again",
    )


def ingest_folder(vault, src: Path, *, link: LinkMode | str = LinkMode.AUTO, progress=NO_PROGRESS,
                  known: set[str] | frozenset = frozenset()):
    """The files table of ``src``, with every byte in the store.

    ``known`` holds oids an existing version already references (so they are in
    the store): those files are neither stored again nor re-checked.
    """
    files = scan(src, exclude_dirs=(vault.dir, vault.manifests_dir))
    hashed: list[int] = []
    link = LinkMode(link)
    store = vault.store
    single_pass = hasattr(store, "stager") and (
        link is LinkMode.COPY or (link is LinkMode.AUTO and not store.supports_reflink()))
    if single_pass:
        # Copying anyway: hash and stage new content in the same read.
        with store.stager() as stager:
            oids, media = hash_scanned(vault, files, progress=progress, hashed=hashed, hasher=stager.hash_file)
            stager.commit()
        done = set(hashed)
        put = [i for i, oid in enumerate(oids) if oid not in known and i not in done]
    else:
        oids, media = hash_scanned(vault, files, progress=progress, hashed=hashed)
        put = [i for i, oid in enumerate(oids) if oid not in known]
    items = [(files[i].path, oids[i]) for i in put]
    with progress.task("Storing", len(items)) as advance:
        store.put_files(items, link, on_done=advance)
    # Files read or stored since the scan must not have changed meanwhile.
    check = sorted(set(hashed) | set(put))
    _recheck(vault, [files[i] for i in check], [oids[i] for i in check])
    table = files_table.build(
        [f.rel for f in files],
        [f.st.st_size for f in files],
        oids,
        [media[o][0] for o in oids],
        [media[o][1] for o in oids],
        [media[o][2] for o in oids],
    )
    return table


def _recheck(vault, files: list[ScannedFile], oids: list[str]) -> None:
    """Refuse if a file changed after hashing; refresh cache keys whose ctime moved.

    Hardlinking and chmod change ctime, so without the refresh the next
    snapshot would re-hash everything.
    """
    refreshed = []
    for f, oid in zip(files, oids):
        try:
            st = os.stat(f.path)
        except FileNotFoundError:
            raise InputError(
                "a file disappeared while it was being snapshotted",
                where=f.path,
                fix="run the command again when the folder is not being changed",
            ) from None
        if st.st_size != f.st.st_size or st.st_mtime_ns != f.st.st_mtime_ns or st.st_ino != f.st.st_ino:
            raise _changed(f)
        if st.st_ctime_ns != f.st.st_ctime_ns:
            refreshed.append((StatKey.of(st), oid))
    vault.state.save(refreshed)
