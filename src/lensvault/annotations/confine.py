"""Paths named inside annotation files stay inside the dataset folder (SRC).

Annotation files name other files: COCO ``file_name``, YOLO ``data.yaml`` (``path:``,
``train:``), ``train.txt`` lines. A name that is absolute, climbs out with ``..``, or passes
through a symlink that leads elsewhere must not make an import read files outside the folder
being versioned — nor reveal whether they exist. Two checks:

* :meth:`SourceFolder.contains` — lexical (no file-system access): for names in annotation
  files, before anything is looked up. Cheap enough for every COCO image.
* :meth:`SourceFolder.check_readable` — symlinks resolved: for every annotation file the
  importer is about to open (JSON it found, data.yaml, list files, label and class files), so
  a link such as ``labels/x.txt -> ~/.ssh/id_rsa`` is never parsed nor quoted in an error.
* :func:`check_image` — symlinks resolved: for every image an importer reads (through
  ``bad_images.image_info``), so no format reads the header of an image linked from elsewhere.

The ``--annotations`` path the user passes is trusted as given (it may live outside SRC);
files under it may be read too.

One exception, for every check and every format: folders the caller trusts (``trusting``;
the vault passes its own object store). A ``checkout --link symlink`` folder is all links into
that store — content-addressed, read-only bytes of this vault — and snapshotting it must work.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from lensvault.annotations._common import fail

__all__ = ["Outside", "SourceFolder", "check_image", "reachable", "trusting"]


class Outside(enum.Enum):
    """The answer of a lookup whose every reading of a name leaves the dataset folder (nothing
    outside is looked up). An enum, not ``object()``, so a type checker tells it from a path."""

    OUTSIDE = "outside"

# (real root of the import, real paths of trusted folders, folder → its real path); set by
# ``importers.load``.
_scope: ContextVar[tuple[str | None, tuple[str, ...], dict[str, str]]] = ContextVar("lensvault_import_scope",
                                                                           default=(None, (), {}))


@contextmanager
def trusting(root: str | os.PathLike[str] | None, trusted: Iterable[str | os.PathLike[str]] = ()) -> Iterator[None]:
    """Within this block, the import of ``root`` may follow symlinks into ``trusted`` folders."""
    token = _scope.set((None if root is None else os.path.realpath(root),
                        tuple(os.path.realpath(t) for t in trusted), {}))
    try:
        yield
    finally:
        _scope.reset(token)


def reachable(real_path: str, real_root: str) -> bool:
    """A resolved path is inside the resolved root, or inside a folder the caller trusts."""
    return _inside(real_path, real_root) or any(_inside(real_path, t) for t in _scope.get()[1])


def check_image(path: str | os.PathLike[str], shown: str, *, is_link: bool = True) -> None:
    """Refuse to read an image whose symlinks lead outside the import's root (and the trusted
    folders). Outside ``trusting`` (an importer called directly) there is no root to hold it to.

    ``is_link=False`` (the caller's ``lstat`` says the file itself is no link): only its folder
    is resolved, once per folder — resolving every image's path costs a ``lstat`` per path part.
    """
    root, _, folders = _scope.get()
    if root is None:
        return
    if is_link:
        real = os.path.realpath(path)
    else:
        folder, name = os.path.split(os.path.abspath(path))
        real_folder = folders.get(folder)
        if real_folder is None:
            real_folder = folders[folder] = os.path.realpath(folder)
        real = os.path.join(real_folder, name)
    if not reachable(real, root):
        fail(f"the image is a symlink to {real}, outside the dataset folder; it is not read", shown,
             "image data", code="outside-root", fix="copy the image into the dataset folder, or remove the link")

FIX_NAME = "name files relative to the dataset folder (e.g. images/0001.jpg), and keep them inside it"


class SourceFolder:
    def __init__(self, root: Path, annotations: Path | None = None) -> None:
        self.root = os.path.abspath(root)
        self._real_roots = [os.path.realpath(root)]
        if annotations is not None:
            self._real_roots.append(os.path.realpath(annotations))

    def contains(self, path: str | os.PathLike[str]) -> bool:
        """``path`` (absolute, or relative to the working directory) is lexically inside SRC."""
        return _inside(os.path.normpath(os.path.abspath(path)), self.root)

    def readable(self, path: str | os.PathLike[str]) -> bool:
        """After resolving symlinks, ``path`` is inside SRC (or the given ``--annotations``)."""
        real = os.path.realpath(path)
        return any(reachable(real, r) for r in self._real_roots)

    def check_readable(self, path: str | os.PathLike[str], shown: str, location: str = "") -> None:
        """Refuse to open ``path`` when a symlink (or ``..``) takes it outside SRC."""
        if not self.readable(path):
            fail("this file leads outside the dataset folder (through a symlink or ..); it is not read",
                 shown, location, code="outside-root",
                 fix="copy the file into the dataset folder instead of linking to it")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
