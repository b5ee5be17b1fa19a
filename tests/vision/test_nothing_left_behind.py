"""A refused or failed command leaves nothing behind: whenever the exit code is non-zero, no
version exists — no catalog row, no manifest file, no event claiming one. And an import that
found no annotations is refused before anything is written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from .test_vault_vision import lv, subset


def state(v, name: str) -> tuple:
    """What a user (or a script) can see of NAME's versions."""
    log = lv(v, "dataset", "log", name, "--json")
    versions = [x["version"] for x in json.loads(log.stdout)] if log.returncode == 0 else []
    folder = v.manifests_dir / name
    manifests = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    events = [e["subject"] for e in v.events(action="dataset.version.create") if e["subject"].startswith(f"{name}@")]
    return versions, manifests, sorted(events)


def assert_refused(v, r, code: int, before: tuple, *words: str) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "fix:" in r.stderr, r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    assert state(v, "cells") == before


@pytest.fixture
def cells(vault, tmp_path):
    src = subset(tmp_path / "ds", 12)
    r = lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--version", "1.0.0")
    assert r.returncode == 0, r.stderr
    before = state(vault, "cells")
    assert before == (["1.0.0"], ["1.0.0.json"], ["cells@1.0.0"])
    return src, before


def test_a_wrong_format_creates_no_version_and_names_the_likely_cause(vault, cells):
    src, before = cells
    # YOLO finds "images without labels" in a VOC folder: 0 classes, 0 boxes. That used to be
    # committed as a MAJOR version claiming every box and class was removed.
    r = lv(vault, "dataset", "snapshot", "cells", src, "--format", "yolo", "--bump", "auto")
    assert_refused(vault, r, 6, before, "no annotations in 12 images", "cells@1.0.0 has", "--format", "--annotations",
                   "--force")
    for fmt in ("coco", "labelme", "masks"):
        assert_refused(vault, lv(vault, "dataset", "snapshot", "cells", src, "--format", fmt, "--bump", "auto"), 6, before)


def test_wrong_annotations_create_no_version(vault, cells):
    src, before = cells
    # A folder without any XML, relative to SRC and absolute.
    for ann in ("JPEGImages", src / "JPEGImages"):
        r = lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--annotations", ann, "--bump", "auto")
        assert_refused(vault, r, 6, before, "no Pascal VOC XML")
    # Annotations in another format's folder: read, but nothing found in them.
    empty = src / "labels"
    empty.mkdir()
    r = lv(vault, "dataset", "snapshot", "cells", src, "--format", "yolo", "--annotations", empty, "--bump", "auto")
    assert_refused(vault, r, 6, before, "no annotations", f"--annotations {empty}")


