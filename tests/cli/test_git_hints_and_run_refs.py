"""init keeps .lensvault/ out of git; snapshot and fix end with the `git add` of the new
manifest; `latest` and unique prefixes name runs wherever a run is taken."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cli.conftest import lv, lv_json, sh
from tests.cli.hints import printed_hints
from tests.runs.conftest import git


def ignored(root, path: str) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=root).returncode == 0


def test_init_in_a_git_repo_ignores_the_vault_folder(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    git("init", "-q", ".", cwd=root)
    r = lv("init", cwd=root)
    assert r.returncode == 0 and "added /.lensvault/ to" in r.stdout
    assert (root / ".gitignore").read_text() == "/.lensvault/\n"
    assert ignored(root, ".lensvault/") and not ignored(root, "data/manifests/x.json")
    assert sh("git status --porcelain", root).stdout == "?? .gitignore\n"  # nothing of the vault shows


def test_init_appends_once_and_respects_an_existing_rule(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    git("init", "-q", ".", cwd=root)
    (root / ".gitignore").write_text("*.pyc")  # no newline at the end
    out = lv_json("init", cwd=root)
    assert out["gitignore_added"] == str(root / ".gitignore")
    assert (root / ".gitignore").read_text() == "*.pyc\n/.lensvault/\n"
    # already ignored (by any pattern, anywhere git looks): nothing is written
    other = tmp_path / "other"
    other.mkdir()
    git("init", "-q", ".", cwd=other)
    (other / ".gitignore").write_text(".lensvault\n")
    out = lv_json("init", cwd=other)
    assert out["gitignore_added"] is None and (other / ".gitignore").read_text() == ".lensvault\n"
    # a vault in a sub-folder of the repository: ignored beside it
    sub = root / "ml" / "vision"
    out = lv_json("init", sub, cwd=root)
    assert (sub / ".gitignore").read_text() == "/.lensvault/\n" and ignored(root, "ml/vision/.lensvault/")


def test_init_outside_git_writes_no_gitignore(tmp_path):
    out = lv_json("init", tmp_path / "v", cwd=tmp_path)
    assert out["gitignore_added"] is None and not (tmp_path / "v" / ".gitignore").exists()


def test_snapshot_and_fix_end_with_the_git_add_that_works(proj, tmp_path):
    root = proj.root
    from lensvault.demo.shapes import generate_shapes

    generate_shapes(root / "raw2", n_images=6, seed=9)
    fixed = root / "fixed"
    (root / "raw2" / "corrections").rename(fixed)
    (root / ".gitignore").write_text("raw/\nraw2/\nfixed/\n.lensvault/\nruns/\n")
    r = lv("dataset", "snapshot", "more", "raw2", "--format", "coco", "--version", "1.0.0", cwd=root)
    assert r.returncode == 0
    assert r.stdout.rstrip().splitlines()[-1].endswith("`git add data/manifests/more/1.0.0.json`")
    (cmd,) = printed_hints(r.stdout)
    assert sh(cmd, root).returncode == 0
    assert "data/manifests/more/1.0.0.json" in proj.git("diff", "--cached", "--name-only")
    # from a sub-folder: the path is relative to where the user is
    sub = root / "configs"
    r = lv("dataset", "fix", "more@1.0.0", "--annotations", fixed / "instances.json", cwd=sub)
    assert r.returncode == 0, r.stderr
    (cmd,) = printed_hints(r.stdout)
    assert cmd == "git add ../data/manifests/more/1.0.1.json"
    assert sh(cmd, sub).returncode == 0
    assert lv_json("dataset", "fix", "more@1.0.1", "--annotations", root / "raw2" / "annotations" / "instances.json",
                   cwd=root)["git_add"] == "git add data/manifests/more/1.0.2.json"
    # from outside the repository (--vault): git -C the repository
    r = lv("--vault", root, "dataset", "snapshot", "third", root / "raw2", "--version", "1.0.0", cwd=tmp_path)
    (cmd,) = printed_hints(r.stdout)
    assert cmd.startswith("git -C ") and sh(cmd, tmp_path).returncode == 0
    assert "data/manifests/third/1.0.0.json" in proj.git("diff", "--cached", "--name-only")


def test_no_git_add_hint_outside_a_repository(tmp_path):
    lv("init", tmp_path / "v", cwd=tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    r = lv("dataset", "snapshot", "d", tmp_path / "src", "--version", "1.0.0", cwd=tmp_path / "v")
    assert r.returncode == 0 and "git add" not in r.stdout
    assert lv_json("dataset", "snapshot", "d", tmp_path / "src", "--version", "1.0.1", "--force",
                   cwd=tmp_path / "v")["git_add"] is None


# --------------------------------------------------------------------------- run references


def _runs(proj, n: int) -> list[str]:
    ids = []
    for _i in range(n):
        r = lv("run", "--dataset", "shapes@1.0.0", "--config", "C-01", "--json", "--", sys.executable, "train.py",
               cwd=proj.root, env={"STEPS": "2"})
        assert r.returncode == 0, r.stderr
        ids.append(json.loads(r.stdout)["run_id"])
    return ids


def test_latest_and_prefixes_name_runs_everywhere(proj, tmp_path):
    root = proj.root
    first, last = _runs(proj, 2)
    assert lv_json("runs", "show", "latest", cwd=root)["run_id"] == last
    assert lv_json("runs", "log", "latest", cwd=root)["run_id"] == last
    cmp = lv_json("runs", "compare", first, "latest", cwd=root)
    assert (cmp["a"], cmp["b"]) == (first, last)
    # A unique prefix: the shortest one no other run shares (two runs of the same second can share
    # their random suffix's first digits; last[:-2] was ambiguous once in 256 runs).
    prefix = next(last[:n] for n in range(1, len(last)) if not first.startswith(last[:n]))
    assert lv_json("runs", "show", prefix, cwd=root)["run_id"] == last
    # eval, register, lineage, why and reproduce take `latest` too
    gt = json.loads((root / "raw" / "annotations" / "instances.json").read_text())
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
             for a in gt["annotations"]]
    (tmp_path / "p.json").write_text(json.dumps(preds))
    ev = lv_json("eval", "--run", "latest", "--dataset", "shapes@1.0.0", "--split", "all",
                 "--predictions", tmp_path / "p.json", cwd=root)
    assert ev["run_id"] == last
    m = lv_json("model", "register", "det", "--run", "latest", "--weights", f"runs/{last}/model.npz",
                "--version", "1.0.0", cwd=root)
    assert m["run_id"] == last
    g = lv_json("lineage", "latest", cwd=root)
    assert g["root"] == f"run:{last}"
    w = lv_json("why", first, "latest", cwd=root)
    assert (w["a"]["run_id"], w["b"]["run_id"]) == (first, last)
    rep = lv("reproduce", "latest", "--json", cwd=root, env={"STEPS": "2"})
    assert json.loads(rep.stdout)["original_run"] == last, rep.stderr


def test_an_ambiguous_prefix_names_the_candidates(vault):
    from lensvault.errors import NotFound, UsageError
    from tests.registry._helpers import insert_run

    ids = [f"2031-05-0{d}T10-00-00Z-ab{i:02d}" for d in (1, 2) for i in range(7)]
    for run_id in ids:
        insert_run(vault, run_id)
    with pytest.raises(UsageError, match=r"ambiguous: it matches 7 runs: 2031-05-01T10-00-00Z-ab00, ") as e:
        vault.get_run("2031-05-01")
    assert e.value.details["candidates"] == ids[:7]
    with pytest.raises(UsageError, match=r"matches 14 runs: .* … and 4 more"):
        vault.get_run("2031-05-0")
    assert vault.get_run("2031-05-02T10-00-00Z-ab03")["run_id"] == ids[10]
    with pytest.raises(NotFound):
        vault.get_run("2099-01-01")
    assert vault.get_run("latest")["run_id"] in ids


def test_ambiguous_prefix_on_the_command_line(vault):
    from tests.registry._helpers import insert_run

    for i in range(2):
        insert_run(vault, f"2031-05-01T10-00-00Z-ab0{i}")
    r = lv("runs", "show", "2031-05-01T10", cwd=vault.root)
    assert r.returncode == 2
    assert "ambiguous" in r.stderr and "2031-05-01T10-00-00Z-ab00, 2031-05-01T10-00-00Z-ab01" in r.stderr
    out = json.loads(lv("runs", "show", "2031-05-01T10", "--json", cwd=vault.root).stdout)
    assert out["candidates"] == ["2031-05-01T10-00-00Z-ab00", "2031-05-01T10-00-00Z-ab01"]
