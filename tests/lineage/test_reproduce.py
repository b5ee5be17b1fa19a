"""``lensvault reproduce``: PASS on the story's production model; a clear FAIL reason when the
commit is gone, the data is gone or the command fails; the tolerance; and in every case the
user's working tree untouched, no worktree left behind and an event recorded."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager

import pytest

from .conftest import tree_fingerprint, worktrees


@contextmanager
def untouched(project):
    """The working tree, HEAD, branches, registered worktrees and vault scratch space are as before."""
    before, wt = tree_fingerprint(project.root), worktrees(project.root)
    yield
    assert tree_fingerprint(project.root) == before
    assert worktrees(project.root) == wt and len(wt) == 1
    assert not list((project.root / ".lensvault").glob("reproduce-*"))


def _event(project, run_id: str) -> dict:
    evs = project.vault.events(action="reproduce", subject=run_id)
    assert evs, "no reproduce event"
    return evs[-1]


def _reproduces(project, run_id: str) -> str:
    # get_run() does not return the column (yet): read the catalog.
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import runs

    with project.vault.catalog.read() as conn:
        return conn.execute(sa.select(runs.c.reproduces).where(runs.c.run_id == run_id)).scalar_one()


def _after(ev: dict) -> dict:
    import json

    a = ev["after"]
    return json.loads(a) if isinstance(a, str) else a


# -- PASS ---------------------------------------------------------------------------------------


def test_production_model_reproduces_byte_for_byte(story):
    run3 = story.ids["run3"]
    with untouched(story):
        r = story.lv("reproduce", "detector@production", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    import json

    rep = json.loads(r.stdout)
    assert rep["verdict"] == "PASS" and rep["passed"] and not rep["reasons"] and not rep["differences"]
    assert rep["target"] == "detector@1.2.0" and rep["original_run"] == run3 and rep["new_run"]
    kinds = {m["kind"] for m in rep["matches"]}
    assert kinds == {"metric", "artifact", "bundle", "evaluation"}
    arts = {m["name"]: m for m in rep["matches"] if m["kind"] == "artifact"}
    assert {"model.npz", "predictions.json", "metrics.json"} <= set(arts)
    assert all(m["expected"] == m["got"] for m in arts.values())  # byte-identical, metrics.json included
    assert all(m["delta"] == 0 for m in rep["matches"] if m["kind"] in ("metric", "evaluation")
               and m.get("delta") is not None)
    assert "epoch" in r.stderr  # the rebuilt run's log goes to stderr with --json

    new = story.vault.get_run(rep["new_run"])
    assert new["kind"] == "reproduce" and _reproduces(story, rep["new_run"]) == "detector@1.2.0"
    assert new["code_commit"] == story.vault.get_run(run3)["code_commit"]
    after = _after(_event(story, run3))
    assert after["verdict"] == "PASS" and after["new_run"] == rep["new_run"] and after["target"] == "detector@1.2.0"
    # The rebuild shows in the model's lineage.
    g = story.vault.lineage("detector@1.2.0", direction="down").to_dict()
    assert {"from": "model:detector@1.2.0", "to": f"run:{rep['new_run']}", "type": "reproduced_by"} in g["edges"]


def test_text_output_groups_the_checks(story):
    with untouched(story):
        r = story.lv("reproduce", story.ids["run2"])
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert f"reproduce {story.ids['run2']} (original run {story.ids['run2']}, rebuilt as" in out
    assert "artifacts byte-identical" in out and "run metrics within ±0.01" in out
    assert "evaluation metrics within ±0.01" in out
    assert out.rstrip().endswith("PASS")


def test_unknown_ref(story):
    r = story.lv("reproduce", "detector@4.0.0")
    assert r.returncode == 3 and "fix:" in r.stderr and "Traceback" not in r.stderr


# -- FAIL ---------------------------------------------------------------------------------------


def _probe_run(lab, **env) -> str:
    """A run of probe.py in the lab (LAB_SIGNAL as given, for the run only)."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, str(v))
        return lab.run(["python", "probe.py"], dataset="lab@1.0.0", config="C-L1")


