"""Bad images: every one an import meets is collected, then one policy decides for all.

Importers record images through :func:`image_info`; while ``collecting()`` is active
(``importers.load`` sets it up) a bad image is noted here instead of stopping the import,
so one run reports every bad image together, whatever the mode:

    warn (default)  partly readable images (truncated, damaged, too large to decode) are
                    kept with a located warning; an image no decoder can open is an error
    fail            every bad image is an error (``--strict`` implies it)
    skip            bad images and their annotations are left out of the images table and
                    listed in the manifest (``source.skipped_images``) with the reason

A skipped image's file stays in the version's files, as every file under SRC does: the
version records the folder; the images table records what the dataset is made of.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lensvault.annotations._common import fail, fail_all
from lensvault.annotations.confine import check_image
from lensvault.annotations.model import Finding, SkippedImage

if TYPE_CHECKING:
    import pyarrow as pa

    from lensvault.annotations.validate import Origin
    from lensvault.media import ImageReport

__all__ = ["BAD_IMAGE_MODES", "BadImages", "collecting", "current", "finding_for", "image_info", "image_infos"]

BAD_IMAGE_MODES = ("warn", "fail", "skip")

# Readable enough to keep in "warn" mode: the header gave the size, so boxes can be checked.
_KEEPABLE = frozenset({"truncated-image", "damaged-image", "image-too-large"})

_WHAT = {
    "unreadable-image": "no decoder can read this image",
    "truncated-image": "decoders read this image only partly",
    "damaged-image": "decoders fail on this image's data",
    "image-too-large": "this image is too large to decode safely (possible decompression bomb)",
}


def finding_for(key: str, report: ImageReport, level: str = "warning") -> Finding:
    """The located finding for a bad image (``report`` is a ``media.ImageReport``)."""
    problem = report.problem
    assert problem is not None, "a finding is for a bad image"
    return Finding(level, problem, f"{_WHAT.get(problem, problem)}: {report.detail}", key, "image data")


@dataclass
class BadImages:
    """The bad images of one import, by image key (path relative to the dataset root)."""

    found: dict[str, Finding] = field(default_factory=dict)
    sized: set[str] = field(default_factory=set)  # keys whose width and height are known

    def add(self, key: str, finding: Finding, *, size_known: bool) -> None:
        self.found.setdefault(key, finding)
        if size_known:
            self.sized.add(key)

    def __bool__(self) -> bool:
        return bool(self.found)

    def keepable(self, key: str) -> bool:
        return key in self.sized and self.found[key].code in _KEEPABLE


_current: ContextVar[BadImages | None] = ContextVar("lensvault_bad_images", default=None)


@contextmanager
def collecting() -> Iterator[BadImages]:
    bad = BadImages()
    token = _current.set(bad)
    try:
        yield bad
    finally:
        _current.reset(token)


def current() -> BadImages | None:
    return _current.get()


def image_info(path: Path | bytes, display: str | None = None) -> tuple[int, int, int]:
    """(width, height, EXIF orientation) of an image, judged by decoders (``media.inspect_image``).

    While ``bad_images.collecting()`` is active (every ``importers.load``), a bad image is
    recorded there and the import goes on, so all bad images are reported together; the
    size returned is the header's, or (0, 0) when no decoder can read even that. Outside
    it, a bad image raises the located error at once.
    """
    from lensvault.media import inspect_image

    where = display or str(path)
    if not isinstance(path, bytes):
        _admit(path, where)
    return _judged(inspect_image(path), where)


def image_infos(items: list[tuple[str, str]]) -> list[tuple[int, int, int]]:
    """``image_info`` for many (path, display) pairs at once, the decoders run in worker processes.

    Opening an image costs ~50 µs of Python in Pillow, one core's worth at 20,000 images;
    the paths are admitted here first (nothing outside SRC or that is no regular file is
    opened by any process), and the reports are settled here in order, exactly as one
    ``image_info`` call each would.
    """
    from lensvault.parallel import map_chunks

    for path, where in items:
        _admit(path, where)
    reports = [r for part in map_chunks(_inspect_part, [path for path, _ in items]) for r in part]
    return [_judged(report, where) for report, (_, where) in zip(reports, items)]


def _inspect_part(paths: list[str]) -> list[ImageReport]:
    from lensvault.media import inspect_image

    return [inspect_image(p) for p in paths]


def _judged(report: ImageReport, where: str) -> tuple[int, int, int]:
    if report.problem is None:
        assert report.width is not None and report.height is not None, "a decoded image has a size"
        return report.width, report.height, report.orientation
    collector = current()
    if collector is None:
        finding = finding_for(where, report, "error")
        fail(finding.message, where, fix="re-copy or re-download the image, or remove it from the dataset",
             code=finding.code)
    size_known = bool(report.width and report.height)
    collector.add(where, finding_for(where, report), size_known=size_known)
    if report.width and report.height:  # size_known
        return report.width, report.height, report.orientation
    return 0, 0, 1


def _admit(path: str | os.PathLike[str], where: str) -> None:
    """Refuse, before any byte is read, an image path that leads outside SRC or is no regular file."""
    try:
        st = os.lstat(path)
        link = stat.S_ISLNK(st.st_mode)
        check_image(path, where, is_link=link)  # a symlink out of SRC is not read, whatever the format
        if link:
            st = os.stat(path)
    except OSError:
        return  # missing or unreadable: the decoder says which
    # Opening a pipe named x.jpg waits for a writer forever: not an image, and not read.
    if not stat.S_ISREG(st.st_mode):
        fail("not a regular file (a pipe, socket or device) with an image name", where,
             fix="remove it from the dataset folder", code="unreadable-image")


def settle(bad: BadImages, mode: str, images: pa.Table, annotations: pa.Table, origin: Origin, *, source: str
           ) -> tuple[pa.Table, pa.Table, Origin, list[Finding], list[SkippedImage]]:
    """Apply ``mode`` to the bad images of one import, all at once.

    ``images``/``annotations`` are the Arrow tables, ``origin(row)`` locates annotation
    rows. Returns (images, annotations, origin, findings, skipped); raises one
    ``AnnotationError`` naming every bad image when the mode says they are errors.
    """
    if mode not in BAD_IMAGE_MODES:
        fail_all(f"unknown --on-bad-image mode {mode!r}", source, [],
                 fix=f"use one of: {', '.join(BAD_IMAGE_MODES)}")
    if not bad:
        return images, annotations, origin, [], []
    keys = sorted(bad.found)
    if mode == "skip":
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        drop = pa.array(keys, pa.string())
        images = images.filter(pc.invert(pc.is_in(images["path"], value_set=drop)))
        gone = pc.is_in(annotations["image"], value_set=drop).to_numpy(zero_copy_only=False)
        kept_rows = np.flatnonzero(~gone)
        annotations = annotations.take(pa.array(kept_rows, pa.int64()))
        inner = origin

        def kept_origin(row: int) -> tuple[str, str]:
            return inner(int(kept_rows[row]))

        skipped: list[SkippedImage] = [{"path": k, "code": bad.found[k].code, "reason": bad.found[k].message} for k in keys]
        findings = [Finding("info", f.code, f"{f.message} — left out (--on-bad-image skip)", f.file, f.location)
                    for f in (bad.found[k] for k in keys)]
        return images, annotations, kept_origin, findings, skipped
    errors = [k for k in keys if mode == "fail" or not bad.keepable(k)]
    if errors:
        listed = [Finding("error" if k in errors else "warning", bad.found[k].code, bad.found[k].message,
                          k, bad.found[k].location) for k in keys]
        counts: dict[str, int] = {}
        for f in listed:
            counts[f.code] = counts.get(f.code, 0) + 1
        summary = ", ".join(f"{n} {code}" for code, n in sorted(counts.items()))
        first = bad.found[errors[0]]
        keep_hint = "" if mode == "fail" else " (partly readable ones are kept with a warning by default)"
        fail_all(f"{len(keys)} bad image(s) in {source} ({summary}); first: {errors[0]}: {first.message}",
                 f"{errors[0]}, image data", listed,
                 fix="re-copy or re-download the images listed in details.findings, or pass "
                     f"--on-bad-image skip to leave them out{keep_hint}")
    return images, annotations, origin, [bad.found[k] for k in keys], []
