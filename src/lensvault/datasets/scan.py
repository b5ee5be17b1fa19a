"""Walk a source folder safely: every file it names must really be inside it.

A symlink is followed only when its target stays inside the folder (a dataset
that silently pulls in /etc/passwd is a bug); names must be valid UTF-8 so that
manifests read the same on every machine.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path
from stat import S_ISDIR, S_ISLNK, S_ISREG
from typing import TYPE_CHECKING

from lensvault.errors import InputError

if TYPE_CHECKING:
    from lensvault.state import Entry

__all__ = ["PartialScanRefused", "ScannedFile", "scan_iter", "share_bounds", "walk_files",
           "IGNORED_NAMES"]

# Version-control and LensVault's own bookkeeping, at any depth.
IGNORED_NAMES = frozenset({".lensvault", ".git", ".dvc", ".lensvault-checkout.json", "__pycache__"})


class ScannedFile:
    """A file found by the walk: its paths and stat key, and nothing else.

    One is alive per changed file until the snapshot records them all, so it keeps
    no ``os.stat_result`` (~0.6 KB with its numbers: more than the rest of the file's
    bookkeeping; a million-file snapshot held 600 MB of them).
    """

    __slots__ = ("key", "path", "rel")

    def __init__(self, rel: str, path: str, st: os.stat_result):
        self.rel = rel  # POSIX path relative to the source folder
        self.path = path  # absolute path to read (symlinks resolved)
        # The stat-cache key (inode, size, mtime_ns, ctime_ns), made once here.
        self.key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    @property
    def size(self) -> int:
        return self.key[1]

    @property
    def ino(self) -> int:
        return self.key[0]

    def __repr__(self) -> str:
        return f"ScannedFile({self.rel!r}, {self.path!r})"


class PartialScanRefused(Exception):
    """A partial walk met a symlinked folder, which only a whole walk can follow consistently."""


def scan_iter(src: Path, index: dict[str, Entry], same: list[str], *, exclude_dirs: tuple[Path, ...] = (),
              need_media: bool = False, trusted: tuple[str, ...] = ()) -> Iterator[list[ScannedFile]]:
    """Yield, in path order, the files whose stat differs from ``index``, a few at a time; append
    the relative paths of the others to ``same``.

    An unchanged file costs one ``lstat`` and a tuple comparison; no object is made
    for it. With ``need_media`` an entry without media counts as changed. Yielding
    per folder lets the caller start reading files while the walk goes on.
    """
    get = index.get
    out: list[ScannedFile] = []
    for rel, path, st, linked in walk_files(src, exclude_dirs=exclude_dirs, trusted=trusted):
        c = get(rel)
        if (c is not None and c[0] == st.st_ino and c[1] == st.st_size and c[2] == st.st_mtime_ns
                and c[3] == st.st_ctime_ns and (c[5] is not None or not need_media) and not linked):
            same.append(rel)
            continue
        out.append(ScannedFile(rel, path, st))
        if len(out) >= 1000:
            yield out
            out = []
    if out:
        yield out


# What a folder's listing holds per entry: (sort key, rel, path to read or walk, stat, kind).
_FILE, _DIR, _LINKED_FILE = 0, 1, 2


def walk_files(src: Path, *, exclude_dirs: tuple[Path, ...] = (), part: tuple[int, int] | None = None,
               trusted: tuple[str, ...] = ()) -> Iterator[tuple[str, str, os.stat_result, bool]]:
    """Every file under ``src`` as (relative path, path to read, stat, linked), in path order (the
    order of a files table). A file reached through a symlink to it is ``linked``: its path
    and stat are the target's, so a cached key says nothing of the link (always read again).

    Each folder's entries are sorted with a sub-folder's name followed by "/", which
    orders every file by its whole relative path: what is under ``a/`` sorts after the
    file ``a-b`` and before ``a0``, as its paths do. ``part=(k, n)`` walks the k-th of n
    contiguous shares of the top-level entries: its files are the ones whose paths lie in
    ``share_bounds``.
    """
    src = Path(src)
    if not src.exists():
        raise InputError(f"folder {src} does not exist", where=str(src), fix="check the path")
    if not src.is_dir():
        raise InputError(f"{src} is not a folder", where=str(src), fix="give the folder that holds the dataset")
    root = os.path.realpath(src)
    excluded = {os.path.realpath(p) for p in exclude_dirs}
    visited = {root}
    top = _listing(src, root, "", root, excluded, trusted, part is not None)
    if part is not None:
        top = top[slice(*_share_range(len(top), part))]
    stack = [iter(top)]
    while stack:
        for _key, rel, path, st, kind in stack[-1]:
            if kind == _FILE:
                yield rel, path, st, False  # type: ignore[misc]
            elif kind == _LINKED_FILE:
                yield rel, path, st, True  # type: ignore[misc]
            else:
                if st is not None:  # a symlinked folder: walked once, under the first link to it in path order
                    if path in visited:
                        continue
                    visited.add(path)
                stack.append(iter(_listing(src, path, rel, root, excluded, trusted, part is not None)))
                break
        else:
            stack.pop()


def share_bounds(src: Path, part: tuple[int, int], *, exclude_dirs: tuple[Path, ...] = (),
                 trusted: tuple[str, ...] = ()) -> tuple[str, str | None] | None:
    """(lo, hi): the paths ``walk_files(part=part)`` walks are those with lo <= path < hi (hi None:
    no end). The shares' ranges cover every path, a deleted one's too. None: an empty last share."""
    root = os.path.realpath(src)
    top = _listing(Path(src), root, "", root, {os.path.realpath(p) for p in exclude_dirs}, trusted, True)
    start, stop = _share_range(len(top), part)
    if start >= len(top) and start:
        return None
    lo = top[start][0] if start else ""
    hi = top[stop][0] if stop < len(top) else None
    return lo, hi


def _share_range(n: int, part: tuple[int, int]) -> tuple[int, int]:
    k, parts = part
    return n * k // parts, n * (k + 1) // parts


def _listing(src: Path, real_dir: str, rel_dir: str, root: str, excluded: set[str], trusted: tuple[str, ...],
             partial: bool) -> list[tuple[str, str, str, os.stat_result | None, int]]:
    """A folder's entries to walk, sorted by path (see ``walk_files``); refuses what a dataset
    folder may not hold."""
    try:
        entries = list(os.scandir(real_dir))
    except PermissionError as e:
        raise InputError(
            "a folder cannot be read", where=_shown(src, rel_dir), fix="give read permission (chmod u+rx) or remove it"
        ) from e
    prefix = f"{rel_dir}/" if rel_dir else ""
    out: list[tuple[str, str, str, os.stat_result | None, int]] = []
    add = out.append
    for entry in entries:
        name = entry.name
        if name in IGNORED_NAMES:
            continue
        if not name.isascii():  # the common case skips the encode check entirely
            _check_name(src, rel_dir, name)
        # One lstat per entry (d_type is not trusted on every filesystem), and
        # its mode answers file / folder / link without further calls.
        st = entry.stat(follow_symlinks=False)
        mode = st.st_mode
        rel = prefix + name
        if S_ISREG(mode):
            add((rel, rel, entry.path, st, _FILE))
            continue
        if S_ISDIR(mode):
            if entry.path not in excluded:
                add((rel + "/", rel, entry.path, None, _DIR))
            continue
        if S_ISLNK(mode):
            target = os.path.realpath(entry.path)
            if partial and os.path.isdir(target):
                raise PartialScanRefused(rel)
            # ``trusted``: the vault's own store, which a `checkout --link symlink` links into.
            if not _inside(target, root) and not any(_inside(target, t) for t in trusted):
                raise InputError(
                    f"symlink leads outside the dataset folder (to {target})",
                    where=_shown(src, rel),
                    fix="copy the target into the folder, or remove the link",
                )
            try:
                tst = os.stat(target)
            except FileNotFoundError:
                raise InputError(
                    "symlink points to a file that does not exist", where=_shown(src, rel), fix="fix or remove the link"
                ) from None
            except OSError as e:  # ELOOP: a link that leads back to itself
                raise InputError(
                    f"symlink cannot be followed ({e.strerror}; a link loop?)", where=_shown(src, rel),
                    fix="fix or remove the link",
                ) from None
            if stat.S_ISDIR(tst.st_mode):
                if target not in excluded:
                    add((rel + "/", rel, target, tst, _DIR))
                continue
            if stat.S_ISREG(tst.st_mode):
                add((rel, rel, target, tst, _LINKED_FILE))
                continue
        raise InputError(
            "not a regular file (a pipe, socket or device)",
            where=_shown(src, rel),
            fix="remove it from the dataset folder",
        )
    out.sort(key=_KEY)
    return out


_KEY = itemgetter(0)


def _inside(target: str, root: str) -> bool:
    return target == root or target.startswith(root.rstrip("/") + "/")


def _check_name(src: Path, rel_dir: str, name: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(name)
        raise InputError(
            f"file name is not valid UTF-8 ({raw!r})",
            where=_shown(src, rel_dir) + "/",
            fix="rename the file to a UTF-8 name (e.g. with `convmv -f latin1 -t utf8`)",
        ) from None


def _shown(src: Path, rel: str) -> str:
    return str(src / rel) if rel else str(src)