def _fail(project, ref, *args, env=None) -> tuple[dict, subprocess.CompletedProcess]:
    import json

    with untouched(project):
        r = project.lv("reproduce", ref, "--json", *args, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["verdict"] == "FAIL" and rep["passed"] is False
    after = _after(_event(project, rep["original_run"]))
    assert after["verdict"] == "FAIL" and after["reasons"] == rep["reasons"]
    return rep, r


def test_commit_no_longer_reachable(lab):
    lab.git("checkout", "-q", "-b", "experiment")
    (lab.root / "experiment.txt").write_text("a try\n")
    sha = lab.commit_all("An experiment on a branch")
    run = _probe_run(lab)
    assert lab.vault.get_run(run)["code_commit"] == sha
    lab.git("checkout", "-q", "main")
    lab.git("branch", "-q", "-D", "experiment")
    lab.git("reflog", "expire", "--expire=now", "--all")
    lab.git("gc", "-q", "--prune=now")
    assert subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=lab.root).returncode != 0

    rep, _r = _fail(lab, run)
    assert rep["new_run"] is None and not rep["differences"]
    assert len(rep["reasons"]) == 1
    assert f"commit {sha[:12]} is no longer reachable" in rep["reasons"][0]
    assert "restore the branch" in rep["reasons"][0]
    text = lab.lv("reproduce", run)
    assert text.returncode == 1 and "no longer reachable" in text.stdout and text.stdout.rstrip().endswith("FAIL")


def test_dataset_objects_missing(lab):
    run = _probe_run(lab)
    ds = lab.vault.dataset("lab@1.0.0")
    oid = min(ds.files()["sha256"].to_pylist())
    path = lab.vault.store.oid_to_path(oid)
    aside = path.with_name(path.name + ".aside")
    os.rename(path, aside)  # objects are read-only files; moving them needs only the folder
    try:
        rep, _ = _fail(lab, run)
    finally:
        os.rename(aside, path)
    assert rep["new_run"] is None
    (reason,) = rep["reasons"]
    assert "1 object(s) of dataset lab@1.0.0 are missing from the store" in reason
    assert oid[:12] in reason and "lensvault verify lab@1.0.0" in reason


def test_command_fails_on_rebuild(lab, tmp_path):
    signal = tmp_path / "signal.txt"
    signal.write_text("0.5")
    run = _probe_run(lab, LAB_SIGNAL=signal)
    signal.unlink()  # an input outside the repository, gone since
    rep, r = _fail(lab, run, env={"LAB_SIGNAL": str(signal)})
    assert rep["new_run"]
    (reason,) = rep["reasons"]
    assert "the command failed (exit code 3)" in reason and f"lensvault runs log {rep['new_run']}" in reason
    assert "missing input" in r.stderr
    new = lab.vault.get_run(rep["new_run"])
    assert new["status"] == "failed" and new["kind"] == "reproduce" and _reproduces(lab, rep["new_run"]) == run


@pytest.mark.parametrize("tolerance,verdict", [(0.01, "PASS"), (0.001, "FAIL")])
def test_tolerance(lab, tmp_path, tolerance, verdict):
    import json

    signal = tmp_path / "signal.txt"
    signal.write_text("0.500")
    run = _probe_run(lab, LAB_SIGNAL=signal)
    signal.write_text("0.505")  # the rebuild's metric drifts by 0.005
    with untouched(lab):
        r = lab.lv("reproduce", run, "--json", "--tolerance", str(tolerance), env={"LAB_SIGNAL": str(signal)})
    rep = json.loads(r.stdout)
    assert rep["verdict"] == verdict and r.returncode == (0 if verdict == "PASS" else 1), rep
    assert rep["tolerance"] == tolerance and not rep["reasons"]
    metric = [m for m in rep["matches"] + rep["differences"] if m["kind"] == "metric" and m["name"] == "AP50"]
    assert len(metric) == 1 and metric[0]["delta"] == pytest.approx(0.005)
    assert (metric[0] in rep["differences"]) == (verdict == "FAIL")
    # Weights are byte-identical either way; metrics.json is judged by its values.
    arts = {m["name"]: m for m in rep["matches"] if m["kind"] == "artifact"}
    assert arts["weights.bin"]["expected"] == arts["weights.bin"]["got"]
    assert arts["metrics.json"]["compared"] == "by value, within the tolerance"
    assert [d for d in rep["differences"] if d["kind"] != "metric"] == []
    assert _after(_event(lab, run))["tolerance"] == tolerance
    if verdict == "FAIL":
        text = lab.lv("reproduce", run, "--tolerance", str(tolerance), env={"LAB_SIGNAL": str(signal)}).stdout
        assert "✗ metric AP50: expected 0.5, got 0.505 (Δ +0.0050 > 0.001)" in text


def test_dirty_user_tree_is_left_alone(lab, tmp_path):
    """Uncommitted edits in the user's tree neither leak into the rebuild nor get lost."""
    run = _probe_run(lab)
    probe = lab.root / "probe.py"
    original = probe.read_text()
    probe.write_text(original + "raise SystemExit(9)\n")  # a half-done edit
    try:
        with untouched(lab):
            r = lab.lv("reproduce", run)
        assert r.returncode == 0, r.stdout + r.stderr
        assert probe.read_text().endswith("raise SystemExit(9)\n")
    finally:
        probe.write_text(original)