def test_an_empty_import_is_recorded_with_force_and_says_so(vault, cells):
    src, _before = cells
    r = lv(vault, "dataset", "snapshot", "cells", src, "--format", "yolo", "--bump", "auto", "--force", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["version"] == "2.0.0"  # every class removed: MAJOR, as the rule says
    had = vault.dataset("cells@1.0.0").manifest().counts["annotations"]
    m = vault.dataset("cells@2.0.0").manifest()
    assert m.counts["annotations"] == 0
    assert f"no annotations in 12 images, but cells@1.0.0 has {had:,}" in m.source["forced_empty_import"]


def test_a_first_version_without_annotations_is_refused_too(vault, tmp_path):
    src = subset(tmp_path / "ds", 4)
    r = lv(vault, "dataset", "snapshot", "other", src, "--format", "yolo", "--version", "1.0.0")
    assert r.returncode == 6 and "no annotations in 4 images" in r.stderr, r.stderr
    assert vault.datasets() == [] and not (vault.manifests_dir / "other").exists()


def test_refused_versions_leave_nothing(vault, cells):
    src, before = cells
    # Identical content, with --bump auto and with an explicit version.
    assert_refused(vault, lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--bump", "auto"), 2,
                   before, "nothing changed")
    assert_refused(vault, lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--version", "1.1.0"), 2,
                   before, "identical")
    # An under-stated bump: images removed is MINOR, 1.0.1 is refused after the ingest.
    for p in src.rglob("BloodImage_00000.*"):
        p.unlink()
    assert_refused(vault, lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--version", "1.0.1"), 8,
                   before, "needs MINOR")
    # Bad --split options are refused before any work.
    for args, words in ((["--split", "70/20/5", "--seed", "1"], "sum to 95"),
                        (["--split", "70/20/10"], "seed"),
                        (["--seed", "3"], "--split"),
                        (["--split", "none", "--seed", "3"], "none")):
        r = lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--bump", "auto", *args)
        assert_refused(vault, r, 2, before, words)
    # Taken version.
    assert_refused(vault, lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--version", "1.0.0"), 4,
                   before, "already exists")


def test_a_refused_fix_leaves_nothing(vault, cells, tmp_path):
    src, before = cells
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    xml = min((src / "Annotations").glob("*.xml"))
    # A new class is not a fix (MINOR).
    (fixed / xml.name).write_text(re.sub(r"<name>\w+</name>", "<name>Neutrophil</name>", xml.read_text(), count=1))
    assert_refused(vault, lv(vault, "dataset", "fix", "cells@1.0.0", "--annotations", fixed), 8, before, "not a patch")
    # A corrected file that matches nothing in the version.
    (fixed / xml.name).unlink()
    (fixed / "unknown.xml").write_text(xml.read_text())
    assert_refused(vault, lv(vault, "dataset", "fix", "cells@1.0.0", "--annotations", fixed), 6, before, "matches no file")
    # Corrected annotations that hold no box at all (every object deleted).
    (fixed / "unknown.xml").unlink()
    for x in (src / "Annotations").glob("*.xml"):
        (fixed / x.name).write_text(re.sub(r"<object>.*?</object>", "", x.read_text(), flags=re.DOTALL))
    assert_refused(vault, lv(vault, "dataset", "fix", "cells@1.0.0", "--annotations", fixed), 6, before,
                   "no annotations")


def _refuse_in_catalog(v) -> None:
    """A real database failure inside the commit transaction: on PostgreSQL at COMMIT (a deferred
    constraint trigger — after the manifest file was written), on SQLite at the event insert."""
    if v.catalog.dialect == "postgresql":
        ddl = [("CREATE FUNCTION lv_test_refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; "
               "END $$ LANGUAGE plpgsql"),
               ("CREATE CONSTRAINT TRIGGER lv_test_refuse AFTER INSERT ON dataset_versions DEFERRABLE INITIALLY DEFERRED "
               "FOR EACH ROW EXECUTE FUNCTION lv_test_refuse()")]
    else:
        ddl = [("CREATE TRIGGER lv_test_refuse BEFORE INSERT ON events WHEN NEW.action = 'dataset.version.create' "
               "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")]
    with v.catalog.begin() as conn:
        for stmt in ddl:
            conn.exec_driver_sql(stmt)


def nudge_a_box(src) -> None:
    """Move the first box of one image by a pixel: a PATCH."""
    xml = src / "Annotations" / "BloodImage_00001.xml"
    xml.write_text(re.sub(r"<xmin>(\d+)</xmin>", lambda m: f"<xmin>{int(m.group(1)) - 1}</xmin>", xml.read_text(), count=1))


def test_a_failure_inside_the_commit_leaves_nothing(vault, cells, tmp_path):
    src, before = cells
    nudge_a_box(src)
    _refuse_in_catalog(vault)
    with pytest.raises(Exception, match="refused by the test"):
        vault.snapshot("cells", src, format="voc", bump="auto")
    assert state(vault, "cells") == before
    with pytest.raises(Exception, match="refused by the test"):
        vault.snapshot("fresh", src, format="voc", version="1.0.0")
    assert state(vault, "fresh") == ([], [], []) and not (vault.manifests_dir / "fresh").exists()


def test_output_that_cannot_be_written_does_not_turn_a_created_version_into_a_failure(vault, cells):
    src, _before = cells
    nudge_a_box(src)
    # `lensvault dataset snapshot … | head -1`: the reader is gone before the report is printed.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = subprocess.run([sys.executable, "-m", "lensvault.cli.main", "--vault", str(vault.root), "dataset",
                            "snapshot", "cells", str(src), "--format", "voc", "--bump", "auto"],
                           stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    versions, manifests, _events = state(vault, "cells")
    assert versions == ["1.0.1", "1.0.0"] and manifests == ["1.0.0.json", "1.0.1.json"]
    assert r.returncode == 0, r.stderr  # created: the exit code says so (click's EPIPE handling said 1)
    assert "Traceback" not in r.stderr
