"""Classes compared through a correspondence, not raw ids: a class that keeps its name (even
under a new id) or keeps its id under a new name is the same class, so a rename or reindex is
reported once and not as thousands of relabeled boxes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from lensvault.datasets.annotation_diff.changes import ClassChanges, ClassEntry, ClassReindex, ClassRename

if TYPE_CHECKING:
    from lensvault.annotations.model import ClassMap

# A class as both sides know it: ("class", id in b), ("gone", id in a) or ("unknown", raw id).
ClassCode: TypeAlias = tuple[str, int]


def compare_classes(ca: ClassMap | None, cb: ClassMap | None
                    ) -> tuple[ClassChanges, Callable[[int], ClassCode], Callable[[int], ClassCode]]:
    """ClassChanges plus two functions mapping each side's class id to a shared code."""
    a_pairs = list(zip(ca.ids, ca.names)) if ca is not None else []
    b_pairs = list(zip(cb.ids, cb.names)) if cb is not None else []
    a_names = {n: i for i, n in a_pairs}
    b_names = {n: i for i, n in b_pairs}
    b_ids = dict(b_pairs)

    renamed: list[ClassRename] = []
    reindexed: list[ClassReindex] = []
    removed: list[ClassEntry] = []
    added: list[ClassEntry] = []
    a_code: dict[int, ClassCode] = {}
    b_code: dict[int, ClassCode] = {i: ("class", i) for i, _ in b_pairs}
    claimed: set[int] = set()
    for i, name in a_pairs:
        if name in b_names:
            a_code[i] = ("class", b_names[name])
            claimed.add(b_names[name])
            if b_names[name] != i:
                reindexed.append({"name": name, "old_id": i, "new_id": b_names[name]})
    for i, name in a_pairs:
        if i in a_code:
            continue
        # Same id, new name that was not already an a-class: the class was renamed.
        if i in b_ids and i not in claimed and b_ids[i] not in a_names:
            a_code[i] = ("class", i)
            claimed.add(i)
            renamed.append({"id": i, "old": name, "new": b_ids[i]})
        else:
            a_code[i] = ("gone", i)
            removed.append({"id": i, "name": name})
    for i, name in b_pairs:
        if i not in claimed:
            added.append({"id": i, "name": name})

    # Ids missing from a class map still need stable codes; equal raw ids match.
    def code_a(i: int) -> ClassCode:
        return a_code.get(i, ("unknown", i))

    def code_b(i: int) -> ClassCode:
        return b_code.get(i, ("unknown", i))

    changes = ClassChanges(tuple(added), tuple(removed), tuple(renamed), tuple(reindexed))
    return changes, code_a, code_b


def class_name(classes: ClassMap | None, class_id: int) -> str:
    if classes is None:
        return f"#{class_id}"
    try:
        return classes.name_of(class_id)
    except (KeyError, AttributeError):
        return f"#{class_id}"
