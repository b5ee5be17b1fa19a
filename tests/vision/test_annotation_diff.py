"""diff_vision on real BCCD annotations, edited the way people edit datasets."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lensvault.annotations.model import ClassMap
from lensvault.datasets.annotation_diff import diff_vision
from lensvault.datasets.bump import bump_reasons

from .conftest import edit_rows, image_paths, rows_of_image, set_column, version


def renumber(annotations: pa.Table) -> pa.Table:
    """Index boxes 0..n-1 within each image in table order, as an importer would."""
    seen: dict[str, int] = {}
    index = []
    for image in annotations.column("image").to_pylist():
        index.append(seen.get(image, 0))
        seen[image] = index[-1] + 1
    return set_column(annotations, "index", index)


def drop_rows(table: pa.Table, rows) -> pa.Table:
    mask = [True] * table.num_rows
    for r in rows:
        mask[r] = False
    return table.filter(pa.array(mask))


def test_identical_versions_have_no_changes(bccd):
    d = diff_vision(bccd, version(bccd))
    assert not d.changed
    assert d.suggested_bump is None
    assert d.annotations.unchanged == bccd.annotations.num_rows == 898
    assert d.annotations.changed_boxes == 0
    assert d.summary().startswith("No changes between bccd@1.0.0 and bccd@1.0.1")
    assert d.per_class["RBC"]["delta"] == 0


def test_moved_box_is_reported_with_old_and_new_bbox(bccd):
    row = 7
    old = bccd.annotations.slice(row, 1).to_pylist()[0]
    ann = edit_rows(bccd.annotations, "x", [row], lambda x: x + old["w"] * 0.1)
    d = diff_vision(bccd, version(bccd, annotations=ann))
    assert [m.image for m in d.annotations.moved] == [old["image"]]
    move = d.annotations.moved[0]
    assert move.old_bbox == (old["x"], old["y"], old["w"], old["h"])
    assert move.new_bbox == (old["x"] + old["w"] * 0.1, old["y"], old["w"], old["h"])
    assert 0.5 <= move.iou < 1.0
    assert move.changed == ("bbox",)
    assert d.annotations.unchanged == 897
    assert d.annotations.images_changed == 1
    assert d.suggested_bump == "patch"


def test_relabeled_box_names_both_classes(bccd):
    row = next(i for i, c in enumerate(bccd.annotations.column("class_id").to_pylist()) if c == 1)
    ann = edit_rows(bccd.annotations, "class_id", [row], lambda c: 2)
    d = diff_vision(bccd, version(bccd, annotations=ann))
    assert len(d.annotations.relabeled) == 1 and not d.annotations.moved
    item = d.annotations.relabeled[0]
    assert (item.old_class, item.new_class) == ("RBC", "WBC")
    assert item.old_bbox == item.new_bbox and item.iou == 1.0
    assert d.suggested_bump == "patch"
    assert d.per_class["RBC"]["delta"] == -1 and d.per_class["WBC"]["delta"] == 1


def test_box_moved_far_is_removed_and_added(bccd):
    row = 3
    w = bccd.annotations.column("w")[row].as_py()
    ann = edit_rows(bccd.annotations, "x", [row], lambda x: x + 3 * w)
    d = diff_vision(bccd, version(bccd, annotations=ann))
    assert (len(d.annotations.removed), len(d.annotations.added), len(d.annotations.moved)) == (1, 1, 0)


def test_iou_threshold_decides_moved_versus_replaced(bccd):
    row = 3
    w = bccd.annotations.column("w")[row].as_py()
    ann = edit_rows(bccd.annotations, "x", [row], lambda x: x + 0.4 * w)  # IoU = 0.6/1.4 ≈ 0.43
    b = version(bccd, annotations=ann)
    assert len(diff_vision(bccd, b, iou_threshold=0.4).annotations.moved) == 1
    assert len(diff_vision(bccd, b, iou_threshold=0.5).annotations.moved) == 0
    with pytest.raises(ValueError, match="iou_threshold must be in"):
        diff_vision(bccd, b, iou_threshold=0)


def test_removing_a_box_mid_image_does_not_disturb_later_boxes(bccd):
    path = "JPEGImages/BloodImage_00000.jpg"
    rows = rows_of_image(bccd, path)
    assert len(rows) > 4
    ann = renumber(drop_rows(bccd.annotations, [rows[1]]))
    d = diff_vision(bccd, version(bccd, annotations=ann))
    assert len(d.annotations.removed) == 1 and d.annotations.changed_boxes == 1
    assert d.annotations.removed[0].old_index == 1
    assert d.annotations.unchanged == 897
    assert d.summary().startswith("1 box changed in 1 image (1 removed)")


def test_added_box_on_existing_image(bccd):
    path = "JPEGImages/BloodImage_00005.jpg"
    extra = bccd.annotations.slice(rows_of_image(bccd, path)[0], 1)
    extra = set_column(set_column(extra, "x", [1.0]), "y", [2.0])
    ann = renumber(pa.concat_tables([bccd.annotations, extra]).sort_by([("image", "ascending")]))
    d = diff_vision(bccd, version(bccd, annotations=ann))
    assert len(d.annotations.added) == 1 and d.annotations.changed_boxes == 1
    assert d.annotations.added[0].new_bbox[:2] == (1.0, 2.0)
    assert d.suggested_bump == "patch"


def test_reordered_boxes_are_unchanged(bccd):
    path = "JPEGImages/BloodImage_00010.jpg"
    rows = rows_of_image(bccd, path)
    order = list(range(rows[0])) + rows[::-1] + list(range(rows[-1] + 1, bccd.annotations.num_rows))
    ann = renumber(bccd.annotations.take(order))
    d = diff_vision(bccd, version(bccd, annotations=ann))
    assert not d.changed and d.annotations.unchanged == 898


def test_attribute_only_change(bccd):
    ann = edit_rows(bccd.annotations, "difficult", [11], lambda v: True)
    ann = edit_rows(ann, "attributes", [12], lambda v: '{"pose":"left"}')
    d = diff_vision(bccd, version(bccd, annotations=ann))
    changed = d.annotations.attributes_changed
    assert [c.attributes for c in changed] == [{"difficult": [False, True]}, {"attributes": ["{}", '{"pose":"left"}']}]
    assert d.annotations.changed_boxes == 2
    assert d.suggested_bump == "patch"


def test_identical_duplicate_boxes_pair_one_to_one(bccd):
    path = "JPEGImages/BloodImage_00020.jpg"
    first = rows_of_image(bccd, path)[0]
    dup = bccd.annotations.slice(first, 1)
    a_ann = renumber(pa.concat_tables([bccd.annotations, dup]).sort_by([("image", "ascending")]))
    a = version(bccd, "bccd@dup", annotations=a_ann)
    b_ann = renumber(pa.concat_tables([a_ann, dup]).sort_by([("image", "ascending")]))
    d = diff_vision(a, version(bccd, annotations=b_ann))
    assert len(d.annotations.added) == 1 and d.annotations.changed_boxes == 1


def _with_new_images(tables, sources, split):
    """Copies of existing images (and their boxes) under new paths in ``split``."""
    new_images, new_boxes = [], []
    for k, src in enumerate(sources):
        new_path = f"JPEGImages/extra_{k:03d}.jpg"
        row = tables.images.filter(pc.equal(tables.images["path"], src))
        row = set_column(set_column(set_column(row, "path", [new_path]), "split", [split]), "sha256", [f"{k:064x}"])
        new_images.append(row)
        boxes = tables.annotations.filter(pc.equal(tables.annotations["image"], src))
        new_boxes.append(set_column(boxes, "image", [new_path] * boxes.num_rows))
    images = pa.concat_tables([tables.images, *new_images])
    annotations = pa.concat_tables([tables.annotations, *new_boxes])
    return version(tables, images=images, annotations=annotations), sum(t.num_rows for t in new_boxes)


def test_added_images_are_minor_and_their_boxes_are_not_fixes(bccd):
    b, n_boxes = _with_new_images(bccd, image_paths(bccd, "val")[:10], "train")
    d = diff_vision(bccd, b)
    assert len(d.images.added) == 10 and d.images.added_by_split == {"train": 10}
    assert d.annotations.on_added_images == n_boxes and d.annotations.changed_boxes == 0
    assert d.suggested_bump == "minor"
    assert "10 images added to train; class map unchanged." in d.summary()
    assert sum(c["delta"] for c in d.per_class.values()) == n_boxes
    assert sum(c["splits"]["train"]["delta"] for c in d.per_class.values()) == n_boxes


def test_removed_images_are_minor(bccd):
    gone = image_paths(bccd, "test")[:5]
    keep = pc.invert(pc.is_in(bccd.images["path"], pa.array(gone)))
    keep_boxes = pc.invert(pc.is_in(bccd.annotations["image"], pa.array(gone)))
    b = version(bccd, images=bccd.images.filter(keep), annotations=bccd.annotations.filter(keep_boxes))
    d = diff_vision(bccd, b)
    assert sorted(d.images.removed) == sorted(gone) and d.images.removed_by_split == {"test": 5}
    assert d.annotations.on_removed_images == bccd.annotations.num_rows - b.annotations.num_rows > 0
    assert d.annotations.changed_boxes == 0
    assert d.suggested_bump == "minor"
    assert "5 images removed from test" in d.summary()


def test_renamed_class_is_major_without_box_noise(bccd):
    classes = ClassMap(bccd.classes.ids, ("Platelets", "RBC", "Leukocyte"))
    d = diff_vision(bccd, version(bccd, classes=classes))
    assert d.classes.renamed == ({"id": 2, "old": "WBC", "new": "Leukocyte"},)
    assert not (d.classes.removed or d.classes.added or d.classes.reindexed)
    assert d.annotations.changed_boxes == 0
    assert d.suggested_bump == "major"
    assert "renamed 'WBC' to 'Leukocyte' (id 2)" in d.summary()
    assert d.per_class["Leukocyte"]["b"] == d.per_class["WBC"]["a"] > 0


def test_reindexed_classes_are_major_without_box_noise(bccd):
    classes = ClassMap((0, 1, 2), ("WBC", "RBC", "Platelets"))
    swap = {0: 2, 2: 0, 1: 1}
    ann = set_column(bccd.annotations, "class_id", [swap[c] for c in bccd.annotations.column("class_id").to_pylist()])
    d = diff_vision(bccd, version(bccd, annotations=ann, classes=classes))
    assert sorted(d.classes.reindexed, key=lambda x: x["name"]) == [
        {"name": "Platelets", "old_id": 0, "new_id": 2}, {"name": "WBC", "old_id": 2, "new_id": 0}]
    assert not d.classes.renamed and d.annotations.changed_boxes == 0
    assert d.suggested_bump == "major"
    assert all(c["delta"] == 0 for c in d.per_class.values())


def test_removed_class_is_major_and_its_boxes_are_removed(bccd):
    classes = ClassMap((1, 2), ("RBC", "WBC"))
    keep = pc.not_equal(bccd.annotations["class_id"], 0)
    n_platelets = bccd.annotations.num_rows - pc.sum(keep.cast("int64")).as_py()
    ann = renumber(bccd.annotations.filter(keep))
    d = diff_vision(bccd, version(bccd, annotations=ann, classes=classes))
    assert d.classes.removed == ({"id": 0, "name": "Platelets"},)
    assert len(d.annotations.removed) == n_platelets and d.annotations.changed_boxes == n_platelets
    assert {r.old_class for r in d.annotations.removed} == {"Platelets"}
    assert d.suggested_bump == "major"
    assert d.per_class["Platelets"] == {**d.per_class["Platelets"], "a": n_platelets, "b": 0, "delta": -n_platelets}


def test_added_class_is_minor(bccd):
    classes = ClassMap((0, 1, 2, 3), ("Platelets", "RBC", "WBC", "Sickle"))
    d = diff_vision(bccd, version(bccd, classes=classes))
    assert d.classes.added == ({"id": 3, "name": "Sickle"},) and not d.classes.breaks_ids
    assert d.suggested_bump == "minor"
    assert d.per_class["Sickle"] == {"a": 0, "b": 0, "delta": 0, "splits": {}}


def test_split_moves_are_counted_and_minor(bccd):
    moved = image_paths(bccd, "train")[:6]
    splits = ["test" if p in moved else s for p, s in
              zip(bccd.images.column("path").to_pylist(), bccd.images.column("split").to_pylist())]
    d = diff_vision(bccd, version(bccd, images=set_column(bccd.images, "split", splits)))
    assert sorted(m.path for m in d.split_moves) == sorted(moved)
    assert d.split_move_counts == {"train→test": 6}
    assert d.suggested_bump == "minor"
    assert "6 images changed split (train→test 6)" in d.summary()
    total_moved = sum(c["splits"]["test"]["delta"] for c in d.per_class.values())
    assert total_moved == sum(len(rows_of_image(bccd, p)) for p in moved)


def test_reencoded_is_patch_and_resized_is_minor(bccd):
    reenc = edit_rows(bccd.images, "sha256", [0], lambda s: "f" * 64)
    d = diff_vision(bccd, version(bccd, images=reenc))
    assert d.images.reencoded == ("JPEGImages/BloodImage_00000.jpg",) and d.suggested_bump == "patch"
    resized = edit_rows(reenc, "width", [1], lambda w: w // 2)
    d = diff_vision(bccd, version(bccd, images=resized))
    assert d.images.resized == ({"path": "JPEGImages/BloodImage_00001.jpg", "old": [640, 480], "new": [320, 480]},)
    assert d.suggested_bump == "minor"


def test_reoriented_and_retagged_images_are_listed_and_summarized(bccd):
    images = edit_rows(bccd.images, "orientation", [2, 3], lambda o: 6)
    images = edit_rows(images, "tags", [3, 4], lambda t: '{"night":true}')
    d = diff_vision(bccd, version(bccd, images=images))
    paths = bccd.images.column("path").to_pylist()
    assert d.images.reoriented == (paths[2], paths[3]) and d.images.retagged == (paths[3], paths[4])
    assert d.images.to_dict()["counts"] == {"added": 0, "removed": 0, "reencoded": 0, "resized": 0,
                                            "reoriented": 2, "retagged": 2}
    assert d.summary().startswith("2 images re-oriented, 2 images re-tagged; class map unchanged.")
    # A side without the columns (an older version) compares nothing: no image is called changed.
    older = version(bccd, "a", images=bccd.images.drop_columns(["tags", "orientation"]))
    d = diff_vision(older, version(bccd, images=images))
    assert d.images.reoriented == d.images.retagged == ()


def test_images_added_to_several_splits_and_to_none_are_counted_per_split(bccd):
    b, _ = _with_new_images(bccd, image_paths(bccd, "val")[:2], "train")
    c, _ = _with_new_images(bccd, image_paths(bccd, "val")[2:3], "val")
    n = bccd.images.num_rows
    images = pa.concat_tables([b.images, set_column(c.images.slice(n, 1), "path", ["JPEGImages/extra_val.jpg"])])
    images = edit_rows(images, "split", [n + 1], lambda s: None)
    d = diff_vision(bccd, version(bccd, images=images))
    assert d.images.added_by_split == {"(none)": 1, "train": 1, "val": 1}
    assert "3 images added ((none) 1, train 1, val 1)" in d.summary()
    only_unsplit = edit_rows(b.images, "split", [n, n + 1], lambda s: None)
    d = diff_vision(bccd, version(bccd, images=only_unsplit))
    assert d.images.added_by_split == {"(none)": 2}
    assert d.summary().startswith("2 images added; class map unchanged.")


def test_an_overlapping_box_of_the_same_class_is_preferred_to_a_better_overlap_of_another(bccd):
    path = "JPEGImages/BloodImage_00000.jpg"
    rows = rows_of_image(bccd, path)
    ann = bccd.annotations
    # Two boxes on one image: class 1 at x=100 and class 2 at x=120, both 100 wide.
    for r, (x, cls) in zip(rows[:2], ((100.0, 1), (120.0, 2))):
        ann = edit_rows(edit_rows(edit_rows(ann, "x", [r], lambda v, x=x: x), "w", [r], lambda v: 100.0),
                        "class_id", [r], lambda v, cls=cls: cls)
        ann = edit_rows(edit_rows(ann, "y", [r], lambda v: 50.0), "h", [r], lambda v: 100.0)
    a = version(bccd, "a", annotations=ann)
    # In b the class-1 box moves right onto the class-2 box and the class-2 box leaves.
    b_ann = edit_rows(edit_rows(ann, "x", [rows[0]], lambda v: 118.0), "x", [rows[1]], lambda v: 700.0)
    d = diff_vision(a, version(a, "b", annotations=b_ann))
    (moved,) = d.annotations.moved
    assert (moved.old_index, moved.new_index, moved.old_class, moved.new_class) == (0, 0, "RBC", "RBC")
    assert not d.annotations.relabeled
    assert [(c.change, c.old_index, c.new_index) for c in d.annotations.removed + d.annotations.added] == [
        ("removed", 1, None), ("added", None, 1)]


def test_tables_without_sha256_still_diff(bccd):
    a = version(bccd, "a", images=bccd.images.drop_columns(["sha256"]))
    d = diff_vision(a, version(a, "b"))
    assert not d.changed and d.images.reencoded == ()


def test_replaced_annotation_kind_is_major_and_an_added_kind_minor(bccd):
    poly = [[259.0, 176.0, 490.0, 176.0, 490.0, 375.0]]
    ann = edit_rows(edit_rows(bccd.annotations, "kind", [0], lambda k: "polygon"), "polygon", [0], lambda p: poly)
    d = diff_vision(bccd, version(bccd, annotations=ann))
    assert (d.annotations.kinds_a, d.annotations.kinds_b) == (("bbox",), ("bbox", "polygon"))
    assert d.suggested_bump == "minor"
    (item,) = d.annotations.moved
    assert item.changed == ("kind", "polygon") and item.attributes == {"kind": ["bbox", "polygon"]}
    every = set_column(bccd.annotations, "kind", ["polygon"] * bccd.annotations.num_rows)
    d = diff_vision(bccd, version(bccd, annotations=every))
    assert d.suggested_bump == "major" and len(d.annotations.moved) == 898
    assert ("major", "changes annotation types from bbox to polygon") in bump_reasons(d)


def test_polygon_edit_is_a_move_found_by_the_list_comparison(bccd):
    poly = [[259.0, 176.0, 490.0, 176.0, 490.0, 375.0]]
    a_ann = edit_rows(edit_rows(bccd.annotations, "kind", [0, 1], lambda k: "polygon"), "polygon", [0, 1], lambda p: poly)
    a = version(bccd, "a", annotations=a_ann)
    assert not diff_vision(a, version(a, "b")).changed
    b_ann = edit_rows(a_ann, "polygon", [1], lambda p: [[259.0, 176.0, 490.0, 176.0, 490.0, 376.0]])
    d = diff_vision(a, version(a, "b", annotations=b_ann))
    assert [(m.old_index, m.changed) for m in d.annotations.moved] == [(1, ("polygon",))]
    assert d.annotations.unchanged == 897
    assert d.suggested_bump == "patch"


def test_to_dict_is_json_with_the_documented_keys(bccd):
    ann = edit_rows(bccd.annotations, "class_id", [0], lambda c: 0)
    d = diff_vision(bccd, version(bccd, annotations=ann))
    data = json.loads(json.dumps(d.to_dict()))
    assert {"a", "b", "images", "annotations", "classes", "split_moves", "per_class", "summary",
            "suggested_bump"} <= data.keys()
    assert (data["a"], data["b"], data["suggested_bump"]) == ("bccd@1.0.0", "bccd@1.0.1", "patch")
    assert data["annotations"]["counts"]["relabeled"] == 1
    assert data["annotations"]["relabeled"][0]["new_class"] == "Platelets"


def test_summary_of_a_mixed_release(bccd):
    ann = edit_rows(bccd.annotations, "x", [0, 1], lambda x: x + 2)
    ann = edit_rows(ann, "class_id", [30], lambda c: (c + 1) % 3)
    b, _ = _with_new_images(version(bccd, annotations=ann), image_paths(bccd, "val")[:3], "train")
    text = diff_vision(bccd, b).summary()
    assert text == ("3 boxes changed in 2 images (2 moved, 1 relabeled), 3 images added to train; "
                    "class map unchanged. Suggested bump: MINOR.")


def test_from_an_empty_version(bccd):
    empty = version(bccd, "bccd@0.1.0", images=bccd.images.slice(0, 0), annotations=bccd.annotations.slice(0, 0),
                    classes=ClassMap((), ()))
    d = diff_vision(empty, bccd)
    assert len(d.images.added) == 47 and d.annotations.on_added_images == 898
    assert d.annotations.kinds_a == () and d.annotations.kinds_b == ("bbox",)
    assert len(d.classes.added) == 3 and d.suggested_bump == "minor"  # nothing a consumer had is gone
    assert ("minor", "adds annotation type bbox") in bump_reasons(d)
    back = diff_vision(bccd, empty)
    assert len(back.images.removed) == 47 and len(back.classes.removed) == 3
    assert back.per_class["RBC"]["delta"] == -back.per_class["RBC"]["a"] < 0
    assert back.suggested_bump == "major"


def test_the_package_exports_the_result_types_and_diff_vision():
    import lensvault.datasets.annotation_diff as ad

    assert ad.__all__ == sorted(ad.__all__) == ["AnnotationChanges", "AnnotationDiff", "BoxChange", "ClassChanges",
                                                "ImageChanges", "SplitMove", "diff_vision"]
    for name in ad.__all__:
        assert getattr(ad, name).__module__.startswith("lensvault.datasets.annotation_diff")
    assert ad.NO_SPLIT == "(none)"  # the split key of images without one, in JSON as in text
