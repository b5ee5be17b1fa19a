"""Properties of diff_vision under random edits of a slice of BCCD (hypothesis)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lensvault.datasets.annotation_diff import diff_vision

from .conftest import image_paths, version
from .test_annotation_diff import renumber


@pytest.fixture(scope="module")
def small(bccd):
    keep = image_paths(bccd)[:12]
    images = bccd.images.filter(pc.is_in(bccd.images["path"], pa.array(keep)))
    annotations = bccd.annotations.filter(pc.is_in(bccd.annotations["image"], pa.array(keep)))
    return version(bccd, "small@1.0.0", images=images, annotations=annotations)


edit = st.tuples(
    st.sampled_from(["shift", "relabel", "delete", "add", "difficult"]),
    st.integers(min_value=0, max_value=10_000),
    st.floats(min_value=-1.5, max_value=1.5, allow_nan=False),
)


def apply_edits(tables, edits):
    rows = tables.annotations.to_pylist()
    for op, at, f in edits:
        if not rows:
            break
        r = at % len(rows)
        box = dict(rows[r])
        if op == "shift":
            box["x"] += f * box["w"]
            box["y"] -= f * box["h"] / 2
            rows[r] = box
        elif op == "relabel":
            box["class_id"] = (box["class_id"] + 1 + (at % 2)) % 3
            rows[r] = box
        elif op == "delete":
            del rows[r]
        elif op == "add":
            box["x"] += 37.5 * f
            box["w"] *= 1 + abs(f)
            rows.insert(r + 1, box)
        else:
            box["difficult"] = not box["difficult"]
            rows[r] = box
    rows.sort(key=lambda b: b["image"])
    table = pa.Table.from_pylist(rows, schema=tables.annotations.schema)
    return version(tables, "small@edited", annotations=renumber(table))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(edit, max_size=25))
def test_every_box_is_accounted_for_and_the_diff_is_symmetric(small, edits):
    b = apply_edits(small, edits)
    fwd, back = diff_vision(small, b), diff_vision(b, small)
    f = fwd.annotations
    matched = f.unchanged + len(f.moved) + len(f.relabeled) + len(f.attributes_changed)
    assert matched + len(f.removed) == small.annotations.num_rows
    assert matched + len(f.added) == b.annotations.num_rows
    r = back.annotations
    assert (len(f.added), len(f.removed)) == (len(r.removed), len(r.added))
    assert (len(f.moved), len(f.relabeled), len(f.attributes_changed), f.unchanged) == (
        len(r.moved), len(r.relabeled), len(r.attributes_changed), r.unchanged)
    for change in f.moved + f.relabeled:
        assert change.iou >= 0.5
    for change in f.moved:
        assert change.old_class == change.new_class
    assert all(c["delta"] == -back.per_class[n]["delta"] for n, c in fwd.per_class.items())
    # Class counts move only through added, removed and relabeled boxes.
    for name, counts in fwd.per_class.items():
        explained = (sum(x.new_class == name for x in f.added) - sum(x.old_class == name for x in f.removed)
                     + sum(x.new_class == name for x in f.relabeled) - sum(x.old_class == name for x in f.relabeled))
        assert counts["delta"] == explained, name
    if not edits:
        assert fwd.suggested_bump is None
    assert fwd.suggested_bump in (None, "patch")
    assert (fwd.suggested_bump is None) == (f.changed_boxes == 0)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(edit, max_size=25))
def test_a_version_diffed_with_itself_is_empty(small, edits):
    b = apply_edits(small, edits)
    d = diff_vision(b, version(b, "copy"))
    assert not d.changed and d.suggested_bump is None
    assert d.annotations.unchanged == b.annotations.num_rows


def test_images_added_one_way_are_removed_the_other_way(bccd):
    keep = image_paths(bccd)[:30]
    a = version(bccd, "a", images=bccd.images.filter(pc.is_in(bccd.images["path"], pa.array(keep))),
                annotations=bccd.annotations.filter(pc.is_in(bccd.annotations["image"], pa.array(keep))))
    fwd, back = diff_vision(a, bccd), diff_vision(bccd, a)
    assert fwd.images.added == back.images.removed and len(fwd.images.added) == 17
    assert fwd.annotations.on_added_images == back.annotations.on_removed_images
    assert (fwd.suggested_bump, back.suggested_bump) == ("minor", "minor")
    assert fwd.images.added_by_split == back.images.removed_by_split
