"""Property-based fuzzing of the COCO and YOLO importers (hypothesis): structurally plausible
but hostile files — wrong types, NaN, huge numbers, missing keys, deep nesting, odd strings,
paths with ``..`` or absolute — give a located error (a LensVaultError with ``where``) or a
valid import, nothing else. Examples are derandomized (the same in CI every time) and bounded
in size; the deadline catches a hang."""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lensvault.annotations import load
from lensvault.errors import LensVaultError

FUZZ = settings(max_examples=250, deadline=timedelta(seconds=20), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

ODD_TEXT = st.sampled_from([
    "", " ", "a.png", "images/a.png", "../a.png", "../../../../../etc/hostname", "/etc/hostname", "/", ".",
    "..", "a\x00b", "..\\..\\x.png", "C:\\img\\a.png", "ñ/á.png", "a" * 300, "nan", "Infinity", "1e999", "0",
    "-1", "true", "null", "{}", "[]", "images/../../a.png", "./images/a.png", "~/a.png", "\u202e.png",
])
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 0.5, 1.0]),
    ODD_TEXT, st.text(max_size=20),
)


# Deep nesting travels as a marker that becomes [[[...0...]]] in the file's text: hypothesis
# (which prints every example) and json.dumps both recurse on nested Python lists.
DEEP = st.sampled_from([50, 99, 100, 101, 500, 3000]).map(lambda n: f"DEEPNEST-{n}")
_DEEP_RE = re.compile(r"[\"']?DEEPNEST-(\d+)[\"']?")


def expand_deep(text: str) -> str:
    return _DEEP_RE.sub(lambda m: "[" * int(m.group(1)) + "0" + "]" * int(m.group(1)), text)


HOSTILE = st.recursive(
    st.one_of(SCALARS, DEEP),
    lambda inner: st.one_of(st.lists(inner, max_size=8), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def _numbers(n):
    return st.lists(st.one_of(st.floats(-50, 50), st.integers(-50, 50), SCALARS), min_size=0, max_size=n)


# Values shaped like the field they replace, so that the fuzzer gets past the first check.
FIELD_VALUES = {
    "bbox": st.one_of(_numbers(6), HOSTILE),
    "segmentation": st.one_of(st.lists(_numbers(10), max_size=3), _numbers(10),
                              st.fixed_dictionaries({"size": st.one_of(_numbers(3), HOSTILE),
                                                     "counts": st.one_of(st.lists(st.integers(-5, 300), max_size=6),
                                                                         st.text("0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmno", max_size=12),
                                                                         HOSTILE)}),
                              HOSTILE),
    "keypoints": st.one_of(_numbers(9), HOSTILE),
    "file_name": st.one_of(ODD_TEXT, HOSTILE),
}

PATHS = [
    "images", "annotations", "categories",
    "images.0", "images.0.id", "images.0.file_name", "images.0.width", "images.0.height", "images.0.extra",
    "images.1.id", "images.1.file_name", "images.1.tags",
    "annotations.0", "annotations.0.id", "annotations.0.image_id", "annotations.0.category_id",
    "annotations.0.bbox", "annotations.0.iscrowd", "annotations.0.area", "annotations.0.attributes",
    "annotations.1.segmentation", "annotations.1.keypoints", "annotations.1.bbox", "annotations.1.image_id",
    "annotations.1.custom", "annotations.2.segmentation", "annotations.2.bbox",
    "categories.0", "categories.0.id", "categories.0.name", "categories.1.keypoints", "categories.1.skeleton",
]


def _base() -> dict:
    return {
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog", "keypoints": ["a", "b"], "skeleton": [[1, 2]]}],
        "images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10},
                   {"id": 2, "file_name": "b.png", "width": 20, "height": 10}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [2, 2, 4, 4],
             "segmentation": [[2, 2, 6, 2, 6, 6]], "keypoints": [3, 3, 2, 5, 5, 2]},
            {"id": 3, "image_id": 2, "category_id": 1, "iscrowd": 1,
             "segmentation": {"size": [10, 20], "counts": [0, 200]}},
        ],
    }


@st.composite
def coco_documents(draw):
    doc = _base()
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = doc
        try:
            for p in parents:
                node = node[p]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced the parent
        if not ((isinstance(node, dict) and isinstance(last, str))
                or (isinstance(node, list) and isinstance(last, int) and last < len(node))):
            continue
        if isinstance(node, dict) and draw(st.integers(0, 9)) == 0:
            node.pop(last, None)
            continue
        node[last] = draw(FIELD_VALUES.get(last, HOSTILE))
    return doc


RAW_FILES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"", b"[]", b"null", b'""', b"{", b'{"images": [', b"\xff\xfe{\x00}\x00",
                     b"[" * 5000 + b"]" * 5000, b'{"images": [], "a": ' + b"9" * 5000 + b"}"]),
)


