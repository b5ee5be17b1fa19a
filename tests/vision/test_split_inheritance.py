"""Splits survive a re-snapshot: a new version keeps its parent's rule and membership, new images
follow the same rule, byte-identical images share a split, `--split none` drops splits on purpose,
source splits keep coming from the source, and `--split` is validated."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from lensvault.datasets.splits import SplitSpec, parse_ratios
from lensvault.errors import UsageError

from .test_vault_vision import lv, subset


def membership(ds) -> dict[str, str | None]:
    t = ds.images()
    return dict(zip(t["path"].to_pylist(), t["split"].to_pylist()))


def nudge_a_box(src, stem="BloodImage_00001") -> None:
    xml = src / "Annotations" / f"{stem}.xml"
    xml.write_text(re.sub(r"<xmin>(\d+)</xmin>", lambda m: f"<xmin>{int(m.group(1)) - 1}</xmin>", xml.read_text(), count=1))


def no_split_files(src):
    shutil.rmtree(src / "ImageSets")
    return src


def test_a_label_fix_keeps_every_split_and_is_a_patch(vault, tmp_path):
    src = subset(tmp_path / "ds", 20)
    first = vault.snapshot("cells", src, format="voc", version="1.0.0", split="70/20/10", seed=42)
    nudge_a_box(src)
    r = lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--bump", "auto", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["version"] == "1.0.1" and out["bump"] == "patch", out["changelog"]
    second = vault.dataset("cells@1.0.1")
    assert membership(second) == membership(first)
    assert second.manifest().splits["method"] == "hash" and second.manifest().splits["seed"] == 42
    assert second.manifest().splits["ratios"] == first.manifest().splits["ratios"]
    diff = json.loads(lv(vault, "dataset", "diff", "cells@1.0.0", "cells@1.0.1", "--json").stdout)
    assert diff["split_moves"]["count"] == 0 and diff["suggested_bump"] == "patch"


def test_new_images_follow_the_parents_rule_and_group(vault, tmp_path):
    src = no_split_files(subset(tmp_path / "ds", 16))
    rule = r"BloodImage_000(\d)"
    first = vault.snapshot("cells", src, format="voc", version="1.0.0", split="50/50", seed=7, group_by=rule)
    subset(tmp_path / "more", 16, start=16)
    for sub in ("Annotations", "JPEGImages"):
        for p in (tmp_path / "more" / sub).iterdir():
            shutil.copyfile(p, src / sub / p.name)
    second = vault.snapshot("cells", src, format="voc", bump="auto")
    assert second.version == "1.1.0"
    after = membership(second)
    before = membership(first)
    assert all(after[p] == s for p, s in before.items())
    spec = SplitSpec({"train": 0.5, "test": 0.5}, 7, rule)
    assert {p: s for p, s in after.items() if p not in before} == {p: spec.split_of(p) for p in after if p not in before}
    assert second.manifest().splits == {**first.manifest().splits, "counts": second.manifest().splits["counts"]}


def test_split_none_drops_splits_on_purpose_and_is_inherited_as_none(vault, tmp_path):
    src = no_split_files(subset(tmp_path / "ds", 10))
    vault.snapshot("cells", src, format="voc", version="1.0.0", split="70/30", seed=1)
    r = lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--split", "none", "--bump", "auto", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["version"] == "1.1.0" and out["splits"] == {"unassigned": 10}  # split moves: MINOR
    dropped = vault.dataset(out["ref"])
    assert set(membership(dropped).values()) == {None} and dropped.manifest().splits["method"] == "none"
    nudge_a_box(src)
    again = vault.snapshot("cells", src, format="voc", bump="auto")
    assert again.version == "1.1.1" and set(membership(again).values()) == {None}


def test_source_splits_keep_coming_from_the_source(vault, tmp_path):
    src = subset(tmp_path / "ds", 20)
    first = vault.snapshot("cells", src, format="voc", version="1.0.0")
    assert first.manifest().splits["method"] == "source"
    nudge_a_box(src)
    test_txt = src / "ImageSets/Main/test.txt"
    moved = test_txt.read_text().split()[0]
    test_txt.write_text("\n".join(test_txt.read_text().split()[1:]) + "\n")
    train_txt = src / "ImageSets/Main/train.txt"
    train_txt.write_text(train_txt.read_text() + moved + "\n")
    second = vault.snapshot("cells", src, format="voc", bump="auto")
    assert second.manifest().splits["method"] == "source"
    assert membership(second)[f"JPEGImages/{moved}.jpg"] == "train"  # the source moved it, so it moved
    assert second.version == "1.1.0"


def test_the_same_explicit_rule_keeps_membership_and_a_new_rule_reassigns(vault, tmp_path):
    src = no_split_files(subset(tmp_path / "ds", 20))
    first = vault.snapshot("cells", src, format="voc", version="1.0.0", split="70/20/10", seed=42)
    nudge_a_box(src)
    same = vault.snapshot("cells", src, format="voc", bump="auto", split="0.7/0.2/0.1", seed=42)
    assert same.version == "1.0.1" and membership(same) == membership(first)
    other = vault.snapshot("cells", src, format="voc", bump="auto", split="50/50", seed=3)
    spec = SplitSpec({"train": 0.5, "test": 0.5}, 3)
    assert membership(other) == {p: spec.split_of(p) for p in membership(other)}
    assert other.version == "1.1.0" and other.manifest().splits["seed"] == 3


def test_byte_identical_images_share_a_split_so_check_finds_no_leak(vault, tmp_path):
    src = no_split_files(subset(tmp_path / "ds", 10))
    spec = SplitSpec(parse_ratios("50/50"), 11)
    originals = sorted(f"JPEGImages/{x.stem}.jpg" for x in (src / "Annotations").glob("*.xml"))[:2]
    # Copies whose own hash would put them in the other split than their original.
    copies = {o: _flat_copies(spec, o, 3) for o in originals}
    add_copies(src, copies)
    v1 = vault.snapshot("cells", src, format="voc", version="1.0.0", split="50/50", seed=11)
    m1 = membership(v1)
    for o, paths in copies.items():
        first = min([o, *paths])  # the first by path decides for all its copies
        assert {m1[p] for p in (o, *paths)} == {spec.split_of(first)}, (o, paths, m1)
    r = lv(vault, "dataset", "check", "cells@1.0.0", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["has_train_test_leak"] is False and len(report["exact"]) == 2
    # A later version: a new copy of an image that already has a split takes that split.
    late = _flat_copies(spec, originals[0], 1, start=100)
    add_copies(src, {originals[0]: late})
    v2 = vault.snapshot("cells", src, format="voc", bump="auto")
    m2 = membership(v2)
    assert all(m2[p] == s for p, s in m1.items())
    assert m2[late[0]] == m1[originals[0]] != spec.split_of(late[0])
    r = lv(vault, "dataset", "check", v2.ref, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["has_train_test_leak"] is False


def _flat_copies(spec, original: str, n: int, start: int = 0) -> list[str]:
    """Paths beside ``original`` (sorted after it) whose own hash split differs from the original's."""
    stem = original[:-4]
    out, i = [], start
    while len(out) < n:
        path = f"{stem}_copy{i}.jpg"
        if spec.split_of(path) != spec.split_of(original):
            out.append(path)
        i += 1
    return out


