"""Multi-label classification metrics: hand-computed cases, a straightforward NumPy reference of
scikit-learn's formulas (to 1e-9) on random data with tied scores, the predictions file's
refusals, and the recorded evaluation through the vault."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from lensvault.errors import InputError, LensVaultError
from lensvault.evaluations.multilabel import (
    MultiLabelPrediction,
    average_precision,
    evaluate_multilabel,
    parse_multilabel_predictions,
)

IDS = [0, 1, 2]
NAMES = ["cat", "dog", "bird"]


def _scored(scores: dict[int, float], threshold: float = 0.5) -> MultiLabelPrediction:
    return MultiLabelPrediction(frozenset(c for c, s in scores.items() if s >= threshold), scores)


def test_hand_computed_sets():
    # image: truth            predicted
    # 1      {cat, dog}       {cat}
    # 2      {dog}            {dog, bird}
    # 3      {}               {}
    # 4      {cat, bird}      {cat, bird}
    truth = {1: [0, 1], 2: [1], 3: [], 4: [0, 2]}
    preds = {1: MultiLabelPrediction(frozenset({0})), 2: MultiLabelPrediction(frozenset({1, 2})),
             3: MultiLabelPrediction(frozenset()), 4: MultiLabelPrediction(frozenset({0, 2}))}
    out = evaluate_multilabel(truth, preds, IDS, NAMES)
    pc, ov = out["per_class"], out["overall"]
    # cat: TP 2 FP 0 FN 0; dog: TP 1 FP 0 FN 1; bird: TP 1 FP 1 FN 0
    assert (pc["cat"]["TP"], pc["dog"]["FN"], pc["bird"]["FP"]) == (2, 1, 1)
    assert (pc["cat"]["precision"], pc["cat"]["recall"], pc["cat"]["F1"]) == (1.0, 1.0, 1.0)
    assert (pc["dog"]["precision"], pc["dog"]["recall"]) == (1.0, 0.5) and pc["dog"]["F1"] == pytest.approx(2 / 3)
    assert (pc["bird"]["precision"], pc["bird"]["recall"]) == (0.5, 1.0) and pc["bird"]["F1"] == pytest.approx(2 / 3)
    assert ov["subset_accuracy"] == ov["accuracy"] == 0.5  # images 3 and 4 exactly right
    assert ov["hamming_loss"] == pytest.approx(2 / 12)  # dog missed on 1, bird extra on 2
    # micro: TP 4, FP 1, FN 1
    assert (ov["micro_precision"], ov["micro_recall"], ov["micro_F1"]) == pytest.approx((0.8, 0.8, 0.8))
    assert ov["macro_F1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert ov["macro_precision"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert ov["mAP"] is None and pc["cat"]["AP"] is None  # no scores, no AP
    assert out["multi_label"] is True and out["counts"]["true_labels"] == 5 and out["counts"]["predicted_labels"] == 5


def test_hand_computed_average_precision_with_a_tie():
    # scores 0.9 (pos), 0.8 (neg), 0.8 (pos), 0.3 (neg), 0.1 (pos): thresholds 0.9, 0.8, 0.3, 0.1
    # recall 1/3, 2/3, 2/3, 1 at precision 1, 2/3, 1/2, 3/5
    ap = average_precision([True, False, True, False, True], [0.9, 0.8, 0.8, 0.3, 0.1])
    assert ap == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3 + 0 + 1 / 3 * 3 / 5, abs=1e-12)
    assert average_precision([False, False], [0.2, 0.9]) is None  # no positive: undefined
    assert average_precision([True, True], [0.2, 0.2]) == 1.0


def test_threshold_decides_the_predicted_set():
    truth = {1: [0], 2: [1]}
    preds = {1: {0: 0.6, 1: 0.4, 2: 0.0}, 2: {0: 0.1, 1: 0.5, 2: 0.45}}
    strict = evaluate_multilabel(truth, {i: _scored(s, 0.5) for i, s in preds.items()}, IDS, NAMES, threshold=0.5)
    loose = evaluate_multilabel(truth, {i: _scored(s, 0.4) for i, s in preds.items()}, IDS, NAMES, threshold=0.4)
    assert strict["overall"]["subset_accuracy"] == 1.0  # 0.5 >= 0.5: predicted
    assert loose["overall"]["subset_accuracy"] == 0.0 and loose["threshold"] == 0.4
    assert strict["overall"]["mAP"] == loose["overall"]["mAP"] == 1.0  # AP does not depend on the threshold


# --- a NumPy reference: scikit-learn's formulas written out on indicator matrices -------------


def _ref_ap(y: np.ndarray, s: np.ndarray) -> float:
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last index of each distinct score
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    precision, recall = tps / (tps + fps), tps / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _ref(Y: np.ndarray, S: np.ndarray, threshold: float) -> dict:
    P = threshold <= S
    tp = (Y & P).sum(0)
    fp = (~Y & P).sum(0)
    fn = (Y & ~P).sum(0)

    def div(a, b):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)

    prec, rec, f1 = div(tp, tp + fp), div(tp, tp + fn), div(2 * tp, 2 * tp + fp + fn)
    seen = (tp + fn + fp) > 0
    aps = [(_ref_ap(Y[:, c], S[:, c]) if Y[:, c].any() else np.nan) for c in range(Y.shape[1])]
    return {
        "precision": prec, "recall": rec, "F1": f1, "AP": np.array(aps),
        "subset_accuracy": float((P == Y).all(1).mean()),
        "hamming_loss": float((P != Y).mean()),
        "micro_precision": tp.sum() / (tp.sum() + fp.sum()), "micro_recall": tp.sum() / (tp.sum() + fn.sum()),
        "micro_F1": 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum()),
        "macro_precision": float(np.nan_to_num(prec[seen]).mean()), "macro_recall": float(np.nan_to_num(rec[seen]).mean()),
        "macro_F1": float(np.nan_to_num(f1[seen]).mean()), "mAP": float(np.nanmean(aps)),
    }


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_equals_a_numpy_reference_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n, k = 200, 7
    Y = rng.random((n, k)) < rng.uniform(0.05, 0.5, size=k)
    Y[:, 6] = False  # a class no image has: its AP is undefined and left out of mAP
    noise = rng.normal(0, 0.25, size=(n, k))
    S = np.clip(np.round(Y * 0.6 + 0.2 + noise, 1), 0, 1)  # rounded: many tied scores
    threshold = [0.5, 0.35, 0.6, 0.5][seed]
    ids, names = list(range(10, 10 + k)), [f"c{j}" for j in range(k)]
    truth = {i: [ids[j] for j in np.flatnonzero(Y[i])] for i in range(n)}
    preds = {i: _scored({ids[j]: float(S[i, j]) for j in range(k)}, threshold) for i in range(n)}
    out = evaluate_multilabel(truth, preds, ids, names, threshold=threshold)
    ref = _ref(Y, S, threshold)
    for j, name in enumerate(names):
        for key in ("precision", "recall", "F1", "AP"):
            got, want = out["per_class"][name][key], ref[key][j]
            assert (got is None) == math.isnan(want), (name, key)
            if got is not None:
                assert got == pytest.approx(want, abs=1e-9), (name, key)
    for key in ("subset_accuracy", "hamming_loss", "micro_precision", "micro_recall", "micro_F1", "macro_precision",
                "macro_recall", "macro_F1", "mAP"):
        assert out["overall"][key] == pytest.approx(ref[key], abs=1e-9), key
    assert out["per_class"]["c6"]["AP"] is None


# --- the predictions file ---------------------------------------------------------------------

_IMAGES = {"a.jpg": 1, "b.jpg": 2}


def _parse(text: str, threshold: float = 0.5):
    return parse_multilabel_predictions(
        text.encode(), "preds", image_of=_IMAGES.get,
        class_of=lambda v: {"cat": 0, "dog": 1, "bird": 2}.get(v, v if v in IDS else None),
        class_ids=IDS, threshold=threshold)


def test_csv_scores_csv_labels_and_json():
    by_scores = _parse("image,cat,dog,bird\na.jpg,0.9,0.5,0.1\nb.jpg,0.2,0.3,0.7\n")
    assert by_scores[1].labels == {0, 1} and by_scores[1].scores == {0: 0.9, 1: 0.5, 2: 0.1}
    assert by_scores[2].labels == {2}
    by_labels = _parse("image,labels\na.jpg,cat;dog\nb.jpg,\n")
    assert by_labels[1].labels == {0, 1} and by_labels[2].labels == frozenset() and by_labels[1].scores is None
    js = _parse(json.dumps([{"image": "a.jpg", "scores": {"cat": 0.1, "dog": 0.8, "bird": 0.0}},
                            {"image": "b.jpg", "labels": ["bird"]}]))
    assert js[1].labels == {1} and js[2].labels == {2}


@pytest.mark.parametrize(("text", "words"), [
    ("", ["empty"]),
    ("image,cat,dog,bird\nzebra.jpg,0.1,0.2,0.3\nhorse.jpg,0.1,0.2,0.3\n", ["'horse.jpg'", "'zebra.jpg'"]),
    ("image,cat,dog,fish\na.jpg,0.1,0.2,0.3\n", ["unknown classes", "'fish'"]),
    ("image,cat,dog,bird\na.jpg,0.1,1.5,0.3\nb.jpg,-0.2,0.5,0.5\n", ["not numbers in [0, 1]", "line 2 dog=1.5",
                                                                   "line 3 cat=-0.2"]),
    ("image,cat,dog,bird\na.jpg,nan,0.2,0.3\n", ["not numbers in [0, 1]", "line 2 cat=nan"]),
    ('[{"image": "a.jpg", "scores": {"cat": NaN, "dog": 0.1, "bird": 0.1}}]', ["[0] cat=nan"]),
    ("image,cat,dog,bird\na.jpg,0.1,0.2,0.3\na.jpg,0.1,0.2,0.3\n", ["more than one prediction", "'a.jpg'"]),
    ("image,labels\na.jpg,cat;cat\n", ["named twice", "line 2 'cat'"]),
    ('[{"image": "a.jpg", "scores": {"cat": 0.2}}]', ["lack a score", "[0] (2 class(es)"]),
])
def test_bad_predictions_are_refused_with_the_offenders(text, words):
    with pytest.raises(InputError) as e:
        _parse(text)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


# --- recorded through the vault --------------------------------------------------------------

BCCD = Path(__file__).resolve().parents[1] / "data" / "bccd" / "BCCD" / "JPEGImages"


def _dataset(root: Path) -> Path:
    root.mkdir(parents=True)
    names = []
    for n, p in enumerate(sorted(BCCD.glob("*.jpg"))[:4]):
        shutil.copyfile(p, root / f"im{n}.jpg")
        names.append(f"im{n}.jpg")
    labels = ["RBC;WBC", "RBC", "", "Platelets;WBC"]
    (root / "labels.csv").write_text("path,label\n" + "".join(f"{a},{b}\n" for a, b in zip(names, labels)))
    return root


def test_recorded_multilabel_eval_and_refusals(vault, tmp_path):
    vault.snapshot("cells", _dataset(tmp_path / "cells"), format="labels", version="1.0.0")
    preds = tmp_path / "preds.csv"
    preds.write_text("image,Platelets,RBC,WBC\nim0.jpg,0.1,0.9,0.6\nim1.jpg,0.2,0.8,0.7\n"
                     "im2.jpg,0.0,0.1,0.2\nim3.jpg,0.7,0.4,0.9\n")
    res = vault.evaluate(dataset="cells@1.0.0", split=None, predictions=preds, task="classification",
                         multi_label=True, threshold=0.5)
    ov = res["overall"]
    # im1 gets an extra WBC (0.7): 3 of 4 sets exact; 1 wrong cell of 12
    assert ov["subset_accuracy"] == 0.75 and ov["hamming_loss"] == pytest.approx(1 / 12)
    assert res["per_class"]["WBC"]["precision"] == pytest.approx(2 / 3) and res["per_class"]["RBC"]["AP"] == 1.0
    assert res["multi_label"] is True and res["threshold"] == 0.5
    assert [e["eval_id"] for e in vault.evaluations()] == [res["eval_id"]]
    # single-label scoring of a multi-label version is refused, pointing at --multi-label
    with pytest.raises(LensVaultError, match="more than one label") as e:
        vault.evaluate(dataset="cells@1.0.0", split=None, predictions=preds, task="classification")
    assert "--multi-label" in e.value.fix
    preds.write_text("image,Platelets,RBC,WBC\nim0.jpg,0.1,0.9,0.6\nim0.jpg,0.2,0.8,0.7\n")
    with pytest.raises(InputError, match="more than one prediction"):
        vault.evaluate(dataset="cells@1.0.0", split=None, predictions=preds, task="classification", multi_label=True)
    preds.write_text("image,Platelets,RBC,WBC\nim0.jpg,0.1,0.9,0.6\n")
    with pytest.raises(InputError, match=r"3 image\(s\) of the split have no prediction"):
        vault.evaluate(dataset="cells@1.0.0", split=None, predictions=preds, task="classification", multi_label=True)
    with pytest.raises(LensVaultError, match="--multi-label is for classification"):
        vault.evaluate(dataset="cells@1.0.0", split=None, predictions=preds, task="detection", multi_label=True)
    assert len(vault.evaluations()) == 1  # nothing recorded by a refusal
