from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensvault.configs.values import (
    canonical_bytes,
    diff_configs,
    find_seed,
    find_seeds,
    flatten,
    load_config,
    next_config_id,
    unflatten,
    validate_config_id,
)
from lensvault.errors import InputError, NotFound, UsageError

EXPECTED = {
    "model": {"architecture": "yolov8n", "pretrained": True, "anchors": [[10, 13], [16, 30]]},
    "training": {"lr": 0.01, "epochs": 100, "seed": 42},
    "data": {"dataset": "retail@1.1.1", "augment": []},
}

YAML = """\
# detector baseline
model:
  architecture: yolov8n
  pretrained: true
  anchors: [[10, 13], [16, 30]]
training:
  lr: 0.01
  epochs: 100
  seed: 42
data:
  dataset: retail@1.1.1
  augment: []
"""

TOML = """\
[model]
architecture = "yolov8n"
pretrained = true
anchors = [[10, 13], [16, 30]]

[training]
lr = 0.01
epochs = 100
seed = 42

[data]
dataset = "retail@1.1.1"
augment = []
"""


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize(
    "name,text",
    [("c.yaml", YAML), ("c.yml", YAML), ("c.json", json.dumps(EXPECTED, indent=2)), ("c.toml", TOML), ("C.YAML", YAML)],
)
def test_load_each_format(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert load_config(path) == EXPECTED


def test_same_settings_in_three_formats_hash_the_same(tmp_path):
    hashes = set()
    for name, text in [("a.yaml", YAML), ("a.json", json.dumps(EXPECTED)), ("a.toml", TOML)]:
        (tmp_path / name).write_text(text)
        hashes.add(hashlib.sha256(canonical_bytes(load_config(tmp_path / name))).hexdigest())
    assert len(hashes) == 1


def test_json_with_bom(tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"a": 1}).encode())
    assert load_config(path) == {"a": 1}


def test_empty_yaml_is_empty_config(tmp_path):
    (tmp_path / "e.yaml").write_text("# nothing yet\n")
    assert load_config(tmp_path / "e.yaml") == {}


@pytest.mark.parametrize(
    "name,text,line",
    [
        ("bad.yaml", "model:\n  arch: yolo\n   lr: 0.1\n", 3),
        ("bad2.yaml", "a: 1\nb: [1, 2\nc: 3\n", 3),
        ("bad.json", '{\n  "a": 1,\n  "b": 2,\n}\n', 4),
        ("bad.toml", '[model]\narch = "yolo"\nlr = \n', 3),
        ("dup.toml", "a = 1\na = 2\n", 2),
    ],
)
def test_malformed_content_is_located(tmp_path, name, text, line):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_config(path)
    err = info.value
    assert re.fullmatch(rf"{re.escape(str(path))}:{line}(:\d+)?", err.where)
    assert err.details["line"] == line
    assert "malformed" in err.what
    assert err.fix


