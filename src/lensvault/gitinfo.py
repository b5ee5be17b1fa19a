"""Git facts for reproducible runs, read through the real ``git`` executable.

We shell out instead of using GitPython: ``git`` is already what the user trusts, it
knows every config/extension the repo uses, and ``-z`` machine formats make odd file
names (spaces, newlines, non-UTF-8) round-trip exactly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from lensvault.errors import InputError, NotFound, StorageError, UsageError

__all__ = [
    "GitState",
    "add_command",
    "commit_exists",
    "commits_between",
    "configured_identity",
    "file_at_commit",
    "files_changed",
    "git_state",
    "ignore_in_repo",
    "is_tracked",
    "last_commit_touching",
    "repo_root_of",
    "worktree",
]

StrPath = str | os.PathLike[str]

_STATUS_WORDS = {
    "A": "added",
    "C": "copied",
    "D": "deleted",
    "M": "modified",
    "R": "renamed",
    "T": "type_changed",
    "U": "unmerged",
}


@dataclass(frozen=True)
class GitState:
    """Where the code of a run came from. ``commit`` is None in a repo with no commits."""

    repo_root: str
    commit: str | None
    branch: str | None
    clean: bool
    modified: tuple[str, ...] = ()
    staged: tuple[str, ...] = ()
    untracked: tuple[str, ...] = ()

    @property
    def dirty(self) -> bool:
        return not self.clean

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("modified", "staged", "untracked"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> GitState:
        return cls(
            repo_root=d["repo_root"],
            commit=d.get("commit"),
            branch=d.get("branch"),
            clean=bool(d["clean"]),
            modified=tuple(d.get("modified", ())),
            staged=tuple(d.get("staged", ())),
            untracked=tuple(d.get("untracked", ())),
        )


# --------------------------------------------------------------------------- running git


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    # C locale: we match a few of git's English messages to tell "no repo" from other failures.
    env["LC_ALL"] = "C"
    env["LANGUAGE"] = "C"
    # Read-only commands must not take index.lock, or they race the user's own git commands.
    env["GIT_OPTIONAL_LOCKS"] = "0"
    # Paths we pass are file names, not globs: "data[1].json" must mean exactly that file.
    env["GIT_LITERAL_PATHSPECS"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def _run(args: Sequence[str], cwd: StrPath, *, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=os.fspath(cwd), env={**_git_env(), **(env or {})}, capture_output=True, check=False
        )
    except FileNotFoundError as exc:
        if not Path(cwd).is_dir():
            raise NotFound("directory does not exist", where=os.fspath(cwd)) from exc
        raise NotFound(
            "git is not installed", where="PATH", fix="install git and make sure `git` is on PATH"
        ) from exc
    if check and proc.returncode != 0:
        _raise_for(proc, args, cwd)
    return proc


def _raise_for(proc: subprocess.CompletedProcess[bytes], args: Sequence[str], cwd: StrPath) -> None:
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if "not a git repository" in stderr:
        raise NotFound(
            "not a git repository",
            where=os.fspath(cwd),
            fix="run `git init` there (and commit your code), or run from inside your project's repo",
        )
    raise InputError(
        f"git {args[0]} failed: {stderr or 'exit code ' + str(proc.returncode)}",
        where=os.fspath(cwd),
        fix="run the same git command yourself to see what is wrong with the repository",
    )


def _dir_for(path: StrPath) -> Path:
    """The directory git should run in to answer questions about ``path``.

    A missing path is allowed when its parent exists: a tracked file may be deleted on disk.
    """
    p = Path(path).absolute()
    if not p.exists() and not p.parent.is_dir():
        raise NotFound("path does not exist", where=os.fspath(path))
    while not p.is_dir():
        if p.parent == p:
            break
        p = p.parent
    if not p.is_dir():
        raise NotFound("path does not exist", where=os.fspath(path))
    return p


def _repo_root(path: StrPath) -> Path:
    proc = _run(["rev-parse", "--show-toplevel"], _dir_for(path), check=False)
    if proc.returncode != 0:
        # Name the path the caller gave, not the directory we happened to run git in.
        _raise_for(proc, ["rev-parse"], path)
    return Path(os.fsdecode(proc.stdout.rstrip(b"\n")))


def _rel_to_root(path: StrPath) -> tuple[Path, str]:
    """(repo root, path relative to it in git's '/' form) for a file or directory."""
    root = _repo_root(path)
    absolute = Path(os.path.abspath(path))
    try:
        rel = absolute.relative_to(root)
    except ValueError:
        # Symlinked checkouts: compare real paths before giving up.
        try:
            rel = absolute.resolve().relative_to(root.resolve())
        except ValueError as exc:
            raise UsageError(
                "path is outside the git repository", where=os.fspath(path), fix=f"use a path under {root}"
            ) from exc
    return root, rel.as_posix()


def _check_rev(rev: str) -> None:
    # Revisions come from users and records; never let one be read as a git option.
    if not rev or rev.startswith("-"):
        raise UsageError(f"not a valid git revision: {rev!r}", fix="give a commit sha, branch or tag")


def _resolve_commit(rev: str, repo: StrPath) -> str:
    _check_rev(rev)
    proc = _run(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], repo, check=False)
    if proc.returncode != 0:
        _repo_root(repo)  # a missing repo beats a missing commit in the message
        raise NotFound(
            f"commit {rev} does not exist",
            where=os.fspath(repo),
            fix="check the sha with `git log`; it may have been rebased away or not fetched (`git fetch`)",
        )
    return proc.stdout.decode().strip()


