"""Configs and the preflight gate, on SQLite and PostgreSQL catalogs, with real git repos."""

from __future__ import annotations

import pytest

from lensvault.errors import AlreadyExists, NotFound, PreflightFailed, UsageError


def failed(report) -> dict:
    return {c.check: c for c in report.failures}


def test_config_add_show_list_diff(project):
    v, root = project.vault, project.root
    rec = v.get_config("C-01")
    assert rec.repo_path == "configs/base.yaml" and rec.commit == project.git("rev-parse", "HEAD").strip()
    assert rec.values["model"]["depth"] == 3
    (root / "configs" / "b.toml").write_text('lr = 0.02\nseed = 2024\n[model]\nwidth = 8\n')
    project.commit_all("b")
    rec_b = v.add_config(root / "configs" / "b.toml")
    assert rec_b.config_id == "C-02" and rec_b.format == "toml"
    assert [c.config_id for c in v.configs()] == ["C-01", "C-02"]
    from lensvault.configs.registered import diff_registered

    d = diff_registered(v.get_config("C-01"), v.get_config("C-02"))
    assert d["changed"] == {"lr": [0.01, 0.02]}
    assert d["removed"] == {"epochs": 2, "model.depth": 3} and d["added"] == {"model.width": 8}


def test_config_ids_are_write_once(project):
    with pytest.raises(AlreadyExists):
        project.vault.add_config(project.root / "configs" / "base.yaml", "C-01")


def test_preflight_passes_on_a_clean_project(project):
    r = project.vault.preflight(dataset="shapes@1.0.0", config="C-01", model="det", version="1.0.0")
    assert r.ok, r.failures
    assert r.clean and r.seeds == {"train": 2024, "split": 42}
    assert r.code_commit == project.git("rev-parse", "HEAD").strip()


def test_preflight_lists_every_failure_at_once(project):
    (project.root / "notes.txt").write_text("untracked")
    (project.root / "configs" / "base.yaml").write_text("lr: 0.5\nseed: 1\n")
    r = project.vault.preflight(dataset="shapes@9.9.9", config="C-01")
    f = failed(r)
    assert set(f) == {"clean", "dataset", "config"}
    assert "notes.txt" in f["clean"].what and "configs/base.yaml" in f["clean"].what
    assert "changed since it was registered" in f["config"].what and f["config"].fix
    with pytest.raises(PreflightFailed) as e:
        r.raise_for_failures()
    assert [x["check"] for x in e.value.failures] == ["clean", "dataset", "config"]
    assert all(x["fix"] for x in e.value.failures)


def test_allow_dirty_passes_but_records_dirty(project):
    (project.root / "train.py").write_text("print('edited')\n")
    assert "clean" in failed(project.vault.preflight(dataset="shapes@1.0.0", config="C-01"))
    r = project.vault.preflight(dataset="shapes@1.0.0", config="C-01", allow_dirty=True)
    assert r.ok and r.clean is False


def test_ignored_files_do_not_make_the_tree_dirty(project):
    (project.root / "raw" / "extra.txt").write_text("ignored by .gitignore")
    assert project.vault.preflight(dataset="shapes@1.0.0", config="C-01").ok


def test_unregistered_and_uncommitted_configs_are_refused(project):
    f = failed(project.vault.preflight(dataset="shapes@1.0.0", config="C-99"))
    assert "not registered" in f["config"].what and "lensvault config add" in f["config"].fix
    (project.root / "configs" / "new.yaml").write_text("seed: 1\n")
    project.vault.add_config(project.root / "configs" / "new.yaml", "C-new", uncommitted=True)
    assert project.vault.get_config("C-new").commit is None
    f = failed(project.vault.preflight(dataset="shapes@1.0.0", config="C-new", allow_dirty=True))
    assert "not tracked by git" in f["config"].what


def test_an_uncommitted_config_is_refused_with_nothing_registered(project):
    """Registering bytes no commit holds burnt an ID the preflight then refused forever: refused
    up front (untracked, or changed since its commit), unless asked for with --uncommitted."""
    root, v = project.root, project.vault
    before = ([c.config_id for c in v.configs()], len(v.events()))
    (root / "configs" / "new.yaml").write_text("seed: 1\n")
    with pytest.raises(UsageError, match="not tracked by git") as e:
        v.add_config(root / "configs" / "new.yaml")
    assert "git add configs/new.yaml && git commit" in e.value.fix and "--uncommitted" in e.value.fix
    (root / "configs" / "base.yaml").write_text((root / "configs" / "base.yaml").read_text() + "extra: 1\n")
    with pytest.raises(UsageError, match="changes no commit holds"):
        v.add_config(root / "configs" / "base.yaml", "C-09")
    assert ([c.config_id for c in v.configs()], len(v.events())) == before
    r = project.lensvault("config", "add", "configs/new.yaml")
    assert r.returncode != 0 and "nothing was registered" in r.stderr and "--uncommitted" in r.stderr
    # The next ID is still the next one: nothing was burnt.
    project.commit_all("new")
    assert v.add_config(root / "configs" / "new.yaml").config_id == "C-02"


def test_missing_git_repo_is_named(vault):
    from lensvault.demo.shapes import generate_shapes

    generate_shapes(vault.root / "raw", n_images=6, seed=1)
    vault.snapshot("shapes", vault.root / "raw", version="1.0.0", format="coco", split="70/20/10", seed=1)
    f = failed(vault.preflight(dataset="shapes@1.0.0", config="C-01"))
    assert "not in a git repository" in f["git"].what and "git init" in f["git"].fix


def test_seeds_must_be_fixed(project):
    root = project.root
    (root / "configs" / "noseed.yaml").write_text("lr: 0.1\nseed: null\n")
    project.commit_all("noseed")
    project.vault.add_config(root / "configs" / "noseed.yaml", "C-noseed")
    f = failed(project.vault.preflight(dataset="shapes@1.0.0", config="C-noseed"))
    assert "holds no seed" in f["seed"].what and "--seed" in f["seed"].fix
    r = project.vault.preflight(dataset="shapes@1.0.0", config="C-noseed", seed=5)
    assert r.ok and r.seeds["train"] == 5


def test_missing_objects_fail_the_dataset_check(project):
    ds = project.vault.dataset("shapes@1.0.0")
    victim = min(ds.files()["sha256"].to_pylist())
    project.vault.store.delete(victim)
    f = failed(project.vault.preflight(dataset="shapes@1.0.0", config="C-01"))
    assert "missing from the store" in f["dataset"].what


def test_model_version_reserved_then_refused_and_freed_on_failure(project):
    from lensvault.runs.lifecycle import create_run, finish_run

    r = project.vault.preflight(dataset="shapes@1.0.0", config="C-01", model="det", version="1.0.0")
    run_id = create_run(project.vault, r)
    f = failed(project.vault.preflight(dataset="shapes@1.0.0", config="C-01", model="det", version="1.0.0"))
    assert run_id in f["model_version"].what
    with pytest.raises(PreflightFailed):
        create_run(project.vault, r)  # a racing run with the same passing report
    finish_run(project.vault, run_id, "failed", exit_code=1)
    assert project.vault.preflight(dataset="shapes@1.0.0", config="C-01", model="det", version="1.0.0").ok


def test_unknown_config_show_is_not_found(project):
    with pytest.raises(NotFound):
        project.vault.get_config("C-77")