def test_top_level_must_be_mapping(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(InputError, match="mapping"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "n.json").write_text("3")
    with pytest.raises(InputError, match="mapping"):
        load_config(tmp_path / "n.json")


def test_unsupported_missing_and_binary_files(tmp_path):
    (tmp_path / "c.ini").write_text("[a]\nb=1\n")
    with pytest.raises(InputError, match="unsupported") as info:
        load_config(tmp_path / "c.ini")
    assert ".yaml" in info.value.fix
    with pytest.raises(NotFound):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(InputError, match="UTF-8"):
        load_config(tmp_path / "bin.yaml")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(InputError, match="directory"):
        load_config(tmp_path / "dir.json")


def test_yaml_does_not_construct_python_objects(tmp_path):
    (tmp_path / "evil.yaml").write_text("a: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(InputError):
        load_config(tmp_path / "evil.yaml")


# --------------------------------------------------------------------------- flatten


def test_flatten_dotted_keys():
    assert flatten(EXPECTED) == {
        "model.architecture": "yolov8n",
        "model.pretrained": True,
        "model.anchors": [[10, 13], [16, 30]],
        "training.lr": 0.01,
        "training.epochs": 100,
        "training.seed": 42,
        "data.dataset": "retail@1.1.1",
        "data.augment": [],
    }


def test_flatten_keeps_empty_sections_and_stringifies_keys():
    assert flatten({"a": {}, "classes": {0: "person", 1: "car"}, True: 1}) == {
        "a": {},
        "classes.0": "person",
        "classes.1": "car",
        "true": 1,
    }


def test_flatten_collision_is_an_error():
    with pytest.raises(InputError, match="defined twice"):
        flatten({"a.b": 1, "a": {"b": 2}})


# Configs as people write them: identifier-like keys without dots, JSON-ish leaves.
keys = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3), max_leaves=5)
configs = st.recursive(
    st.dictionaries(keys, values, max_size=4),
    lambda inner: st.dictionaries(keys, inner | values, max_size=4),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(configs)
def test_unflatten_inverts_flatten(cfg):
    assert unflatten(flatten(cfg)) == cfg


@settings(max_examples=100, deadline=None)
@given(configs, configs)
def test_diff_applied_to_a_gives_b(a, b):
    diff = diff_configs(a, b)
    patched = {k: v for k, v in flatten(a).items() if k not in diff["removed"]}
    patched.update(diff["added"])
    patched.update({k: new for k, (_, new) in diff["changed"].items()})
    assert canonical_bytes(patched) == canonical_bytes(flatten(b))
    assert diff_configs(a, a) == {"added": {}, "removed": {}, "changed": {}}
    reverse = diff_configs(b, a)
    assert reverse["added"] == diff["removed"]
    assert reverse["removed"] == diff["added"]
    assert reverse["changed"] == {k: (new, old) for k, (old, new) in diff["changed"].items()}


# --------------------------------------------------------------------------- diff


def test_diff_configs_example():
    b = {
        "model": {"architecture": "yolov8s", "pretrained": True, "anchors": [[10, 13], [16, 30]]},
        "training": {"lr": 0.01, "epochs": 100, "seed": 42, "warmup": 3},
        "data": {"dataset": "retail@1.1.1"},
    }
    assert diff_configs(EXPECTED, b) == {
        "added": {"training.warmup": 3},
        "removed": {"data.augment": []},
        "changed": {"model.architecture": ("yolov8n", "yolov8s")},
    }


def test_diff_is_type_strict_but_nan_equals_nan():
    diff = diff_configs({"a": 1, "b": 1, "c": float("nan"), "d": [1, 2]}, {"a": 1.0, "b": True, "c": float("nan"), "d": [2, 1]})
    assert set(diff["changed"]) == {"a", "b", "d"}


def test_diff_leaf_becomes_section():
    diff = diff_configs({"opt": "sgd"}, {"opt": {"name": "sgd", "momentum": 0.9}})
    assert diff == {"added": {"opt.momentum": 0.9, "opt.name": "sgd"}, "removed": {"opt": "sgd"}, "changed": {}}


# --------------------------------------------------------------------------- canonical bytes


def test_canonical_bytes_is_sorted_compact_utf8():
    assert canonical_bytes({"b": 1, "a": {"d": "é", "c": [1, 2.5, None, True]}}) == (
        '{"a":{"c":[1,2.5,null,true],"d":"é"},"b":1}'.encode()
    )
    assert canonical_bytes({"a": 1}) != canonical_bytes({"a": 1.0})


def test_canonical_bytes_dates_keys_and_bad_values():
    assert canonical_bytes({"when": dt.date(2024, 1, 2), 3: "x"}) == b'{"3":"x","when":"2024-01-02"}'
    with pytest.raises(InputError, match="two keys"):
        canonical_bytes({1: "a", "1": "b"})
    with pytest.raises(InputError, match="set"):
        canonical_bytes({"a": {1, 2}})
    assert math.isnan(json.loads(canonical_bytes({"x": float("nan")}))["x"])


def test_toml_datetimes_hash(tmp_path):
    (tmp_path / "t.toml").write_text("created = 2024-05-01T10:00:00Z\n")
    assert canonical_bytes(load_config(tmp_path / "t.toml")) == b'{"created":"2024-05-01T10:00:00+00:00"}'


# --------------------------------------------------------------------------- seeds


@pytest.mark.parametrize(
    "cfg,seed",
    [
        ({"seed": 7}, 7),
        ({"random_seed": 3}, 3),
        ({"training": {"seed": 11}}, 11),
        ({"trainer": {"manual_seed": "13"}}, 13),
        ({"data": {"split_seed_unrelated": 1}, "model": {"x": {"seed": 5}}}, 5),
        ({"data": {"seed": 1}, "training": {"seed": 2}}, 2),  # training seed decides the run
        ({"seed": 9, "training": {"seed": 2}}, 9),  # top level wins
        ({"seed": None, "training": {"seed": 4}}, 4),  # null means "random"
        ({"seed": True}, None),
        ({"seed": "auto"}, None),
        ({"lr": 0.1}, None),
        ({}, None),
        ({"SEED": 21}, 21),
        ({"seed": 5.0}, 5),
    ],
)
def test_find_seed(cfg, seed):
    assert find_seed(cfg) == seed


def test_find_seeds_lists_all():
    cfg = {"seed": 1, "data": {"random_seed": 2}, "aug": {"mosaic": {"seed": 3}}, "seeds": [1, 2]}
    assert find_seeds(cfg) == {"seed": 1, "data.random_seed": 2, "aug.mosaic.seed": 3}


def test_find_seed_in_loaded_file(tmp_path):
    (tmp_path / "c.yaml").write_text(YAML)
    assert find_seed(load_config(tmp_path / "c.yaml")) == 42


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize("good", ["C-01", "C-23c", "C-baseline", "C-1.2_x-y", "C-" + "a" * 64])
def test_valid_config_ids(good):
    assert validate_config_id(good) == good


@pytest.mark.parametrize("bad", ["C-", "c-01", "C01", "C-.x", "C--1", "C-a b", "C-" + "a" * 65, "C-01\n", "", "X-01", "C-é"])
def test_invalid_config_ids(bad):
    with pytest.raises(UsageError) as info:
        validate_config_id(bad)
    assert "C-01" in info.value.fix


@pytest.mark.parametrize(
    "existing,expected",
    [
        ([], "C-01"),
        (["C-01", "C-02"], "C-03"),
        (["C-09"], "C-10"),
        (["C-99"], "C-100"),
        (["C-001"], "C-002"),
        (["C-23c", "C-baseline"], "C-01"),
        (["C-05", "C-23c", "C-3"], "C-06"),
    ],
)
def test_next_config_id(existing, expected):
    new = next_config_id(existing)
    assert new == expected
    assert validate_config_id(new) == new
    assert new not in existing


@settings(max_examples=100, deadline=None)
@given(st.lists(st.from_regex(r"C-[0-9A-Za-z][0-9A-Za-z._-]{0,5}", fullmatch=True), max_size=10))
def test_next_config_id_never_collides(existing):
    new = next_config_id(existing)
    assert validate_config_id(new) == new
    assert new not in existing


def test_duplicate_keys_are_refused(tmp_path):
    (tmp_path / "d.yaml").write_text("training:\n  lr: 0.1\n  epochs: 3\n  lr: 0.2\n")
    with pytest.raises(InputError, match="duplicate key 'lr'") as info:
        load_config(tmp_path / "d.yaml")
    assert info.value.details["line"] == 4
    (tmp_path / "d.json").write_text('{"a": {"b": 1, "b": 2}}')
    with pytest.raises(InputError, match="duplicate key 'b'"):
        load_config(tmp_path / "d.json")


def test_yaml_merge_keys_may_override(tmp_path):
    (tmp_path / "m.yaml").write_text(
        "base: &base\n  lr: 0.1\n  epochs: 3\nfinetune:\n  <<: *base\n  lr: 0.01\n"
    )
    assert load_config(tmp_path / "m.yaml")["finetune"] == {"lr": 0.01, "epochs": 3}