# --------------------------------------------------------------------------- state


def git_state(path: StrPath = ".") -> GitState:
    """Commit, branch and uncommitted changes of the repository containing ``path``.

    Untracked files make the tree dirty (a run can import them, so the commit alone would
    not reproduce it); ignored files do not.
    """
    root = _repo_root(path)
    out = _run(
        ["status", "--porcelain=v2", "-z", "--branch", "--untracked-files=all", "--ignored=no"], root
    ).stdout
    commit: str | None = None
    branch: str | None = None
    modified: list[str] = []
    staged: list[str] = []
    untracked: list[str] = []
    fields = out.split(b"\0")
    i = 0
    while i < len(fields):
        rec = fields[i]
        i += 1
        if not rec:
            continue
        kind = rec[:1]
        if rec.startswith(b"# branch.oid "):
            oid = rec[len(b"# branch.oid ") :].decode()
            commit = None if oid == "(initial)" else oid
        elif rec.startswith(b"# branch.head "):
            head = os.fsdecode(rec[len(b"# branch.head ") :])
            branch = None if head == "(detached)" else head
        elif kind == b"1":
            # 1 XY sub mH mI mW hH hI path
            parts = rec.split(b" ", 8)
            _sort_change(parts[1], os.fsdecode(parts[8]), staged, modified)
        elif kind == b"2":
            # 2 XY sub mH mI mW hH hI Xscore path \0 origPath
            parts = rec.split(b" ", 9)
            _sort_change(parts[1], os.fsdecode(parts[9]), staged, modified)
            i += 1  # the original path of the rename/copy
        elif kind == b"u":
            # u XY sub m1 m2 m3 mW h1 h2 h3 path: a merge conflict is both staged and unstaged work
            parts = rec.split(b" ", 10)
            name = os.fsdecode(parts[10])
            staged.append(name)
            modified.append(name)
        elif kind == b"?":
            untracked.append(os.fsdecode(rec[2:]))
    return GitState(
        repo_root=str(root),
        commit=commit,
        branch=branch,
        clean=not (modified or staged or untracked),
        modified=tuple(sorted(modified)),
        staged=tuple(sorted(staged)),
        untracked=tuple(sorted(untracked)),
    )


def _sort_change(xy: bytes, name: str, staged: list[str], modified: list[str]) -> None:
    index_state, tree_state = xy[:1], xy[1:2]
    if index_state != b".":
        staged.append(name)
    if tree_state != b".":
        modified.append(name)


# --------------------------------------------------------------------------- hints and ignores


def configured_identity(cwd: StrPath) -> str | None:
    """git's ``user.email`` (else ``user.name``) as configured for ``cwd`` — the repository's
    own config first, then the user's — or None (no git, nothing configured)."""
    for key in ("user.email", "user.name"):
        try:
            proc = _run(["config", "--get", key], cwd if Path(cwd).is_dir() else Path.cwd(), check=False)
        except (NotFound, OSError):
            return None
        value = proc.stdout.decode("utf-8", "replace").strip() if proc.returncode == 0 else ""
        if value:
            return value
    return None


