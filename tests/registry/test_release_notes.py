"""Release notes section by section, rendered from a bundle manifest alone (no catalog needed):
each section appears when its facts are there, says them in full, and is absent otherwise."""

from __future__ import annotations

from lensvault.registry.notes import render_notes


def manifest(**kw) -> dict:
    """The fields register.py always writes, for a second version that changed nothing."""
    m = {"name": "detector", "version": "1.1.0", "run_id": "r2", "previous_version": "1.0.0",
         "dataset": "retail@1.0.0", "previous_dataset": "retail@1.0.0", "code_commit": "abc123",
         "config_id": "C-01", "previous_config_id": "C-01", "architecture": None, "bump": "minor",
         "bump_decision": None, "forced": False, "forced_reason": None, "dirty": False, "thresholds": {},
         "caveats": [], "weights_unverified": [], "dataset_changelog": [], "metric_deltas": []}
    m.update(kw)
    return m


def section(notes: str, title: str) -> list[str]:
    """The lines under ``## title`` up to the next section, blank lines dropped."""
    lines = notes.splitlines()
    start = lines.index(f"## {title}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [x for x in lines[start:end] if x]


def test_heading_gives_the_bump_and_its_reasons_most_severe_first():
    notes = render_notes(manifest(bump="major", bump_decision={
        "reasons": {"patch": ["labels fixed"], "major": ["class removed"], "minor": ["images added"]}}))
    assert notes.splitlines()[:3] == ["# detector 1.1.0", "",
                                      "**MAJOR** from 1.0.0: class removed; images added; labels fixed."]
    first = render_notes(manifest(previous_version=None, bump=None))
    assert first.splitlines()[2] == "**INITIAL** — first version."


def test_heading_warns_about_a_forced_version_and_uncommitted_code():
    plain = render_notes(manifest())
    assert "> Forced" not in plain and "uncommitted" not in plain
    notes = render_notes(manifest(forced=True, forced_reason="rules said 2.0.0", dirty=True))
    head = notes.split("## Lineage")[0]
    assert "> Forced: rules said 2.0.0" in head
    assert "> Registered from a run on uncommitted code (--allow-dirty)" in head
    assert "- Code: `abc123` (dirty)" in section(notes, "Lineage")


def test_lineage_names_the_previous_models_data_and_config_only_where_they_differ():
    same = section(render_notes(manifest()), "Lineage")
    assert same == ["- Run: `r2`", "- Dataset: `retail@1.0.0`", "- Code: `abc123` (clean)", "- Config: `C-01`"]
    moved = section(render_notes(manifest(dataset="retail@1.1.0", config_id="C-02", architecture="yolov8n")),
                    "Lineage")
    assert moved == ["- Run: `r2`", "- Dataset: `retail@1.1.0` (previous model: `retail@1.0.0`)",
                     "- Code: `abc123` (clean)", "- Config: `C-02` (previous: `C-01`)", "- Architecture: `yolov8n`"]
    # A first version has no previous model to compare with, whatever the fields say.
    first = section(render_notes(manifest(previous_version=None, dataset=None, config_id=None, code_commit=None)),
                    "Lineage")
    assert first == ["- Run: `r2`", "- Dataset: `none`", "- Code: `unknown` (clean)", "- Config: `none`"]


def test_config_changes_list_changed_added_and_removed_keys():
    changes = {"changed": {"train.lr": {"from": 0.01, "to": 0.001}}, "added": {"aug.mosaic": True},
               "removed": {"train.warmup": 3}}
    notes = render_notes(manifest(bump_decision={"config_changes": changes}))
    assert section(notes, "Config changes since 1.0.0") == [
        "- `train.lr`: 0.01 → 0.001", "- `aug.mosaic`: added (True)", "- `train.warmup`: removed (was 3)"]
    for empty in (None, {}, {"changed": {}, "added": {}, "removed": {}}):
        assert "## Config changes" not in render_notes(manifest(bump_decision={"config_changes": empty}))


def test_dataset_changes_mark_versions_left_out_by_going_back():
    log = [{"ref": "retail@1.1.0", "summary": "12 boxes relabeled", "reverted": False},
           {"ref": "retail@1.2.0", "summary": "50 images added", "reverted": True}]
    notes = render_notes(manifest(dataset_changelog=log))
    assert section(notes, "Dataset changes since retail@1.0.0") == [
        "- `retail@1.1.0`: 12 boxes relabeled",
        "- `retail@1.2.0`: 50 images added (left out: the model goes back to an older version)"]
    assert "## Dataset changes" not in render_notes(manifest())
    first = render_notes(manifest(previous_version=None, dataset_changelog=log[:1]))
    assert "## Dataset changes" in first.splitlines()


def test_thresholds_and_caveats():
    notes = render_notes(manifest(thresholds={"score": 0.25, "nms_iou": 0.7}))
    assert section(notes, "Thresholds") == ["- `score` = 0.25", "- `nms_iou` = 0.7"]
    assert "## Thresholds" not in render_notes(manifest())
    assert section(render_notes(manifest()), "Known caveats") == ["- none recorded"]
    caveats = section(render_notes(manifest(caveats=["weak at night"], weights_unverified=["model.pt", "ema.pt"])),
                      "Known caveats")
    assert caveats == ["- weak at night",
                       "- weights not recorded by the run: model.pt, ema.pt (hash not checked against the run)"]


def test_sections_come_in_a_fixed_order_and_the_text_ends_with_one_newline():
    notes = render_notes(manifest(
        dataset="retail@1.1.0", bump_decision={"config_changes": {"added": {"x": 1}}},
        dataset_changelog=[{"ref": "retail@1.1.0", "summary": "s", "reverted": False}],
        metric_deltas=[{"source": {"label": "what the run logged"}, "compared_with": None, "same_data": None,
                        "overall": {"AP50": {"value": 0.5, "previous": None, "delta": None}}}],
        thresholds={"score": 0.3}))
    titles = [x for x in notes.splitlines() if x.startswith("## ")]
    assert titles == ["## Lineage", "## Config changes since 1.0.0", "## Dataset changes since retail@1.0.0",
                      "## Metrics", "## Thresholds", "## Known caveats"]
    assert notes.endswith("- none recorded\n") and not notes.endswith("\n\n")
