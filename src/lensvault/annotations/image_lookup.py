"""Find the image an annotation file means, inside the dataset root only.

Annotation files name their image loosely: VOC's ``<filename>`` (plus a ``<folder>``
that is often a stale machine folder), labelme's ``imagePath`` (often ``..\\images\\x.jpg``
from Windows). Importers try the places their format implies, in order, then fall back
to the file name anywhere under the root — which must then be unique: two candidates
are an error naming both, never a guess. A name never leads outside the root: absolute
paths and ``..`` are reduced to their last part, and a symlink out of the root is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from lensvault.annotations._common import DirIndex, fail, rel
from lensvault.annotations.confine import reachable
from lensvault.annotations.survey import Survey

__all__ = ["ImageLookup", "clean_name"]

# A candidate with one of these suffixes is an annotation file, never the image (labelme
# has been seen writing the JSON's own name into imagePath).
_NOT_IMAGES = frozenset({".json", ".xml", ".txt", ".yaml", ".yml", ".csv", ".npy"})


def clean_name(name: str) -> tuple[PurePosixPath | None, str]:
    """(relative path, or None if the name is absolute or climbs with ``..``; last part)."""
    text = name.replace("\\", "/").strip()
    path = PurePosixPath(text)
    base = path.name
    if not base:
        return None, ""
    absolute = text.startswith("/") or (len(text) > 1 and text[1] == ":")
    if absolute or ".." in path.parts:
        return None, base
    return path, base


class ImageLookup:
    def __init__(self, root: Path, survey: Survey) -> None:
        self.root = Path(root)
        self.real_root = os.path.realpath(root)
        self.survey = survey
        self.dirs = DirIndex()
        self._names: dict[str, list[Path]] | None = None
        self._lower: dict[str, list[Path]] = {}
        self._stems: dict[str, list[Path]] = {}

    def first(self, candidates: Iterable[Path | str], shown: str, where: str) -> Path | None:
        """The first candidate that exists as a file inside the root; a symlink out is an error."""
        for c in candidates:
            c = str(c)
            if os.path.splitext(c)[1].lower() in _NOT_IMAGES or not self.dirs.exists_str(c):
                continue
            real = os.path.realpath(c)
            if not reachable(real, self.real_root):
                fail(f"the image {rel(Path(c), self.root)} is a symlink to {real}, outside the dataset folder", shown,
                     where, fix="copy the image into the dataset folder, or remove the link", code="outside-root")
            if os.path.isfile(real):
                return Path(os.path.normpath(c))
        return None

    def anywhere(self, name: str, shown: str, where: str, *, what: str) -> Path | None:
        """The one image under the root called ``name`` (exact, else ignoring case); an
        ambiguous name is a located error naming the candidates."""
        names = self._index()
        found = names.get(name) or self._lower.get(name.lower()) or []
        return self._one(found, shown, where, f"{what} {name!r}")

    def by_stem(self, stem: str, shown: str, where: str, *, what: str) -> Path | None:
        """The one image under the root whose name without suffix is ``stem``."""
        self._index()
        return self._one(self._stems.get(stem, []), shown, where, f"{what} {stem!r}")

    def _one(self, found: list[Path], shown: str, where: str, what: str) -> Path | None:
        if len(found) > 1:
            names = [rel(p, self.root) for p in found]
            listed = ", ".join(names[:10]) + (f" … and {len(names) - 10} more" if len(names) > 10 else "")
            fail(f"{what} matches {len(found)} images under the dataset folder: {listed}", shown, where,
                 fix="make the annotation name the image by its path, or rename one of the images so the name "
                     "is unique", code="ambiguous-image")
        return found[0] if found else None

    def _index(self) -> dict[str, list[Path]]:
        """Image file name → its paths (and ``_lower``, ``_stems``), built on first use."""
        if self._names is not None:
            return self._names
        names: dict[str, list[Path]] = {}
        for folder in self.survey.folders:
            for p in folder.images:
                names.setdefault(p.name, []).append(p)
                self._lower.setdefault(p.name.lower(), []).append(p)
                self._stems.setdefault(p.stem, []).append(p)
        self._names = names
        return names
