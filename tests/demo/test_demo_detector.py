from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lensvault.demo.detector import Model, resolve_params, train
from lensvault.demo.scoring import ap50, predict_results
from lensvault.demo.segment import label_components
from lensvault.demo.splits import split_names


def _ap50(demo_data, model: Model, image_ids: list[int]) -> float:
    """Always scored against the corrected labels: the truth, whatever the model saw."""
    results = predict_results(model, demo_data.images, demo_data.clean, image_ids)
    return ap50(demo_data.clean, results, image_ids)["ap50"]


def test_same_seed_gives_byte_identical_weights(demo_data, tmp_path: Path) -> None:
    subset = demo_data.split["train"][:25]
    params = {"train": {"epochs": 15}}
    paths = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        paths.append(tmp_path / f"{name}.npz")
        train(demo_data.images, demo_data.clean, subset, params, seed).save(paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_saved_model_predicts_the_same_after_load(demo_data, tmp_path: Path) -> None:
    model = demo_data.model("corrected")
    model.save(tmp_path / "model.npz")
    loaded = Model.load(tmp_path / "model.npz")
    assert loaded.params == model.params and loaded.labelmap == {1: "circle", 2: "square", 3: "triangle"}
    for image_id in demo_data.split["test"][:5]:
        path = demo_data.images / f"img_{image_id - 1:04d}.png"
        assert loaded.predict(path) == model.predict(path)


def test_corrected_labels_beat_mislabeled_ones_on_the_test_split(demo_data) -> None:
    test_ids = demo_data.split["test"]
    corrected = _ap50(demo_data, demo_data.model("corrected"), test_ids)
    mislabeled = _ap50(demo_data, demo_data.model("mislabeled"), test_ids)
    assert corrected - mislabeled >= 0.05, (corrected, mislabeled)
    held_out = demo_data.held_out
    gap = _ap50(demo_data, demo_data.model("corrected"), held_out) - _ap50(
        demo_data, demo_data.model("mislabeled"), held_out
    )
    assert gap >= 0.05


def test_hotfix_hurts_night_images_and_leaves_day_images_alone(demo_data) -> None:
    night = [i for i in demo_data.held_out if i in demo_data.night]
    day = [i for i in demo_data.held_out if i not in demo_data.night]
    assert len(night) >= 5 and len(day) >= 10
    base, hotfix = demo_data.model("corrected"), demo_data.model("hotfix")
    assert _ap50(demo_data, base, night) - _ap50(demo_data, hotfix, night) >= 0.5
    assert abs(_ap50(demo_data, base, day) - _ap50(demo_data, hotfix, day)) <= 0.02
    assert _ap50(demo_data, base, day) >= 0.9


def test_params_accept_nested_or_dotted_keys_and_reject_other_architectures() -> None:
    nested = resolve_params({"train": {"epochs": 5}, "preprocess": {"brightness_threshold": 0.2}})
    dotted = resolve_params({"train.epochs": 5, "preprocess.brightness_threshold": 0.2})
    assert nested == dotted and nested["train.epochs"] == 5
    with pytest.raises(ValueError, match="architecture"):
        resolve_params({"model": {"architecture": "yolov8"}})


def test_label_components_separates_touching_only_diagonally() -> None:
    mask = np.array(
        [
            [1, 1, 0, 0, 1],
            [0, 1, 0, 1, 1],
            [0, 0, 1, 0, 0],
            [1, 0, 0, 0, 1],
        ],
        dtype=bool,
    )
    labels = label_components(mask)
    assert labels.max() == 5
    assert (labels > 0).tolist() == mask.tolist()
    assert labels[0, 0] == labels[0, 1] == labels[1, 1]
    assert labels[0, 4] == labels[1, 3] == labels[1, 4]
    assert len({labels[0, 0], labels[2, 2], labels[3, 0], labels[3, 4], labels[0, 4]}) == 5


def test_split_matches_lensvaults_own_hash_split() -> None:
    splits = pytest.importorskip("lensvault.datasets.splits")
    paths = [f"images/img_{i:04d}.png" for i in range(200)]
    spec = splits.SplitSpec(splits.parse_ratios("70/20/10"), seed=42)
    ours = split_names(paths, 42)
    assert {p: name for name, members in ours.items() for p in members} == {p: spec.split_of(p) for p in paths}
