"""`dataset fix` works on every version, whatever folder the snapshot was taken from: the manifest
records the annotation location relative to the dataset root, not to the working folder."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from lensvault.datasets.fix import annotations_in_version
from lensvault.errors import UsageError

from .test_vault_vision import lv, subset


def corrected_xml(src, dest, stem="BloodImage_00002"):
    dest.mkdir(parents=True, exist_ok=True)
    xml = src / "Annotations" / f"{stem}.xml"
    (dest / xml.name).write_text(re.sub(r"<xmin>(\d+)</xmin>", lambda m: f"<xmin>{int(m.group(1)) - 2}</xmin>",
                                        xml.read_text(), count=1))
    return dest


@pytest.mark.parametrize("given", ["relative to the working folder", "absolute", "relative to SRC"])
def test_fix_from_another_folder_after_the_source_moved(vault, tmp_path, given):
    work = tmp_path / "project"
    src = subset(work / "data" / "BCCD", 8)
    ann = {"relative to the working folder": "data/BCCD/Annotations", "absolute": str(src / "Annotations"),
           "relative to SRC": "Annotations"}[given]
    r = lv(vault, "dataset", "snapshot", "cells", "data/BCCD", "--format", "voc", "--annotations", ann,
           "--version", "1.0.0", cwd=work)
    assert r.returncode == 0, r.stderr
    assert vault.dataset("cells@1.0.0").manifest().source["annotations"] == "Annotations"
    corrected_xml(src, tmp_path / "fixed")
    shutil.move(src, tmp_path / "moved")  # the fix reads the version, not the source folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = lv(vault, "dataset", "fix", "cells@1.0.0", "--annotations", "../fixed", "--json", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ref"] == "cells@1.0.1" and out["bump"] == "patch" and "1 moved" in out["changelog"]["summary"]


def test_fix_of_a_version_whose_annotations_were_outside_its_folder_says_what_to_do(vault, tmp_path):
    src = subset(tmp_path / "ds", 6)
    outside = tmp_path / "xml"
    shutil.move(src / "Annotations", outside)
    r = lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--annotations", outside, "--version", "1.0.0")
    assert r.returncode == 0, r.stderr
    assert vault.dataset("cells@1.0.0").manifest().source["annotations"] == str(outside.resolve())
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    shutil.copyfile(outside / "BloodImage_00002.xml", fixed / "BloodImage_00002.xml")
    r = lv(vault, "dataset", "fix", "cells@1.0.0", "--annotations", fixed)
    assert r.returncode == 2 and "outside its folder" in r.stderr and "--annotations CORRECTED" in r.stderr, r.stderr
    assert [x.version for x in vault.versions("cells")] == ["1.0.0"]


@pytest.mark.parametrize("recorded, expected", [
    ("Annotations", "Annotations"),
    ("data/BCCD/Annotations", "Annotations"),            # typed relative to the working folder
    ("/home/me/project/data/BCCD/Annotations", "Annotations"),  # typed absolute
    ("../BCCD/Annotations/BloodImage_00001.xml", "Annotations/BloodImage_00001.xml"),
    ("labels/instances.json", "labels/instances.json"),
])
def test_annotation_locations_recorded_by_earlier_versions_are_found_in_the_version(recorded, expected):
    paths = ["Annotations/BloodImage_00001.xml", "JPEGImages/BloodImage_00001.jpg", "labels/instances.json"]
    source = {"annotations": recorded, "path": "/home/me/project/data/BCCD"}
    assert annotations_in_version(_Ref("cells@1.0.0"), source, paths) == expected


def test_an_annotation_location_not_in_the_version_is_a_clear_error():
    with pytest.raises(UsageError) as ei:
        annotations_in_version(_Ref("cells@1.0.0"), {"annotations": "/elsewhere/xml", "path": "/data/ds",
                                                     "format": "voc"}, ["JPEGImages/a.jpg"])
    assert "outside its folder" in ei.value.what and "dataset snapshot cells /data/ds --format voc" in ei.value.fix


class _Ref:
    def __init__(self, ref):
        self.ref = ref
        self.name = ref.split("@")[0]
