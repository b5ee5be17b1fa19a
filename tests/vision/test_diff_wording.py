"""A box that changed in several ways says every one of them: it is counted in one category
(moved, relabeled), but the line a person reads names the rest too — the JSON's ``changed``
list and the human line agree."""

from __future__ import annotations

import json
import re

from .conftest import BCCD
from .test_vault_vision import lv, subset

IMAGE = "BloodImage_00000"


def _edit(xml: str, nth: int, *, name: str | None = None, shift: int = 0, difficult: int | None = None) -> str:
    """The VOC file with its ``nth`` object changed."""
    parts = xml.split("<object>")
    obj = parts[nth + 1]
    if name is not None:
        obj = re.sub(r"<name>[^<]*</name>", f"<name>{name}</name>", obj, count=1)
    if shift:
        obj = re.sub(r"<(xmin|xmax)>(\d+)</\1>", lambda m: f"<{m[1]}>{int(m[2]) + shift}</{m[1]}>", obj)
    if difficult is not None:
        obj = re.sub(r"<difficult>\d</difficult>", f"<difficult>{difficult}</difficult>", obj)
    parts[nth + 1] = obj
    return "<object>".join(parts)


def test_a_box_relabeled_and_moved_says_both_and_a_moved_box_says_what_else_changed(vault, tmp_path):
    assert BCCD.is_dir()
    src = subset(tmp_path / "src", 2)
    assert lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--version", "1.0.0").returncode == 0
    xml_path = src / "Annotations" / f"{IMAGE}.xml"
    xml = xml_path.read_text()
    xml = _edit(xml, 1, name="WBC", shift=6)            # an RBC box: now WBC, and moved 6 px
    xml = _edit(xml, 2, shift=5, difficult=1)           # another RBC box: moved, and now difficult
    xml_path.write_text(xml)
    done = lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--version", "1.0.1")
    assert done.returncode == 0, done.stderr

    d = json.loads(lv(vault, "dataset", "diff", "cells@1.0.0", "cells@1.0.1", "--json").stdout)["annotations"]
    [relabeled] = d["relabeled"]
    assert relabeled["changed"] == ["class", "bbox"]
    [moved] = d["moved"]
    assert moved["attributes"] == {"difficult": [False, True]}

    human = lv(vault, "dataset", "diff", "cells@1.0.0", "cells@1.0.1").stdout
    assert re.search(r"relabeled\s+RBC → WBC and moved", human), human
    assert re.search(r"moved\s+RBC .*; also difficult False → True", human), human


def test_an_image_the_split_lists_leave_out_is_named_in_a_warning(vault, tmp_path):
    """New images added to a VOC folder but to no ImageSets file were silently in no split."""
    src = subset(tmp_path / "src", 3)
    extra = src / "JPEGImages" / "BloodImage_new.jpg"
    extra.write_bytes((src / "JPEGImages" / f"{IMAGE}.jpg").read_bytes())
    (src / "Annotations" / "BloodImage_new.xml").write_text(
        (src / "Annotations" / f"{IMAGE}.xml").read_text().replace(f"{IMAGE}.jpg", "BloodImage_new.jpg"))
    done = lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--version", "1.0.0", "--json")
    assert done.returncode == 0, done.stderr
    found = [f for f in json.loads(done.stdout)["findings"] if f["code"] == "no-split"]
    assert len(found) == 1 and "JPEGImages/BloodImage_new.jpg" in found[0]["message"], found
    human = lv(vault, "dataset", "snapshot", "cells2", src, "--format", "voc", "--version", "1.0.0")
    assert "no split" in human.stdout + human.stderr
    strict = lv(vault, "dataset", "snapshot", "cells3", src, "--format", "voc", "--version", "1.0.0", "--strict")
    assert strict.returncode != 0 and "no-split" in strict.stderr
    assert "cells3" not in lv(vault, "dataset", "list").stdout

    # Every image listed, or a hashed split: no warning.
    hashed = lv(vault, "dataset", "snapshot", "cells4", src, "--format", "voc", "--version", "1.0.0", "--split",
                "70/20/10", "--seed", "1", "--json")
    assert not [f for f in json.loads(hashed.stdout)["findings"] if f["code"] == "no-split"]
    extra.unlink()
    (src / "Annotations" / "BloodImage_new.xml").unlink()
    clean = lv(vault, "dataset", "snapshot", "cells5", src, "--format", "voc", "--version", "1.0.0", "--json")
    assert not [f for f in json.loads(clean.stdout)["findings"] if f["code"] == "no-split"]
