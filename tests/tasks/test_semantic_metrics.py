"""Semantic-segmentation metrics from the confusion matrix, against cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lensvault.errors import InputError
from lensvault.evaluations.semantic import (
    confusion_matrix,
    evaluate_semantic,
    metrics_from_confusion,
    rasterize_ground_truth,
    read_prediction_folder,
)

IDS = [0, 1, 2]
NAMES = ["background", "road", "car"]


def _metrics(gt, pred, ids=IDS, names=NAMES, ignore_index=255):
    cm, missed = confusion_matrix(np.array(gt), np.array(pred), ids, ignore_index=ignore_index)
    return cm, metrics_from_confusion(cm, missed, ids, names)


def test_hand_computed_three_classes():
    # gt:   0 0 1 1 | 1 2 2 255      pred: 0 1 1 1 | 2 2 0 1
    gt = [[0, 0, 1, 1], [1, 2, 2, 255]]
    pred = [[0, 1, 1, 1], [2, 2, 0, 1]]
    cm, m = _metrics(gt, pred)
    # rows = truth, columns = prediction; the ignored pixel counts nowhere
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [1, 0, 1]]
    # IoU: background 1/(2+2-1)=1/3, road 2/(3+3-2)=1/2, car 1/(2+2-1)=1/3
    iou = {k: v["IoU"] for k, v in m["per_class"].items()}
    assert iou == pytest.approx({"background": 1 / 3, "road": 1 / 2, "car": 1 / 3}, abs=1e-12)
    assert m["overall"]["mIoU"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 3) / 3, abs=1e-12)
    assert m["overall"]["pixel_accuracy"] == pytest.approx(4 / 7, abs=1e-12)
    # fwIoU: (2/7)(1/3) + (3/7)(1/2) + (2/7)(1/3)
    assert m["overall"]["fwIoU"] == pytest.approx(2 / 21 + 3 / 14 + 2 / 21, abs=1e-12)
    assert m["overall"]["mean_accuracy"] == pytest.approx((1 / 2 + 2 / 3 + 1 / 2) / 3, abs=1e-12)
    assert m["per_class"]["road"]["pixels"] == 3 and m["per_class"]["road"]["predicted_pixels"] == 3


def test_class_absent_from_both_sides_is_undefined_not_zero():
    _, m = _metrics([[1, 1], [1, 1]], [[1, 1], [1, 0]])
    assert m["per_class"]["car"]["IoU"] is None
    # background: predicted once, never true -> IoU 0 (counted in mIoU); road 3/4
    assert m["per_class"]["background"]["IoU"] == 0.0
    assert m["overall"]["mIoU"] == pytest.approx((0 + 3 / 4) / 2, abs=1e-12)
    assert m["overall"]["fwIoU"] == pytest.approx(1.0 * 3 / 4, abs=1e-12)


def test_predicted_ignore_on_a_counted_pixel_is_a_miss():
    _, m = _metrics([[1, 1, 2, 2]], [[1, 255, 2, 2]])
    assert m["overall"]["pixel_accuracy"] == pytest.approx(3 / 4, abs=1e-12)
    assert m["per_class"]["road"]["IoU"] == pytest.approx(1 / 2, abs=1e-12)  # 1 / (2 + 1 - 1)
    assert m["per_class"]["car"]["IoU"] == 1.0


def test_other_ignore_index_and_gapped_ids():
    # ids 0, 5, 9 (a gapped class map); 0 is the ignore value here
    ids, names = [1, 5, 9], ["sky", "cat", "dog"]
    cm, m = _metrics([[0, 5, 5, 9]], [[9, 5, 9, 9]], ids, names, ignore_index=0)
    assert cm.tolist() == [[0, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert m["per_class"]["cat"]["IoU"] == pytest.approx(1 / 2)
    assert m["per_class"]["dog"]["IoU"] == pytest.approx(1 / 2)
    assert m["per_class"]["sky"]["IoU"] is None


def test_equals_a_plain_numpy_computation_on_random_maps():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 4, size=(64, 80))
    gt[rng.random(gt.shape) < 0.1] = 255
    pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 4, size=gt.shape))
    pred[pred == 255] = 3
    ids, names = [0, 1, 2, 3], ["a", "b", "c", "d"]
    _, m = _metrics(gt, pred, ids, names)
    keep = gt != 255
    ious, fw = [], 0.0
    for c in ids:
        inter = np.sum((gt == c) & (pred == c) & keep)
        union = np.sum(((gt == c) | (pred == c)) & keep)
        ious.append(inter / union)
        fw += np.sum((gt == c) & keep) / keep.sum() * inter / union
    assert m["overall"]["mIoU"] == pytest.approx(np.mean(ious), abs=1e-9)
    assert m["overall"]["pixel_accuracy"] == pytest.approx(np.sum((gt == pred) & keep) / keep.sum(), abs=1e-9)
    assert m["overall"]["fwIoU"] == pytest.approx(fw, abs=1e-9)


def test_unknown_pixel_values_are_listed():
    with pytest.raises(ValueError, match="not class ids: 7, 8"):
        confusion_matrix(np.zeros((2, 2), int), np.array([[0, 7], [8, 255]]), IDS)


def test_per_slice_sums_the_slices_images():
    gts = {1: np.array([[1, 1]]), 2: np.array([[2, 2]]), 3: np.array([[1, 2]])}
    preds = {1: np.array([[1, 1]]), 2: np.array([[1, 1]]), 3: np.array([[1, 2]])}
    tags = {1: {"time": "day"}, 2: {"time": "night"}, 3: {"time": "day"}}
    out = evaluate_semantic(gts, preds, IDS, NAMES, image_tags=tags)
    assert out["per_slice"]["time=day"]["pixel_accuracy"] == 1.0
    assert out["per_slice"]["time=night"]["pixel_accuracy"] == 0.0
    assert out["per_slice"]["time=day"]["images"] == 2
    assert out["overall"]["pixel_accuracy"] == pytest.approx(4 / 6)
    assert out["confusion_matrix"]["counts"] == [[0, 0, 0], [0, 3, 0], [0, 2, 1]]


def test_ground_truth_paints_masks_over_background_and_crowd_as_ignore():
    import json

    from pycocotools import mask as mask_utils

    m = np.zeros((4, 5), dtype=np.uint8, order="F")
    m[1:3, 1:4] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    rle_text = json.dumps({"size": rle["size"], "counts": rle["counts"].decode("ascii")})
    anns = [
        {"class_id": 2, "rle": rle_text, "polygon": None, "iscrowd": False},
        {"class_id": 1, "rle": None, "polygon": [[0.0, 0.0, 2.0, 0.0, 2.0, 1.0, 0.0, 1.0]], "iscrowd": True},
        {"class_id": 1, "rle": None, "polygon": None, "iscrowd": False},  # a box: no pixels
    ]
    out = rasterize_ground_truth({"width": 5, "height": 4}, anns, fill=0)
    assert out[2, 2] == 2 and out[3, 4] == 0 and out[0, 0] == 255


def _save(path, array, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path)


IMAGES = [{"id": 1, "file_name": "images/a.jpg", "width": 3, "height": 2},
          {"id": 2, "file_name": "images/b.jpg", "width": 3, "height": 2}]


def test_folder_reads_index_and_palette_pngs_by_image_name(tmp_path):
    _save(tmp_path / "images" / "a.png", [[0, 1, 2], [2, 1, 0]])
    pal = Image.fromarray(np.array([[1, 1, 1], [2, 2, 255]], dtype=np.uint8), "P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    pal.save(tmp_path / "b.png")  # a bare name works when it is unique
    masks, _ = read_prediction_folder(tmp_path, IMAGES)
    assert masks[1].tolist() == [[0, 1, 2], [2, 1, 0]]
    assert masks[2].tolist() == [[1, 1, 1], [2, 2, 255]]  # the palette's indices, not its colours


def test_folder_refuses_unknown_missing_wrong_size_and_rgb(tmp_path):
    _save(tmp_path / "a.png", [[0, 1, 2], [2, 1, 0]])
    _save(tmp_path / "zebra.png", [[0]])
    with pytest.raises(InputError) as e:
        read_prediction_folder(tmp_path, IMAGES)
    assert "1 mask(s) name no image of the split: zebra.png" in str(e.value)
    assert "1 image(s) have no mask: images/b.jpg" in str(e.value)
    (tmp_path / "zebra.png").unlink()
    _save(tmp_path / "b.png", [[0, 1], [1, 0]])
    with pytest.raises(InputError, match=r"b\.png is 2x2, its image 3x2"):
        read_prediction_folder(tmp_path, IMAGES)
    Image.fromarray(np.zeros((2, 3, 3), dtype=np.uint8), "RGB").save(tmp_path / "b.png")
    with pytest.raises(InputError, match=r"not index or palette PNGs: b.png \(RGB\)"):
        read_prediction_folder(tmp_path, IMAGES)
    for f in tmp_path.glob("*.png"):
        f.unlink()
    with pytest.raises(InputError, match="has no PNG masks"):
        read_prediction_folder(tmp_path, IMAGES)
