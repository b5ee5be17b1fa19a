from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lensvault.errors import NotFound, UsageError
from lensvault.gitinfo import (
    GitState,
    commit_exists,
    commits_between,
    file_at_commit,
    files_changed,
    git_state,
    is_tracked,
    last_commit_touching,
    worktree,
)

from .conftest import commit_all, git

ODD_NAMES = ["with space.py", "new\nline.txt", "ünïcödé-日本.yaml", "tab\there.json", 'quo"te.txt', "star*[1].txt"]


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


# --------------------------------------------------------------------------- git_state


def test_clean_repo(repo):
    state = git_state(repo)
    assert state == GitState(repo_root=str(repo), commit=head(repo), branch="main", clean=True)
    assert not state.dirty


def test_state_from_subdirectory_and_file_reports_whole_repo(repo):
    (repo / "train.py").write_text("changed\n")
    for where in (repo / "configs", repo / "configs" / "base.yaml"):
        state = git_state(where)
        assert state.repo_root == str(repo)
        assert state.modified == ("train.py",)


def test_modified_staged_untracked_are_separated(repo):
    (repo / "train.py").write_text("print('changed')\n")  # modified, not staged
    (repo / "configs" / "base.yaml").write_text("lr: 0.1\n")
    git(repo, "add", "configs/base.yaml")  # staged only
    (repo / "new.py").write_text("x = 1\n")  # untracked
    state = git_state(repo)
    assert state.modified == ("train.py",)
    assert state.staged == ("configs/base.yaml",)
    assert state.untracked == ("new.py",)
    assert state.dirty


def test_staged_then_modified_again_is_in_both(repo):
    (repo / "train.py").write_text("one\n")
    git(repo, "add", "train.py")
    (repo / "train.py").write_text("two\n")
    state = git_state(repo)
    assert state.staged == ("train.py",)
    assert state.modified == ("train.py",)


def test_deleted_and_renamed_files_count(repo):
    git(repo, "mv", "train.py", "fit.py")
    (repo / "configs" / "base.yaml").unlink()
    state = git_state(repo)
    assert state.staged == ("fit.py",)
    assert state.modified == ("configs/base.yaml",)


def test_ignored_files_do_not_make_it_dirty(repo):
    (repo / "outputs").mkdir()
    (repo / "outputs" / "weights.pt").write_bytes(b"\0" * 10)
    (repo / "run.log").write_text("epoch 1\n")
    assert git_state(repo).clean


def test_untracked_files_in_new_directories_are_listed_individually(repo):
    (repo / "pkg" / "sub").mkdir(parents=True)
    (repo / "pkg" / "sub" / "a.py").write_text("")
    (repo / "pkg" / "b.py").write_text("")
    assert git_state(repo).untracked == ("pkg/b.py", "pkg/sub/a.py")


def test_odd_file_names_round_trip(repo):
    for name in ODD_NAMES:
        (repo / name).write_text("x\n")
    state = git_state(repo)
    assert set(state.untracked) == set(ODD_NAMES)
    commit_all(repo, "odd names")
    for name in ODD_NAMES:
        (repo / name).write_text("y\n")
    assert set(git_state(repo).modified) == set(ODD_NAMES)
    for name in ODD_NAMES:
        assert is_tracked(repo / name)
        assert file_at_commit("HEAD", name, repo=repo) == b"x\n"


def test_renamed_odd_name_in_status(repo):
    git(repo, "mv", "train.py", "my train\n.py")
    assert git_state(repo).staged == ("my train\n.py",)


def test_repo_without_commits(tmp_path):
    git(tmp_path, "init", "-q", "-b", "trunk")
    (tmp_path / "a.py").write_text("")
    state = git_state(tmp_path)
    assert state.commit is None
    assert state.branch == "trunk"
    assert state.untracked == ("a.py",)
    assert not state.clean
    assert last_commit_touching(tmp_path / "a.py") is None


def test_empty_repo_without_commits_is_clean(tmp_path):
    git(tmp_path, "init", "-q")
    assert git_state(tmp_path).clean


def test_detached_head_has_no_branch(repo):
    git(repo, "checkout", "-q", "--detach")
    state = git_state(repo)
    assert state.branch is None
    assert state.commit == head(repo)


def test_not_a_repo(tmp_path, monkeypatch):
    outside = tmp_path / "plain"
    outside.mkdir()
    # GIT_CEILING_DIRECTORIES stops git from finding a repository above tmp_path.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    with pytest.raises(NotFound) as info:
        git_state(outside)
    assert "not a git repository" in info.value.what
    assert info.value.where == str(outside)
    assert "git init" in info.value.fix
    assert isinstance(info.value, KeyError)


