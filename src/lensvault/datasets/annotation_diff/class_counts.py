"""Box counts per class and per split in each version, with the change: the numbers a reviewer
checks first (did the rare class lose boxes? did the test split gain some?)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lensvault.datasets.annotation_diff.changes import NO_SPLIT
from lensvault.datasets.annotation_diff.classes import class_name

if TYPE_CHECKING:
    from lensvault.datasets.vision_tables import VisionTables


def per_class_counts(a: VisionTables, b: VisionTables) -> dict[str, dict[str, Any]]:
    """``{class: {a, b, delta, splits: {split: {a, b, delta}}}}``, every class of either class map listed."""
    out: dict[str, dict[str, Any]] = {}
    for side, t in (("a", a), ("b", b)):
        for (name, split), n in _class_split_counts(t).items():
            entry = out.setdefault(name, {"a": 0, "b": 0, "delta": 0, "splits": {}})
            entry[side] += n
            s = entry["splits"].setdefault(split, {"a": 0, "b": 0, "delta": 0})
            s[side] += n
        for name in (t.classes.names if t.classes is not None else ()):
            out.setdefault(name, {"a": 0, "b": 0, "delta": 0, "splits": {}})
    for entry in out.values():
        entry["delta"] = entry["b"] - entry["a"]
        for s in entry["splits"].values():
            s["delta"] = s["b"] - s["a"]
        entry["splits"] = dict(sorted(entry["splits"].items()))
    return dict(sorted(out.items()))


def _class_split_counts(t: VisionTables) -> dict[tuple[str, str], int]:
    import pyarrow as pa
    import pyarrow.compute as pc

    ann = t.annotations
    if ann.num_rows == 0:
        return {}
    row = pc.index_in(ann.column("image"), value_set=t.images.column("path"))
    split = pc.take(t.images.column("split"), row) if "split" in t.images.column_names else None
    split = pc.fill_null(split, NO_SPLIT) if split is not None else pa.array([NO_SPLIT] * ann.num_rows)
    # No Arrow thread pool: its threads, alive at exit, can abort the process (files_table.read).
    grouped = (pa.table({"c": ann.column("class_id"), "s": split})
               .group_by(["c", "s"], use_threads=False).aggregate([("c", "count")]))
    out: dict[tuple[str, str], int] = {}
    for c, s, n in zip(grouped["c"].to_pylist(), grouped["s"].to_pylist(), grouped["c_count"].to_pylist()):
        key = (class_name(t.classes, c), s)
        out[key] = out.get(key, 0) + n
    return out
