from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from lensvault.demo.shapes import CONFUSION, generate_shapes


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = generate_shapes(tmp_path / "a", n_images=15, seed=7)
    second = generate_shapes(tmp_path / "b", n_images=15, seed=7)
    files_a, files_b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert len(files_a) == 15 + 2
    assert files_a == files_b
    assert {k: v for k, v in first.items() if k != "paths"} == {k: v for k, v in second.items() if k != "paths"}


def test_other_seed_gives_other_images(tmp_path: Path) -> None:
    generate_shapes(tmp_path / "a", n_images=3, seed=1)
    generate_shapes(tmp_path / "b", n_images=3, seed=2)
    a, b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert all(a[name] != b[name] for name in a if name.startswith("images/"))


def test_counts_match_the_summary(demo_data) -> None:
    summary, noisy = demo_data.summary, demo_data.noisy
    assert summary["images"] == len(noisy["images"]) == 120
    assert summary["boxes"] == len(noisy["annotations"])
    assert summary["wrong_labels"] == round(0.12 * summary["boxes"])
    nights = sum(image["time_of_day"] == "night" for image in noisy["images"])
    assert summary["night_images"] == nights == 36
    assert {c["id"]: c["name"] for c in noisy["categories"]} == {1: "circle", 2: "square", 3: "triangle"}
    per_image = np.bincount([a["image_id"] for a in noisy["annotations"]], minlength=121)[1:]
    assert per_image.min() >= 1 and per_image.max() <= 4


def test_images_decode_at_the_declared_size(demo_data) -> None:
    brightness = {"day": [], "night": []}
    for info in demo_data.noisy["images"]:
        with Image.open(demo_data.images / info["file_name"]) as image:
            assert image.format == "PNG" and image.mode == "RGB"
            assert image.size == (info["width"], info["height"]) == (128, 96)
            brightness[info["time_of_day"]].append(np.asarray(image).mean())
    assert max(brightness["night"]) < min(brightness["day"])


def test_boxes_lie_inside_their_images(demo_data) -> None:
    for ann in demo_data.clean["annotations"]:
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and w > 4 and h > 4 and x + w <= 128 and y + h <= 96
        assert 0 < ann["area"] <= w * h


def test_corrections_differ_only_in_the_wrong_labels(demo_data) -> None:
    noisy, clean = demo_data.noisy, demo_data.clean
    assert noisy["images"] == clean["images"] and noisy["categories"] == clean["categories"]
    wrong = set(demo_data.summary["wrong_annotation_ids"])
    assert len(wrong) == demo_data.summary["wrong_labels"]
    for bad, good in zip(noisy["annotations"], clean["annotations"], strict=True):
        assert {k: v for k, v in bad.items() if k != "category_id"} == {
            k: v for k, v in good.items() if k != "category_id"
        }
        if bad["id"] in wrong:
            assert bad["category_id"] == CONFUSION[good["category_id"]] != good["category_id"]
        else:
            assert bad["category_id"] == good["category_id"]


def test_wrong_labels_fall_on_small_objects(demo_data) -> None:
    # The demo's story: annotators misname tiny objects, consistently.
    wrong = set(demo_data.summary["wrong_annotation_ids"])
    areas = {a["id"]: a["area"] for a in demo_data.clean["annotations"]}
    assert np.median([areas[i] for i in wrong]) < np.percentile(list(areas.values()), 20)


def test_no_mislabels_means_identical_label_files(tmp_path: Path) -> None:
    summary = generate_shapes(tmp_path, n_images=5, seed=3, mislabel_fraction=0.0)
    assert summary["wrong_labels"] == 0
    assert json.loads(Path(summary["paths"]["annotations"]).read_text()) == json.loads(
        Path(summary["paths"]["corrections"]).read_text()
    )