def assert_valid(aset) -> None:
    """What a successful import guarantees: paths inside SRC, finite numbers, parseable JSON."""
    for path in aset.images.column("path").to_pylist():
        assert path and not path.startswith("/") and ".." not in path.split("/"), path
    for name in ("x", "y", "w", "h"):
        assert all(math.isfinite(v) for v in aset.annotations.column(name).to_pylist()), name
    for rings in aset.annotations.column("polygon").to_pylist():
        assert rings is None or all(math.isfinite(v) for ring in rings for v in ring)
    for kp in aset.annotations.column("keypoints").to_pylist():
        assert kp is None or all(math.isfinite(v) for v in kp)
    for rle in aset.annotations.column("rle").to_pylist():
        assert rle is None or json.loads(rle)["counts"]
    for text in aset.annotations.column("attributes").to_pylist() + aset.images.column("tags").to_pylist():
        json.loads(text)


def load_or_located_error(root: Path, **kw):
    try:
        aset = load(root, **kw)
    except LensVaultError as e:  # anything else fails the test with its traceback
        assert e.where and e.what and e.fix, e
        return None
    assert_valid(aset)
    return aset


@pytest.fixture
def coco_root(tmp_path, make_image) -> Path:
    root = tmp_path / "ds"
    make_image(root / "images" / "a.png")
    make_image(root / "images" / "b.png")
    make_image(tmp_path / "outside.png")
    (root / "annotations").mkdir()
    return root


@FUZZ
@given(doc=coco_documents())
def test_coco_fuzz(coco_root, doc):
    (coco_root / "annotations" / "instances_train.json").write_text(expand_deep(json.dumps(doc)))
    load_or_located_error(coco_root, format="coco")


@FUZZ
@given(raw=RAW_FILES)
def test_coco_fuzz_raw_bytes(coco_root, raw):
    (coco_root / "annotations" / "instances_train.json").write_bytes(raw)
    assert load_or_located_error(coco_root, format="coco") is None or raw.strip().startswith(b"{")


# ---------------------------------------------------------------- YOLO

YAML_SNIPPETS = st.sampled_from([
    "", "names: &n [a, *n]\n", "names: " + "[" * 300 + "]" * 300 + "\n", "date: 2024-13-45\nnames: [a]\n",
    "names: !!python/object:os.system [ls]\n", "names: !!binary '@@@'\n", "? [a]\n: b\nnames: [a]\n",
    ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nnames: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"),
    "\t- bad indent\n", "names: [a\n", "- a\n- b\n", "0\n", "names: {0: a, 2: b}\n", "names: {-1: a}\n",
])

PATH_VALUES = st.one_of(ODD_TEXT, st.sampled_from(["images/train", "images/val", "train.txt", "../outside.png",
                                                  "../images/train", "images", "labels/train"]), HOSTILE)


@st.composite
def data_yaml(draw):
    import yaml

    if draw(st.integers(0, 4)) == 0:
        return draw(YAML_SNIPPETS)
    keys = draw(st.lists(st.sampled_from(["path", "train", "val", "test", "names", "nc", "kpt_shape", "custom"]),
                         unique=True, max_size=6))
    config = {}
    for key in keys:
        if key in ("path", "train", "val", "test", "custom"):
            config[key] = draw(st.one_of(PATH_VALUES, st.lists(PATH_VALUES, max_size=3)))
        elif key == "names":
            config[key] = draw(st.one_of(st.lists(SCALARS, max_size=4), st.dictionaries(SCALARS, SCALARS, max_size=3),
                                         HOSTILE))
        elif key == "nc":
            config[key] = draw(SCALARS)
        else:
            config[key] = draw(st.one_of(st.lists(SCALARS, max_size=3), HOSTILE))
    try:
        return yaml.safe_dump(config, allow_unicode=True)
    except (yaml.YAMLError, ValueError, RecursionError):
        return "names: [a]\n"


TOKENS = st.sampled_from(["0", "1", "2", "-1", "0.5", "0.25", "1.5", "nan", "inf", "-inf", "1e999", "abc", "0x10",
                          "1_0", "99999999999", "", "1e-400", "NaN", "٣"])
GOOD_LINE = st.tuples(st.sampled_from(["0", "1"]), *[st.floats(0, 1).map(lambda v: f"{v:.4f}")] * 4).map(" ".join)
LABEL_TEXT = st.lists(st.one_of(GOOD_LINE, st.lists(TOKENS, max_size=12).map(" ".join)), max_size=4).map("\n".join)
LIST_TEXT = st.lists(st.one_of(PATH_VALUES.filter(lambda v: isinstance(v, str)),
                               st.sampled_from(["images/train/1.png", "images/val/2.png"])), max_size=4).map(
    lambda lines: "\n".join(line.replace("\n", " ") for line in lines))


@pytest.fixture
def yolo_root(tmp_path, make_image) -> Path:
    root = tmp_path / "ds"
    make_image(root / "images" / "train" / "1.png")
    make_image(root / "images" / "val" / "2.png")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    make_image(tmp_path / "outside.png")
    return root


@settings(FUZZ, max_examples=150)
@given(config=data_yaml(), label=LABEL_TEXT, other=LABEL_TEXT, listed=LIST_TEXT)
def test_yolo_fuzz(yolo_root, config, label, other, listed):
    (yolo_root / "data.yaml").write_text(expand_deep(config), encoding="utf-8")
    (yolo_root / "labels" / "train" / "1.txt").write_text(label)
    (yolo_root / "labels" / "val" / "2.txt").write_text(other)
    (yolo_root / "train.txt").write_text(listed, encoding="utf-8")
    load_or_located_error(yolo_root, format="yolo")
