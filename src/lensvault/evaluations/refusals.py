"""Refusing a predictions file: every kind of bad prediction found, each with its first offending
values, in one error (the classification readers, single- and multi-label, share it)."""

from __future__ import annotations

from collections.abc import Sequence

from lensvault.errors import InputError

__all__ = ["first", "refuse_predictions"]

_SHOW = 5


def first(values: Sequence[str]) -> str:
    """The first few values, and how many more there are."""
    values = list(values)
    return ", ".join(values[:_SHOW]) + (f" … and {len(values) - _SHOW} more" if len(values) > _SHOW else "")


def refuse_predictions(where: str, fix: str, *, unknown_images: Sequence[str] = (), unknown_classes: Sequence[str] = (),
                       bad_scores: Sequence[str] = (), unscored: Sequence[str] = (), twice: Sequence[str] = (),
                       repeated: Sequence[str] = (), malformed: Sequence[str] = ()) -> None:
    """Raise one InputError naming every problem found (nothing when there is none)."""
    problems = []
    if unknown_images:
        problems.append(f"{len(unknown_images)} prediction(s) name images the dataset does not have: "
                        + first(sorted(set(unknown_images))))
    if unknown_classes:
        problems.append(f"{len(unknown_classes)} prediction(s) name unknown classes: "
                        + first(sorted(set(unknown_classes))))
    if bad_scores:
        problems.append(f"{len(bad_scores)} score(s) are not numbers in [0, 1]: {first(bad_scores)}")
    if unscored:
        problems.append(f"{len(unscored)} prediction(s) lack a score for some class: {first(unscored)}")
    if twice:
        problems.append(f"{len(twice)} image(s) have more than one prediction: {first(sorted(set(twice)))}")
    if repeated:
        problems.append(f"{len(repeated)} class(es) named twice for one image: {first(repeated)}")
    if malformed:
        problems.append(f"{len(malformed)} malformed prediction(s): {first(malformed)}")
    if problems:
        raise InputError("; ".join(problems), where=where, fix=fix)