def test_every_function_reports_a_missing_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "a.txt").write_text("")
    calls = [
        lambda: git_state(tmp_path / "a.txt"),
        lambda: is_tracked(tmp_path / "a.txt"),
        lambda: last_commit_touching(tmp_path / "a.txt"),
        lambda: commit_exists("HEAD", repo=tmp_path),
        lambda: file_at_commit("HEAD", "a.txt", repo=tmp_path),
        lambda: commits_between("HEAD~1", "HEAD", repo=tmp_path),
        lambda: files_changed("HEAD", repo=tmp_path),
    ]
    for call in calls:
        with pytest.raises(NotFound, match="not a git repository"):
            call()
    with pytest.raises(NotFound, match="not a git repository"), worktree(tmp_path, "HEAD", tmp_path / "wt"):
        pass
    assert not (tmp_path / "wt").exists()


def test_missing_path(tmp_path):
    with pytest.raises(NotFound, match="does not exist"):
        git_state(tmp_path / "nope" / "deeper")


def test_state_to_dict_round_trip(repo):
    (repo / "x y.txt").write_text("")
    state = git_state(repo)
    d = state.to_dict()
    assert d["untracked"] == ["x y.txt"]
    assert GitState.from_dict(d) == state


def test_git_state_does_not_take_the_index_lock(repo):
    # A user's concurrent `git commit` must not fail because we were reading status.
    (repo / ".git" / "index.lock").write_text("")
    try:
        assert git_state(repo).clean
    finally:
        (repo / ".git" / "index.lock").unlink()


# --------------------------------------------------------------------------- single paths


def test_is_tracked(repo):
    (repo / "new.py").write_text("")
    (repo / "outputs").mkdir()
    assert is_tracked(repo / "train.py")
    assert is_tracked(repo / "configs")
    assert not is_tracked(repo / "new.py")
    assert not is_tracked(repo / "outputs")
    (repo / "train.py").unlink()  # deleted on disk, still in the index
    assert is_tracked(repo / "train.py")


def test_is_tracked_treats_names_literally(repo):
    (repo / "a[1].txt").write_text("")
    (repo / "a1.txt").write_text("")
    git(repo, "add", "a1.txt")
    assert not is_tracked(repo / "a[1].txt")  # as a glob it would match a1.txt


def test_is_tracked_relative_path(repo, monkeypatch):
    monkeypatch.chdir(repo / "configs")
    assert is_tracked("base.yaml")
    assert is_tracked("../train.py")
    assert not is_tracked("other.yaml")


def test_file_at_commit_reads_old_bytes(repo):
    first = head(repo)
    (repo / "configs" / "base.yaml").write_text("lr: 0.5\n")
    commit_all(repo, "raise lr")
    assert file_at_commit(first, "configs/base.yaml", repo=repo) == b"lr: 0.01\n"
    assert file_at_commit("HEAD", "configs/base.yaml", repo=repo) == b"lr: 0.5\n"


def test_file_at_commit_missing_file_and_commit(repo):
    with pytest.raises(NotFound, match="does not exist at commit"):
        file_at_commit("HEAD", "nope.yaml", repo=repo)
    with pytest.raises(NotFound, match="commit 0123456 does not exist"):
        file_at_commit("0123456", "train.py", repo=repo)
    with pytest.raises(UsageError):
        file_at_commit("--output=x", "train.py", repo=repo)


def test_last_commit_touching(repo):
    first = head(repo)
    (repo / "train.py").write_text("v2\n")
    second = commit_all(repo, "train v2")
    (repo / "README").write_text("")
    commit_all(repo, "readme")
    assert last_commit_touching(repo / "train.py") == second
    assert last_commit_touching(repo / "configs" / "base.yaml") == first
    (repo / "fresh.py").write_text("")
    assert last_commit_touching(repo / "fresh.py") is None


def test_commit_exists(repo):
    sha = head(repo)
    assert commit_exists(sha, repo=repo)
    assert commit_exists(sha[:10], repo=repo)
    assert not commit_exists("f" * 40, repo=repo)
    assert not commit_exists("-h", repo=repo)
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    assert not commit_exists(tree, repo=repo)  # a tree is not a commit


# --------------------------------------------------------------------------- history


def test_commits_between(repo):
    base = head(repo)
    (repo / "a.py").write_text("a\n")
    one = commit_all(repo, "add a: the first | one")
    (repo / "b.py").write_text("b\n")
    two = commit_all(repo, "ünïcode subject")
    commits = commits_between(base, "HEAD", repo=repo)
    assert [c["sha"] for c in commits] == [one, two]
    assert [c["subject"] for c in commits] == ["add a: the first | one", "ünïcode subject"]
    assert commits[0]["author"] == "Ada Tester"
    assert commits[0]["date"][:4].isdigit() and "T" in commits[0]["date"]
    assert commits_between("HEAD", base, repo=repo) == []
    assert commits_between(base, base, repo=repo) == []


def test_commits_between_unknown_commit(repo):
    with pytest.raises(NotFound, match="does not exist"):
        commits_between("deadbeef", "HEAD", repo=repo)


