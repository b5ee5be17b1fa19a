"""Which semantic-version bump a dataset change needs, and checking an explicit version.

Policy (see docs in ``bump_reasons``):

MAJOR — consumers break: a class removed, renamed or moved to another id (a model's
        label map now points at the wrong or a missing name), or an annotation kind
        that was there is gone (e.g. bbox → polygon: loaders expect other fields).
MINOR — compatible, but results on the dataset are no longer comparable: images added
        or removed (a removed image breaks exact reproduction but no consumer's schema),
        classes added, a new annotation kind next to the old ones (every annotation
        keeps its bbox, so bbox readers still work), images moved between splits
        (evaluation sets change), images resized.
PATCH — fixes on existing images: boxes moved, relabeled, added or removed, attribute
        changes, an image's bytes re-encoded under the same path, tags or EXIF
        orientation changed.
None  — nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from lensvault.errors import VersionRuleError
from lensvault.refs import SemVer

if TYPE_CHECKING:
    from lensvault.datasets.annotation_diff import AnnotationDiff

__all__ = ["BUMP_ORDER", "bump_rank", "bump_reasons", "check_explicit_version", "next_version",
           "required_bump"]

BUMP_ORDER: tuple[str, ...] = ("patch", "minor", "major")


def bump_rank(kind: str | None) -> int:
    """0 for None, then 1, 2, 3 for patch, minor, major."""
    if kind is None:
        return 0
    try:
        return BUMP_ORDER.index(kind) + 1
    except ValueError:
        raise ValueError(f"unknown bump kind {kind!r}: use one of {', '.join(BUMP_ORDER)}") from None


def _n(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "es" if word.endswith("x") else "s")


def bump_reasons(diff: AnnotationDiff) -> list[tuple[str, str]]:
    """(kind, reason) for every change in an ``AnnotationDiff``, most severe first."""
    out: list[tuple[str, str]] = []
    c, im, ann = diff.classes, diff.images, diff.annotations
    out += [("major", f"removes class '{x['name']}' (id {x['id']})") for x in c.removed]
    out += [("major", f"renames class {x['id']} from '{x['old']}' to '{x['new']}'") for x in c.renamed]
    out += [("major", f"moves class '{x['name']}' from id {x['old_id']} to {x['new_id']}") for x in c.reindexed]
    gone = [k for k in ann.kinds_a if k not in ann.kinds_b]
    new = [k for k in ann.kinds_b if k not in ann.kinds_a]
    if gone:
        out.append(("major", (f"changes annotation types from {', '.join(ann.kinds_a)} "
                              f"to {', '.join(ann.kinds_b) or 'none'}")))
    out += [("minor", f"adds class '{x['name']}' (id {x['id']})") for x in c.added]
    if new and not gone:
        out.append(("minor", f"adds annotation type{'s' if len(new) > 1 else ''} {', '.join(new)}"))
    if im.added:
        out.append(("minor", f"adds {_n(len(im.added), 'image')}"))
    if im.removed:
        out.append(("minor", f"removes {_n(len(im.removed), 'image')}"))
    if diff.split_moves:
        out.append(("minor", f"moves {_n(len(diff.split_moves), 'image')} between splits"))
    if im.resized:
        out.append(("minor", f"resizes {_n(len(im.resized), 'image')}"))
    unit = ann.unit  # box, mask, polygon, keypoints annotation, image label
    for attr, verb in (("moved", "moves"), ("relabeled", "relabels"), ("added", "adds"),
                       ("removed", "removes"), ("attributes_changed", "changes attributes of")):
        if getattr(ann, attr):
            out.append(("patch", f"{verb} {_n(len(getattr(ann, attr)), unit)}"))
    for attr, verb in (("reencoded", "re-encodes"), ("reoriented", "re-orients"), ("retagged", "re-tags")):
        if getattr(im, attr):
            out.append(("patch", f"{verb} {_n(len(getattr(im, attr)), 'image')}"))
    return out


def required_bump(diff: AnnotationDiff) -> str | None:
    """The smallest bump that honestly describes ``diff`` (None when nothing changed)."""
    reasons = bump_reasons(diff)
    return max((k for k, _ in reasons), key=bump_rank, default=None)


def next_version(prev: str | None, kind: str | None) -> str:
    """The version after ``prev`` for a ``kind`` bump; the first version is 1.0.0."""
    if prev is None:
        return "1.0.0"
    if kind is None:
        raise VersionRuleError(
            f"nothing changed since {prev}: there is no next version to compute",
            where=prev, fix="snapshot only when the data changed, or pass an explicit --bump")
    bump_rank(kind)
    return str(SemVer.parse(prev).bump(kind))


def check_explicit_version(prev: str | None, new: str, required: str | None, *, force: bool,
                           name: str | None = None, reasons: Iterable[tuple[str, str] | str] = ()) -> str | None:
    """Refuse an explicit ``new`` version that is not after ``prev`` or under-states the change.

    Returns None when ``new`` is fine, or (with ``force``) a warning the caller records with the
    version. A version that does not increase is refused even with ``force``: versions are
    ordered labels and an old number must never be reused. ``reasons`` (``bump_reasons(diff)``,
    or plain strings) make the message name the change that needs the larger bump.
    """
    where = f"{name}@{new}" if name else new
    new_v = SemVer.parse(new)
    if prev is None:
        return None
    prev_v = SemVer.parse(prev)
    given = prev_v.bump_kind_to(new_v)
    if given is None:
        raise VersionRuleError(
            f"{where} is not greater than the latest version {prev}",
            where=where,
            fix=f"use a version after {prev}, e.g. --version {next_version(prev, required or 'patch')}, "
                f"or --bump auto")
    if required is None or bump_rank(given) >= bump_rank(required):  # (rank 0: None)
        return None
    needed = next_version(prev, required)
    texts = [r[1] if isinstance(r, tuple) else r for r in reasons
             if not isinstance(r, tuple) or r[0] == required]
    why = f"the change {' and '.join(texts[:2])}" if texts else "the change"
    what = (f"{where} is a {given.upper()} bump but {why}, which needs {required.upper()} ({needed})")
    if force:
        return f"{what}; recorded anyway with --force"
    raise VersionRuleError(
        what, where=where, given=given, required=required, suggested=needed,
        fix=f"use --version {needed} or --bump auto, or --force to record an under-stated bump")