def repo_root_of(path: StrPath) -> Path | None:
    """The work tree holding ``path``; None outside any git repository or without git."""
    try:
        return _repo_root(path)
    except (NotFound, InputError):
        return None


def ignore_in_repo(folder: StrPath) -> Path | None:
    """Make git ignore ``folder`` when it lies in a work tree: append ``/NAME/`` to the
    ``.gitignore`` beside it (creating it), unless a pattern already ignores it.

    Returns the ``.gitignore`` written, or None (no repository, or already ignored).
    """
    folder = Path(folder).absolute()
    root = repo_root_of(folder.parent)
    if root is None:
        return None
    try:
        rel = folder.relative_to(root).as_posix()
    except ValueError:
        rel = folder.resolve().relative_to(root.resolve()).as_posix()
    # --no-index: judge the patterns alone, so a second call never appends twice.
    # (check-ignore refuses literal pathspecs; the folder name holds no glob characters we did not choose.)
    if _run(["check-ignore", "-q", "--no-index", "--", rel + "/"], root, check=False,
            env={"GIT_LITERAL_PATHSPECS": "0"}).returncode == 0:
        return None
    gi = folder.parent / ".gitignore"
    text = gi.read_text(encoding="utf-8") if gi.exists() else ""
    line = f"/{folder.name}/"
    gi.write_text(text + ("" if not text or text.endswith("\n") else "\n") + line + "\n", encoding="utf-8")
    return gi


def add_command(path: StrPath, *, cwd: StrPath | None = None) -> str | None:
    """The ``git add …`` that stages ``path``, typed from ``cwd``; None outside a repository."""
    import shlex

    path = Path(path).absolute()
    root = repo_root_of(path.parent)
    if root is None:
        return None
    here = Path(cwd or os.getcwd()).absolute()
    inside = here == root or root in here.parents or root.resolve() in here.resolve().parents \
        or here.resolve() == root.resolve()
    if inside:
        return "git add " + shlex.quote(os.path.relpath(path, here))
    return f"git -C {shlex.quote(str(root))} add " + shlex.quote(os.path.relpath(path, root))


# --------------------------------------------------------------------------- single paths


def is_tracked(path: StrPath) -> bool:
    """True if git tracks ``path`` (for a directory: any file under it)."""
    root, rel = _rel_to_root(path)
    out = _run(["ls-files", "-z", "--full-name", "--", rel], root).stdout
    return bool(out)


def file_at_commit(commit: str, relpath: str, *, repo: StrPath = ".") -> bytes:
    """The bytes of ``relpath`` (relative to the repo root, '/'-separated) at ``commit``."""
    sha = _resolve_commit(commit, repo)
    rel = Path(relpath).as_posix().lstrip("/")
    proc = _run(["cat-file", "blob", f"{sha}:{rel}"], repo, check=False)
    if proc.returncode != 0:
        raise NotFound(
            f"{rel} does not exist at commit {sha[:12]}",
            where=rel,
            fix=f"list the files of that commit with `git ls-tree -r --name-only {sha[:12]}`",
        )
    return proc.stdout


def last_commit_touching(path: StrPath) -> str | None:
    """The sha of the newest commit on HEAD that changed ``path``, or None if none did."""
    root, rel = _rel_to_root(path)
    if _run(["rev-parse", "--verify", "--quiet", "HEAD"], root, check=False).returncode != 0:
        return None  # no commits yet
    out = _run(["log", "-1", "--format=%H", "HEAD", "--", rel], root).stdout.decode().strip()
    return out or None


def commit_exists(sha: str, *, repo: StrPath = ".") -> bool:
    """True if ``sha`` names a commit in the repository (other objects do not count)."""
    if not sha or sha.startswith("-"):
        return False
    proc = _run(["cat-file", "-e", f"{sha}^{{commit}}"], repo, check=False)
    if proc.returncode != 0:
        _repo_root(repo)  # raise NotFound for a missing repo rather than answer False
        return False
    return True


# --------------------------------------------------------------------------- history