def add_copies(src, paths_of: dict[str, list[str]]) -> None:
    """Byte-identical copies of real JPEGs, each with its own VOC XML (the same boxes)."""
    for o, paths in paths_of.items():
        xml = (src / "Annotations" / f"{o.rsplit('/', 1)[1][:-4]}.xml").read_text()
        for p in paths:
            name = p.rsplit("/", 1)[1]
            shutil.copyfile(src / o, src / p)
            (src / "Annotations" / f"{name[:-4]}.xml").write_text(
                re.sub(r"<filename>[^<]*</filename>", f"<filename>{name}</filename>", xml))


@pytest.mark.parametrize("text, ratios", [
    ("70/20/10", {"train": 0.7, "val": 0.2, "test": 0.1}),
    ("80/20", {"train": 0.8, "test": 0.2}),
    ("0.7/0.2/0.1", {"train": 0.7, "val": 0.2, "test": 0.1}),
    ("train=80,test=20", {"train": 0.8, "test": 0.2}),
    ("train=70,val=20,test=10", {"train": 0.7, "val": 0.2, "test": 0.1}),
    ("train=60/validation=40", {"train": 0.6, "val": 0.4}),
    (" 50 / 50 ", {"train": 0.5, "test": 0.5}),
])
def test_split_specifications_that_work(text, ratios):
    assert parse_ratios(text) == pytest.approx(ratios)
    assert list(parse_ratios(text)) == list(ratios)


@pytest.mark.parametrize("text, words", [
    ("70/20/5", "sum to 95"),
    ("70/40", "sum to 110"),
    ("0.5/0.2", "sum to 0.7"),
    ("1/1", "sum to 2"),
    ("100", "1 part"),
    ("40/30/20/10", "4 parts"),
    ("70/30/0", "above zero"),
    ("70/-10/40", "above zero"),
    ("seventy/30", "number"),
    ("test=20,train=80", "order train, val, test"),
    ("train=80,holdout=20", "unknown split name 'holdout'"),
    ("train=50,train=50", "twice"),
    ("train=80,20", "mixes"),
    ("70//30", "empty part"),
    ("", "empty part"),
])
def test_bad_split_specifications_say_what_is_wrong(text, words):
    with pytest.raises(UsageError) as ei:
        parse_ratios(text)
    assert words in ei.value.what and ei.value.where == "--split" and "70/20/10" in ei.value.fix
