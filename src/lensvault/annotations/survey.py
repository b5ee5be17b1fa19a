"""One walk of a dataset folder, and cheap looks at file heads: which annotation files are where.

Detection and the importers that find their files by content (VOC XML, labelme JSON,
COCO JSON of any name) share it. Nothing here reads a whole file: a head of a few KB
says what a file is, and only a sample of each folder's files is looked at.
Symlinks whose target is outside the root (and the folders the caller trusts, see
``confine.trusting``) are listed apart and never opened.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lensvault.annotations._common import IMAGE_SUFFIXES, read_head
from lensvault.annotations.confine import reachable

__all__ = ["Folder", "Survey", "inside", "sniff_json", "sniff_xml"]

# Enough files per folder to tell what the folder holds; labelme and VOC folders are uniform.
SAMPLE = 20
_XML_HEAD = 8192
_JSON_HEAD = 65536

# What a file is, from its head (``sniff_xml``, ``sniff_json``); None: cannot tell.
Sniff = Callable[[Path], str | None]


@dataclass
class Folder:
    path: Path
    xml: list[Path] = field(default_factory=list)
    json: list[Path] = field(default_factory=list)
    txt: list[Path] = field(default_factory=list)
    png: list[Path] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)


@dataclass
class Survey:
    root: Path
    folders: list[Folder]
    outside: list[Path]  # symlinks leading out of the root: never read
    _seen: dict[tuple[Sniff, Path], str | None] = field(default_factory=dict, repr=False)  # what each sniff said

    @classmethod
    def of(cls, root: Path) -> Survey:
        root = Path(root)
        real_root = os.path.realpath(root)
        folders: list[Folder] = []
        outside: list[Path] = []
        stack = [root]
        visited = {real_root}
        while stack:
            d = stack.pop()
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError:
                continue
            folder = Folder(d)
            subdirs = []
            for e in entries:
                if e.name.startswith(".") or e.name == "__pycache__":
                    continue
                try:
                    is_dir = e.is_dir(follow_symlinks=False)
                    link = e.is_symlink()
                except OSError:
                    continue
                if is_dir:
                    subdirs.append(Path(e.path))
                    continue
                path = Path(e.path)
                if link:
                    # Followed like the snapshot's walk does: only inside the root, once.
                    target = os.path.realpath(path)
                    if not reachable(target, real_root):
                        outside.append(path)
                        continue
                    if os.path.isdir(target):
                        if target not in visited:
                            visited.add(target)
                            subdirs.append(path)
                        continue
                suffix = os.path.splitext(e.name)[1].lower()
                if suffix == ".xml":
                    folder.xml.append(path)
                elif suffix == ".json":
                    folder.json.append(path)
                elif suffix == ".txt":
                    folder.txt.append(path)
                if suffix == ".png":
                    folder.png.append(path)
                if suffix in IMAGE_SUFFIXES:
                    folder.images.append(path)
            folders.append(folder)
            stack.extend(reversed(subdirs))
        folders.sort(key=lambda f: f.path.as_posix())
        return cls(root, folders, outside)

    def where(self, kind: str, sniff: Sniff, wanted: str) -> list[Folder]:
        """Folders whose sampled ``kind`` files (xml/json) are mostly ``wanted`` by ``sniff``."""
        out = []
        for f in self.folders:
            files: list[Path] = getattr(f, kind)
            if not files:
                continue
            votes: dict[str, int] = {}
            for p in files[:SAMPLE]:
                key = (sniff, p)
                if key not in self._seen:
                    self._seen[key] = sniff(p)
                what = self._seen[key]
                if what is not None:
                    votes[what] = votes.get(what, 0) + 1
            if votes.get(wanted, 0) and votes[wanted] >= max(votes.values()):
                out.append(f)
        return out


def inside(real_root: str, real_path: str) -> bool:
    return real_path == real_root or real_path.startswith(real_root.rstrip(os.sep) + os.sep)


_XML_PROLOG = re.compile(rb"^(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)*", re.DOTALL)
_XML_ROOT = re.compile(rb"<([A-Za-z_][\w.\-]*)")


def sniff_xml(path: Path) -> str | None:
    """"voc", "labelme-xml" (MIT LabelMe: also <annotation>, but polygons), "other", or None
    (empty, or cannot tell from the head)."""
    head = read_head(path, _XML_HEAD)  # regular files only: a pipe would block
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if not head.strip():
        return None
    prolog = _XML_PROLOG.match(head)  # matches always (perhaps nothing)
    m = _XML_ROOT.match(head, prolog.end() if prolog else 0)
    if m is None:
        return "other"
    if m.group(1) != b"annotation":
        return "other"
    if b"<bndbox" in head:
        return "voc"
    if b"<polygon" in head:
        return "labelme-xml"
    if b"<size" in head or b"<filename" in head:
        return "voc"  # a VOC file of an image without objects
    return None


_COCO_LISTS = re.compile(rb'"(images|annotations|categories)"\s*:\s*\[')
_LABELME = re.compile(rb'"shapes"\s*:\s*\[')


def sniff_json(path: Path) -> str | None:
    """"coco", "labelme", "createml", "other" or None (empty), from the first 64 KB only."""
    head = read_head(path, _JSON_HEAD).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        return None
    if head[:1] == b"[":
        return "createml" if b'"image"' in head and b'"annotations"' in head else "other"
    if head[:1] != b"{":
        return "other"
    if _LABELME.search(head) and (b'"imagePath"' in head or b'"version"' in head or b'"label"' in head):
        return "labelme"
    if b'"imagePath"' in head and b'"imageData"' in head:
        return "labelme"  # keys sorted, or "shapes" after a long imageData: labelme's own keys say it
    keys = {m.group(1) for m in _COCO_LISTS.finditer(head)}
    if b"images" in keys or {b"annotations", b"categories"} <= keys:
        return "coco"
    return "other"
