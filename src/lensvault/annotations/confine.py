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
  Images are not checked here: only their size is read, as a viewer would, and a snapshot's
  folder walk refuses links that lead outside SRC.

The ``--annotations`` path the user passes is trusted as given (it may live outside SRC);
files under it may be read too.
"""

from __future__ import annotations

import os
from pathlib import Path

from lensvault.annotations._common import fail

__all__ = ["SourceFolder"]

FIX_NAME = "name files relative to the dataset folder (e.g. images/0001.jpg), and keep them inside it"


class SourceFolder:
    def __init__(self, root: Path, annotations: Path | None = None) -> None:
        self.root = os.path.abspath(root)
        self._real_roots = [os.path.realpath(root)]
        if annotations is not None:
            self._real_roots.append(os.path.realpath(annotations))

    def contains(self, path: str | os.PathLike) -> bool:
        """``path`` (absolute, or relative to the working directory) is lexically inside SRC."""
        return _inside(os.path.normpath(os.path.abspath(path)), self.root)

    def readable(self, path: str | os.PathLike) -> bool:
        """After resolving symlinks, ``path`` is inside SRC (or the given ``--annotations``)."""
        real = os.path.realpath(path)
        return any(_inside(real, r) for r in self._real_roots)

    def check_readable(self, path: str | os.PathLike, shown: str, location: str = "") -> None:
        """Refuse to open ``path`` when a symlink (or ``..``) takes it outside SRC."""
        if not self.readable(path):
            fail("this file leads outside the dataset folder (through a symlink or ..); it is not read",
                 shown, location, code="outside-root",
                 fix="copy the file into the dataset folder instead of linking to it")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
