"""The compact changelog stored with each version."""

from __future__ import annotations

import json

from lensvault.datasets.annotation_diff import diff_vision
from lensvault.datasets.changelog import changelog_from_diff, changelog_lines

from .conftest import edit_rows, set_column, version


def test_changelog_is_compact_json_with_counts_and_few_examples(bccd):
    rows = list(range(0, 800, 40))  # 20 boxes in different images
    ann = edit_rows(bccd.annotations, "class_id", rows, lambda c: (c + 1) % 3)
    splits = ["test" if i < 4 and s == "train" else s
              for i, s in enumerate(bccd.images.column("split").to_pylist())]
    d = diff_vision(bccd, version(bccd, annotations=ann, images=set_column(bccd.images, "split", splits)))
    log = changelog_from_diff(d, examples=3)
    text = json.dumps(log)
    assert len(text) < 8000 and len(text) < len(json.dumps(d.to_dict())) / 2
    assert log["counts"]["boxes_relabeled"] == 20 and log["counts"]["boxes_unchanged"] == 878
    assert len(log["examples"]["boxes"]["relabeled"]) == 3
    assert log["suggested_bump"] == "minor" and log["summary"] == d.summary()
    assert log["split_moves"] == d.split_move_counts and sum(log["split_moves"].values()) == len(d.split_moves) > 0
    assert {r["bump"] for r in log["reasons"]} == {"minor", "patch"}
    assert sum(c["delta"] for c in log["per_class"].values()) == 0
    assert all(c["delta"] for c in log["per_class"].values())
    assert log["classes"] == {"added": [], "removed": [], "renamed": [], "reindexed": []}
    lines = changelog_lines(log)
    assert lines[0] == d.summary() and lines[1].startswith("per class: ")


def test_changelog_of_no_change(bccd):
    log = changelog_from_diff(diff_vision(bccd, bccd))
    assert log["suggested_bump"] is None and log["reasons"] == [] and log["per_class"] == {}
    assert log["examples"]["boxes"] == {}
    assert changelog_lines(log) == [log["summary"]]