def commits_between(a: str, b: str, *, repo: StrPath = ".") -> list[dict]:
    """Commits reachable from ``b`` but not from ``a`` (git's ``a..b``), oldest first."""
    sha_a, sha_b = _resolve_commit(a, repo), _resolve_commit(b, repo)
    # Unit separator between fields, NUL (-z) between commits: subjects may contain anything else.
    out = _run(
        ["log", "-z", "--reverse", "--format=%H%x1f%an%x1f%aI%x1f%s", f"{sha_a}..{sha_b}"], repo
    ).stdout
    commits = []
    for rec in out.split(b"\0"):
        if not rec:
            continue
        sha, author, date, subject = rec.decode("utf-8", "replace").split("\x1f", 3)
        commits.append({"sha": sha, "subject": subject, "author": author, "date": date})
    return commits


def files_changed(a: str, b: str | None = None, *, repo: StrPath = ".") -> list[dict]:
    """Files that differ between commits ``a`` and ``b`` (``b=None``: the working tree,
    tracked files only — see :func:`git_state` for untracked ones).

    Each entry: path, status (added/modified/deleted/renamed/...), additions, deletions
    (None for binary files), and old_path for renames and copies. Sorted by path.
    """
    revs = [_resolve_commit(a, repo)] + ([] if b is None else [_resolve_commit(b, repo)])
    common = ["diff", "-z", "--find-renames", "--no-ext-diff", "--no-textconv", "--no-color"]
    status_out = _run([*common, "--name-status", *revs, "--"], repo).stdout
    numstat_out = _run([*common, "--numstat", *revs, "--"], repo).stdout
    counts = _parse_numstat(numstat_out)
    changes = []
    fields = status_out.split(b"\0")
    i = 0
    while i < len(fields) - 1:
        code = fields[i].decode()
        letter = code[:1]
        if letter in ("R", "C"):
            old, new = os.fsdecode(fields[i + 1]), os.fsdecode(fields[i + 2])
            i += 3
        else:
            old, new = None, os.fsdecode(fields[i + 1])
            i += 2
        additions, deletions = counts.get(new, (None, None))
        entry = {
            "path": new,
            "status": _STATUS_WORDS.get(letter, letter),
            "additions": additions,
            "deletions": deletions,
        }
        if old is not None:
            entry["old_path"] = old
        changes.append(entry)
    return sorted(changes, key=lambda c: c["path"])


def _parse_numstat(out: bytes) -> dict[str, tuple[int | None, int | None]]:
    """``git diff --numstat -z``: 'add\\tdel\\tpath\\0', or for renames 'add\\tdel\\t\\0old\\0new\\0'."""
    counts: dict[str, tuple[int | None, int | None]] = {}
    fields = out.split(b"\0")
    i = 0
    while i < len(fields):
        rec = fields[i]
        i += 1
        if not rec:
            continue
        added, deleted, path = rec.split(b"\t", 2)
        if not path:  # rename/copy: the two paths follow as their own fields
            path = fields[i + 1]
            i += 2
        counts[os.fsdecode(path)] = (
            None if added == b"-" else int(added),
            None if deleted == b"-" else int(deleted),
        )
    return counts


# --------------------------------------------------------------------------- worktrees


@contextmanager
def worktree(repo: StrPath, commit: str, dest: StrPath) -> Iterator[Path]:
    """Check ``commit`` out, detached, into a new worktree at ``dest``; always remove it after.

    The user's own working tree, index and HEAD are never touched: a worktree has its own.
    """
    root = _repo_root(repo)
    sha = _resolve_commit(commit, root)
    target = Path(os.path.abspath(dest))
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(
            "worktree destination exists and is not empty",
            where=str(target),
            fix="choose a new directory (it is created and removed again)",
        )
    proc = _run(["worktree", "add", "--detach", "--quiet", str(target), sha], root, check=False)
    if proc.returncode != 0:
        raise StorageError(
            f"could not create a worktree: {proc.stderr.decode('utf-8', 'replace').strip()}",
            where=str(target),
            fix="check that the directory is writable and not already a registered worktree (`git worktree list`)",
        )
    try:
        yield target
    finally:
        _remove_worktree(root, target)


def _remove_worktree(root: Path, target: Path) -> None:
    # --force: the body may have left build outputs or edits there; they are scratch by contract.
    proc = _run(["worktree", "remove", "--force", "--force", str(target)], root, check=False)
    if proc.returncode != 0 or target.exists():
        # Fall back to deleting the directory and letting git forget the stale registration.
        shutil.rmtree(target, ignore_errors=True)
        _run(["worktree", "prune"], root, check=False)