def test_files_changed(repo):
    base = head(repo)
    (repo / "train.py").write_text("print('train')\nprint('more')\n")
    (repo / "configs" / "base.yaml").unlink()
    (repo / "new file.py").write_text("a\nb\nc\n")
    (repo / "weights.bin").write_bytes(bytes(range(256)))
    commit_all(repo, "changes")
    changes = {c["path"]: c for c in files_changed(base, "HEAD", repo=repo)}
    assert changes["train.py"] == {"path": "train.py", "status": "modified", "additions": 1, "deletions": 0}
    assert changes["configs/base.yaml"]["status"] == "deleted"
    assert changes["configs/base.yaml"]["deletions"] == 1
    assert changes["new file.py"] == {"path": "new file.py", "status": "added", "additions": 3, "deletions": 0}
    assert changes["weights.bin"]["additions"] is None  # binary
    assert list(changes) == sorted(changes)


def test_files_changed_rename_with_odd_names(repo):
    base = head(repo)
    body = "".join(f"line {i}\n" for i in range(30))
    (repo / "old name.py").write_text(body)
    mid = commit_all(repo, "add")
    git(repo, "mv", "old name.py", "new\nname.py")
    (repo / "new\nname.py").write_text(body + "extra\n")
    commit_all(repo, "rename")
    changes = files_changed(mid, "HEAD", repo=repo)
    assert changes == [
        {"path": "new\nname.py", "status": "renamed", "additions": 1, "deletions": 0, "old_path": "old name.py"}
    ]
    assert files_changed(base, base, repo=repo) == []


def test_files_changed_against_working_tree(repo):
    (repo / "train.py").write_text("x\n")
    changes = files_changed("HEAD", repo=repo)
    assert changes == [{"path": "train.py", "status": "modified", "additions": 1, "deletions": 1}]


# --------------------------------------------------------------------------- worktree


def _snapshot(repo: Path) -> tuple:
    files = sorted(
        (str(p.relative_to(repo)), p.read_bytes())
        for p in repo.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    )
    return files, head(repo), git(repo, "status", "--porcelain=v1", "-z"), git(repo, "branch", "--show-current")


def _registered_worktrees(repo: Path) -> list[str]:
    return [line for line in git(repo, "worktree", "list", "--porcelain").splitlines() if line.startswith("worktree ")]


def test_worktree_checks_out_old_commit_and_leaves_main_tree_alone(repo, tmp_path):
    first = head(repo)
    (repo / "train.py").write_text("print('v2')\n")
    commit_all(repo, "v2")
    (repo / "train.py").write_text("uncommitted edit\n")  # the user's work in progress
    (repo / "scratch.txt").write_text("untracked\n")
    before = _snapshot(repo)
    dest = tmp_path / "wt"
    with worktree(repo, first, dest) as path:
        assert path == dest
        assert (path / "train.py").read_text() == "print('train')\n"
        assert git(path, "rev-parse", "HEAD").strip() == first
        assert not (path / "scratch.txt").exists()
        (path / "train.py").write_text("edited inside the worktree\n")
        (path / "outputs").mkdir()
        (path / "outputs" / "w.pt").write_bytes(b"1")
        assert _snapshot(repo) == before
    assert not dest.exists()
    assert _snapshot(repo) == before
    assert len(_registered_worktrees(repo)) == 1


def test_worktree_removed_even_if_body_raises(repo, tmp_path):
    before = _snapshot(repo)
    dest = tmp_path / "wt"
    with pytest.raises(RuntimeError, match="boom"), worktree(repo, "HEAD", dest):
        (dest / "train.py").write_text("half-done\n")
        raise RuntimeError("boom")
    assert not dest.exists()
    assert _snapshot(repo) == before
    assert len(_registered_worktrees(repo)) == 1


def test_worktree_cleanup_survives_body_deleting_dir(repo, tmp_path):
    import shutil

    dest = tmp_path / "wt"
    with worktree(repo, "HEAD", dest):
        shutil.rmtree(dest)
    assert not dest.exists()
    assert len(_registered_worktrees(repo)) == 1


def test_worktree_refuses_non_empty_destination_and_unknown_commit(repo, tmp_path):
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"), worktree(repo, "HEAD", dest):
        pass
    assert (dest / "keep.txt").read_text() == "mine"
    with pytest.raises(NotFound), worktree(repo, "1234567890abcdef", tmp_path / "new"):
        pass
    assert not (tmp_path / "new").exists()


def test_worktree_on_same_commit_as_checked_out_branch(repo, tmp_path):
    # Detached, so it works even for the commit the main tree has checked out.
    with worktree(repo, "main", tmp_path / "wt") as path:
        assert (path / "train.py").exists()
        assert subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=path).returncode != 0
    assert git(repo, "branch", "--show-current").strip() == "main"
