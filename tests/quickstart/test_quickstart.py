"""The quickstart is the product's showcase: it must run end to end, and the commands it
prints must work when typed by hand afterwards."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

VENV_BIN = str(Path(sys.executable).parent)
# Commands that only read: safe to type again after the story has run.
READ_ONLY = ("dataset show", "dataset diff", "dataset log", "config diff", "runs compare", "why", "model history",
             "lineage", "verify", "events", "model show", "model list", "runs list", "dataset list")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_")}
    env["PATH"] = os.pathsep.join([VENV_BIN, env.get("PATH", "")])
    return env


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    root = tmp_path_factory.mktemp("qs") / "demo"
    # --json: the story (what `make demo` prints on stdout) goes to stderr, the summary to stdout.
    r = subprocess.run([sys.executable, "-m", "lensvault.cli.main", "quickstart", str(root), "--json"], env=_env(),
                       capture_output=True, text=True, timeout=600)
    return root, r


def test_quickstart_runs_the_whole_story(story):
    root, r = story
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stderr
    for expected in (
        "Created demo@1.0.0", "Preflight passed.", "Registered detector@1.0.0",
        "Created demo@1.0.1 from demo@1.0.0 (patch bump)", "Registered detector@1.1.0 (MINOR",
        "Registered detector@1.2.0", "lensvault model rollback detector production",
        "rolled back 1.2.0 → 1.1.0", "PASS",
        "1 missing, 0 corrupt", "REPAIRED", "1 repaired, 0 missing, 0 corrupt",
        "catalog rebuild` recreates it", "Rebuilt the catalog", "3  model versions", "[alias] @ alias detector@production",
        "Pushed to origin (file://", "created: refs/datasets/demo/1.0.0", "moved: detector@production",
        f"Cloned file://{root}/team-remote into {root}/teammate", "2 dataset_versions",
        "Quickstart finished",
    ):
        assert expected in out, expected
    assert (root / "data" / "manifests" / "demo" / "1.0.1.json").is_file()
    clean = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True)
    assert clean.stdout == "", "the quickstart leaves the repository clean"


def test_quickstart_json_summary_says_what_the_story_printed(story):
    root, r = story
    import json

    summary = json.loads(r.stdout)
    assert summary["root"] == str(root) and summary["steps"] == r.stderr.count("\n$ lensvault ")
    assert summary["datasets"] == ["demo@1.0.0", "demo@1.0.1"]
    assert summary["models"] == ["detector@1.0.0", "detector@1.1.0", "detector@1.2.0"]
    assert summary["production"] == "detector@1.1.0" and len(summary["runs"]) == 3
    last = r.stderr.rstrip().splitlines()
    assert f"Quickstart finished: {summary['steps']} commands" in r.stderr
    assert all(run in last[-1] for run in summary["runs"]) and "production is detector@1.1.0" in last[-1]


def test_the_fixed_labels_give_a_better_model(story):
    root, _r = story
    import json

    env = _env()
    show = subprocess.run([sys.executable, "-m", "lensvault.cli.main", "why", "detector@1.0.0", "detector@1.1.0", "--json"],
                          cwd=root, env=env, capture_output=True, text=True)
    assert show.returncode == 0, show.stderr
    rep = json.loads(show.stdout)
    assert rep["metrics"]["overall"]["AP50"]["delta"] > 0.02
    assert rep["explanations"][0]["factor"] == "data"


def test_printed_read_only_commands_work_when_typed_by_hand(story):
    root, r = story
    typed = [line[2:] for line in r.stderr.splitlines() if line.startswith("$ lensvault ")]
    again = [c for c in typed if any(c.startswith(f"lensvault {p}") for p in READ_ONLY)]
    assert len(again) >= 8
    for cmd in again:
        done = subprocess.run(shlex.split(cmd), cwd=root, env=_env(), capture_output=True, text=True)
        assert done.returncode == 0, f"{cmd}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def test_quickstart_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "something").write_text("x")
    r = subprocess.run([sys.executable, "-m", "lensvault.cli.main", "quickstart", str(tmp_path)], env=_env(),
                       capture_output=True, text=True)
    assert r.returncode == 6
    assert "not empty" in r.stderr and "fix:" in r.stderr


def test_the_printed_serve_command_opens_the_story_in_a_browser(story):
    """The command the quickstart prints serves its vault (on a free port here, not 8470)."""
    pytest.importorskip("fastapi")
    import json
    import signal
    import urllib.request

    root, r = story
    line = next(x for x in r.stderr.splitlines() if x.strip().startswith("lensvault serve --vault"))
    args = shlex.split(line.split("#")[0])
    assert args[:3] == ["lensvault", "serve", "--vault"] and args[3] == str(root) and "--public-read" in args
    proc = subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", *args[1:], "--port", "0"], env=_env(),
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        url = proc.stderr.readline().split()[1]
        with urllib.request.urlopen(f"{url}/api/v1/datasets/demo/diff/1.0.0/1.0.1", timeout=60) as resp:
            diff = json.loads(resp.read())
        with urllib.request.urlopen(f"{url}/datasets/demo/diff/1.0.0/1.0.1", timeout=60) as resp:
            page = resp.read().decode()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert diff["annotations"]["counts"]["relabeled"] > 0
    assert page.count('class="box box-relabeled') >= 1
