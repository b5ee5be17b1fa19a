"""Classification metrics against cases computed by hand, and the predictions file's refusals."""

from __future__ import annotations

import json

import pytest

from lensvault.errors import InputError
from lensvault.evaluations.classification import ClassPrediction, evaluate_classification, parse_predictions

IDS = [0, 1, 2]
NAMES = ["cat", "dog", "bird"]


def _p(label, scores=None):
    return ClassPrediction(label, None if scores is None else scores[label], scores)


def test_hand_computed_labels_only():
    # truth:  cat cat cat dog dog bird      predicted: cat dog cat dog cat dog
    truth = {1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 6: 2}
    preds = {1: _p(0), 2: _p(1), 3: _p(0), 4: _p(1), 5: _p(0), 6: _p(1)}
    out = evaluate_classification(truth, preds, IDS, NAMES)
    assert out["confusion_matrix"]["counts"] == [[2, 1, 0], [1, 1, 0], [0, 1, 0]]
    pc = out["per_class"]
    # cat: P 2/3, R 2/3; dog: P 1/3, R 1/2; bird: P undefined (never predicted), R 0
    assert (pc["cat"]["precision"], pc["cat"]["recall"]) == pytest.approx((2 / 3, 2 / 3))
    assert (pc["dog"]["precision"], pc["dog"]["recall"]) == pytest.approx((1 / 3, 1 / 2))
    assert pc["dog"]["F1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert pc["bird"]["precision"] is None and pc["bird"]["recall"] == 0.0 and pc["bird"]["F1"] == 0.0
    ov = out["overall"]
    assert ov["accuracy"] == pytest.approx(3 / 6)
    assert ov["micro_F1"] == ov["accuracy"]
    assert ov["macro_precision"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert ov["macro_recall"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert ov["macro_F1"] == pytest.approx((2 / 3 + 0.4 + 0) / 3)
    assert ov["top5_accuracy"] is None  # labels only: top-k is not defined


def test_top_k_from_scores_and_label_is_the_argmax():
    truth = {1: 0, 2: 1, 3: 2}
    preds = {1: _p(0, {0: 0.7, 1: 0.2, 2: 0.1}),
             2: _p(0, {0: 0.5, 1: 0.4, 2: 0.1}),  # second guess right
             3: _p(0, {0: 0.6, 1: 0.3, 2: 0.1})}  # third guess right
    out = evaluate_classification(truth, preds, IDS, NAMES, top_k=2)
    assert out["overall"]["accuracy"] == pytest.approx(1 / 3)
    assert out["overall"]["top2_accuracy"] == pytest.approx(2 / 3)


def test_classes_never_seen_are_left_out_of_macro():
    truth = {1: 0, 2: 1}
    out = evaluate_classification(truth, {1: _p(0), 2: _p(1)}, IDS, NAMES)
    assert out["overall"]["macro_F1"] == 1.0
    assert out["per_class"]["bird"] == {"precision": None, "recall": None, "F1": None, "support": 0, "predicted": 0}


def test_per_slice():
    truth = {1: 0, 2: 1, 3: 1}
    tags = {1: {"cam": "a"}, 2: {"cam": "a"}, 3: {"cam": "b"}}
    out = evaluate_classification(truth, {1: _p(0), 2: _p(0), 3: _p(1)}, IDS, NAMES, image_tags=tags)
    assert out["per_slice"]["cam=a"]["accuracy"] == 0.5
    assert out["per_slice"]["cam=b"]["accuracy"] == 1.0


IMAGES = {"a.jpg": 1, "b.jpg": 2, "c.jpg": 3}
CLASSES = {"cat": 0, "dog": 1, "bird": 2}


def _parse(text: str):
    return parse_predictions(text.encode(), "preds", image_of=IMAGES.get,
                             class_of=lambda c: CLASSES.get(c) if isinstance(c, str) else (c if c in (0, 1, 2) else None))


def test_csv_label_score_and_per_class_scores_and_json():
    got = _parse("image,label,score\na.jpg,cat,0.9\nb.jpg,dog,1\n")
    assert got == {1: ClassPrediction(0, 0.9, None), 2: ClassPrediction(1, 1.0, None)}
    got = _parse("image,cat,dog,bird\na.jpg,0.1,0.7,0.2\n")
    assert got[1].label == 1 and got[1].scores == {0: 0.1, 1: 0.7, 2: 0.2}
    got = _parse(json.dumps([{"image": "c.jpg", "scores": {"cat": 0.2, "bird": 0.8}},
                             {"file_name": "a.jpg", "label": 1, "score": 0.5}]))
    assert got[3].label == 2 and got[1].label == 1


@pytest.mark.parametrize("text, words", [
    ("", "the predictions file is empty"),
    ("image,label,score\n", "has no predictions"),
    ("image,label,score\nzebra.jpg,cat,0.5\n", "name images the dataset does not have: 'zebra.jpg'"),
    ("image,label,score\na.jpg,cow,0.5\n", "name unknown classes: 'cow'"),
    ("image,label,score\na.jpg,cat,1.5\nb.jpg,dog,-0.5\n", "2 score(s) are not numbers in [0, 1]: line 2=1.5, line 3=-0.5"),
    ("image,label,score\na.jpg,cat,nan\n", "line 2=nan"),
    ('[{"image": "a.jpg", "label": "cat", "score": NaN}]', "[0]=nan"),
    ("image,label,score\na.jpg,cat,0.5\na.jpg,dog,0.4\n", "1 image(s) have more than one prediction: 'a.jpg'"),
    ("image,cat,dog,bird\na.jpg,0.1,2,0.2\n", "line 2 dog=2.0"),
])
def test_bad_predictions_are_refused_with_the_offenders(text, words):
    with pytest.raises(InputError) as e:
        _parse(text)
    assert words in str(e.value)
