"""Walk a source folder safely: every file it names must really be inside it.

A symlink is followed only when its target stays inside the folder (a dataset
that silently pulls in /etc/passwd is a bug); names must be valid UTF-8 so that
manifests read the same on every machine.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from lensvault.errors import InputError

__all__ = ["ScannedFile", "scan", "IGNORED_NAMES"]

# Version-control and LensVault's own bookkeeping, at any depth.
IGNORED_NAMES = frozenset({".lensvault", ".git", ".dvc", ".lensvault-checkout.json", "__pycache__"})


@dataclass(frozen=True, slots=True)
class ScannedFile:
    rel: str  # POSIX path relative to the source folder
    path: str  # absolute path to read (symlinks resolved)
    st: os.stat_result


def scan(src: Path, *, exclude_dirs: tuple[Path, ...] = ()) -> list[ScannedFile]:
    src = Path(src)
    if not src.exists():
        raise InputError(f"folder {src} does not exist", where=str(src), fix="check the path")
    if not src.is_dir():
        raise InputError(f"{src} is not a folder", where=str(src), fix="give the folder that holds the dataset")
    root = os.path.realpath(src)
    excluded = {os.path.realpath(p) for p in exclude_dirs}
    out: list[ScannedFile] = []
    visited = {root}
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        real_dir, rel_dir = stack.pop()
        try:
            entries = list(os.scandir(real_dir))
        except PermissionError as e:
            raise InputError(
                "a folder cannot be read", where=_shown(src, rel_dir), fix="give read permission (chmod u+rx) or remove it"
            ) from e
        for entry in entries:
            name = entry.name
            if name in IGNORED_NAMES:
                continue
            if not name.isascii():  # the common case skips the encode check entirely
                _check_name(src, rel_dir, name)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not _inside(target, root):
                    raise InputError(
                        f"symlink leads outside the dataset folder (to {target})",
                        where=_shown(src, rel),
                        fix="copy the target into the folder, or remove the link",
                    )
                try:
                    st = os.stat(target)
                except FileNotFoundError:
                    raise InputError(
                        "symlink points to a file that does not exist", where=_shown(src, rel), fix="fix or remove the link"
                    ) from None
                if stat.S_ISDIR(st.st_mode):
                    if target not in visited and target not in excluded:
                        visited.add(target)
                        stack.append((target, rel))
                    continue
                path = target
            elif entry.is_dir(follow_symlinks=False):  # from the directory entry: no stat call
                if entry.path not in excluded:
                    stack.append((entry.path, rel))
                continue
            else:
                st = entry.stat(follow_symlinks=False)
                path = entry.path
            if not stat.S_ISREG(st.st_mode):
                raise InputError(
                    "not a regular file (a pipe, socket or device)",
                    where=_shown(src, rel),
                    fix="remove it from the dataset folder",
                )
            out.append(ScannedFile(rel, path, st))
    out.sort(key=lambda f: f.rel)
    return out


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
