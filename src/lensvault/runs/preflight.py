"""The preflight gate: every check a run must pass, each with what failed and how to fix it.

``preflight()`` only looks; it never refuses by itself. ``report.raise_for_failures()`` turns
the failed checks into one :class:`PreflightFailed` listing all of them, so a user fixes
everything in one go instead of meeting the problems one at a time.

The code repository is the git repository that holds the vault's folder: the vault lives
at the root of the project it versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lensvault.errors import LensVaultError, NotFound, PreflightFailed, UsageError

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["Check", "PreflightReport", "ensure_ignored", "preflight"]

_SHOW_FILES = 10


@dataclass(frozen=True)
class Check:
    check: str
    ok: bool
    what: str
    fix: str | None = None

    def to_dict(self) -> dict:
        return {"check": self.check, "ok": self.ok, "what": self.what, "fix": self.fix}


@dataclass
class PreflightReport:
    checks: list[Check] = field(default_factory=list)
    dataset: str | None = None
    dataset_snapshot: str | None = None
    config_id: str | None = None
    seeds: dict = field(default_factory=dict)
    code_commit: str | None = None
    branch: str | None = None
    repo_root: str | None = None
    clean: bool = False
    model: tuple[str, str] | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def add(self, check: str, ok: bool, what: str, fix: str | None = None) -> None:
        self.checks.append(Check(check, ok, what, None if ok else fix))

    def raise_for_failures(self) -> None:
        if self.failures:
            n = len(self.failures)
            names = ", ".join(c.check for c in self.failures)
            raise PreflightFailed(f"preflight failed: {n} check{'s' if n > 1 else ''} did not pass ({names})",
                                  failures=[c.to_dict() for c in self.failures],
                                  fix="fix every item above, then run again")

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks], "dataset": self.dataset,
                "dataset_snapshot": self.dataset_snapshot, "config": self.config_id, "seeds": self.seeds,
                "code_commit": self.code_commit, "branch": self.branch, "clean": self.clean,
                "model": None if self.model is None else f"{self.model[0]}@{self.model[1]}"}


def ensure_ignored(folder: Path) -> None:
    """Make git ignore a folder LensVault writes to (its state, run outputs).

    A ``.gitignore`` holding ``*`` ignores every file beside it, itself included, so the
    folder never makes the work tree dirty and nothing has to be committed for it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    gi = folder / ".gitignore"
    if not gi.exists():
        gi.write_text("# written by LensVault: nothing in this folder belongs in git\n*\n")


def _listing(paths) -> str:
    paths = list(paths)
    shown = ", ".join(paths[:_SHOW_FILES])
    return shown + (f" … and {len(paths) - _SHOW_FILES} more" if len(paths) > _SHOW_FILES else "")


def preflight(vault: Vault, *, dataset: str | None, config: str | None, model: str | None = None,
              version: str | None = None, seed: int | None = None, allow_dirty: bool = False,
              output_dir: Path | None = None) -> PreflightReport:
    """Run every check; return the report (see :meth:`PreflightReport.raise_for_failures`)."""
    if (model is None) != (version is None):
        raise UsageError("--model and --version go together", where="--model/--version",
                         fix="give both (e.g. --model detector --version 1.2.0) or neither")
    report = PreflightReport()
    ensure_ignored(vault.dir)
    ensure_ignored(vault.root / "runs")
    repo_ok = _check_code(vault, report, allow_dirty)
    from lensvault.runs.crashes import reap_dead_runs

    reap_dead_runs(vault)  # a crashed run's model reservation must not refuse this one
    with vault.catalog.read() as conn:
        ds = _check_dataset(vault, report, dataset)
        cfg = _check_config(vault, conn, report, config, repo_ok)
        _check_seeds(report, ds, cfg, seed)
        if model is not None and version is not None:  # (both or neither: checked above)
            _check_model(conn, report, model, version)
    if output_dir is not None and output_dir.exists() and any(output_dir.iterdir()):
        report.add("output", False, f"the output folder {output_dir} is not empty",
                   "choose a new folder with --output, or leave it out to get runs/<run-id>/")
    return report


def _check_code(vault: Vault, report: PreflightReport, allow_dirty: bool) -> bool:
    from lensvault import gitinfo

    try:
        state = gitinfo.git_state(vault.root)
    except NotFound as e:
        report.add("git", False, f"the vault at {vault.root} is not in a git repository ({e.what})",
                   f"`git init` in {vault.root}, add `.lensvault/` and `runs/` to .gitignore, commit your code")
        return False
    except LensVaultError as e:
        report.add("git", False, f"git could not read the repository: {e.what}", e.fix)
        return False
    report.repo_root, report.code_commit, report.branch = state.repo_root, state.commit, state.branch
    if state.commit is None:
        report.add("git", False, "the repository has no commits yet",
                   "commit your code: `git add -A && git commit -m 'Training code'`")
        return False
    report.add("git", True, f"repository {state.repo_root} at {state.commit[:12]}"
               + (f" on {state.branch}" if state.branch else " (detached)"))
    report.clean = state.clean
    if state.clean:
        report.add("clean", True, "the work tree is clean (no modified, staged or untracked files)")
    else:
        parts = [f"{label}: {_listing(files)}" for label, files in
                 (("modified", state.modified), ("staged", state.staged), ("untracked", state.untracked)) if files]
        what = "the work tree has uncommitted changes — " + "; ".join(parts)
        fix = ("commit or stash them (`git status`), add generated files to .gitignore, "
               "or pass --allow-dirty to record a run marked dirty")
        own = sorted({f.split("/", 1)[0] for f in (*state.modified, *state.staged)} & {".lensvault", "runs"})
        if own:
            # Only the folders git tracks: `git rm` of an untracked path fails the whole command.
            fix = (f"LensVault's own files are tracked by git: `git rm -r -q --cached {' '.join(own)} && git commit "
                   "-m 'Stop tracking LensVault files'` (they are ignored from then on); " + fix)
        if allow_dirty:
            report.add("clean", True, what + " (allowed by --allow-dirty; the run is marked dirty)")
        else:
            report.add("clean", False, what, fix)
    return True


def _check_dataset(vault: Vault, report: PreflightReport, ref: str | None):
    if not ref:
        report.add("dataset", False, "no dataset version selected", "pass --dataset NAME@X.Y.Z")
        return None
    from lensvault.refs import Ref

    try:
        Ref.parse(ref, require_version=True)
        ds = vault.dataset(ref)
    except LensVaultError as e:
        report.add("dataset", False, e.what if ref in e.what else f"dataset {ref}: {e.what}",
                   e.fix or "see `lensvault dataset list`")
        return None
    report.dataset, report.dataset_snapshot = ds.ref, ds.snapshot_id
    try:
        missing = vault.store.missing(sorted(ds.object_ids()))
    except LensVaultError as e:
        report.add("dataset", False, f"the objects of {ds.ref} cannot be read: {e.what}", e.fix)
        return ds
    if missing:
        report.add("dataset", False, f"{len(missing)} object(s) of {ds.ref} are missing from the store "
                   f"(e.g. {missing[0][:12]})",
                   f"restore the store, or run `lensvault verify {ds.ref}` to list them")
    else:
        report.add("dataset", True, f"{ds.ref} (snapshot {ds.snapshot_id[:12]}), all objects present")
    return ds


def _check_config(vault: Vault, conn, report: PreflightReport, config_id: str | None, repo_ok: bool):
    from lensvault.configs.registered import config_file_state, get_config

    if not config_id:
        report.add("config", False, "no config selected", "register one with `lensvault config add PATH` and pass --config ID")
        return None
    try:
        cfg = get_config(conn, config_id)
    except NotFound as e:
        report.add("config", False, e.what, e.fix)
        return None
    report.config_id = cfg.config_id
    if not repo_ok:
        report.add("config", False, f"{cfg.config_id} ({cfg.repo_path}) cannot be checked against git",
                   "fix the git check above")
        return cfg
    st = config_file_state(vault, cfg)
    problems, fixes = [], []
    if not st["exists"]:
        problems.append(f"{cfg.repo_path} no longer exists")
        fixes.append(f"restore it: `git checkout -- {cfg.repo_path}`")
    else:
        if not st["tracked"]:
            problems.append(f"{cfg.repo_path} is not tracked by git")
            fixes.append(f"`git add {cfg.repo_path} && git commit -m 'Add {cfg.repo_path}'`, then register it "
                         f"under a new ID: `lensvault config add {cfg.repo_path}`")
        if not st["unchanged"]:
            problems.append(f"{cfg.repo_path} changed since it was registered as {cfg.config_id}")
            fixes.append(f"restore it (`git checkout {cfg.commit or 'HEAD'} -- {cfg.repo_path}`) "
                         f"or register the new content under a new ID (commit it, then `lensvault config add "
                         f"{cfg.repo_path}`)")
        elif not st["committed"]:
            problems.append(f"{cfg.config_id} was registered before {cfg.repo_path} was committed")
            fixes.append(f"commit it, then register it under a new ID: `lensvault config add {cfg.repo_path}`")
    if problems:
        report.add("config", False, f"{cfg.config_id}: " + "; ".join(problems), "; ".join(fixes))
    else:
        report.add("config", True, f"{cfg.config_id} = {cfg.repo_path} at {(cfg.commit or '')[:12]}, unchanged")
    return cfg


def _check_seeds(report: PreflightReport, ds, cfg, seed: int | None) -> None:
    from lensvault.configs.values import find_seed

    train_seed = seed if seed is not None else (find_seed(cfg.values) if cfg is not None else None)
    if train_seed is not None:
        report.seeds["train"] = train_seed
        source = "--seed" if seed is not None else f"config {cfg.config_id}"
        report.add("seed", True, f"training seed {train_seed} (from {source})")
    elif cfg is not None:
        report.add("seed", False, f"config {cfg.config_id} holds no seed and no --seed was given",
                   "add `seed: <int>` to the config (and register it under a new ID), or pass --seed N")
    if ds is None:
        return
    # What pins the data is the recorded membership — or its absence: then the run gets the
    # whole version. A seed matters only where LensVault assigned the splits by hashing.
    splits = ds.manifest().splits or {}
    method = splits.get("method")
    if method == "hash" and splits.get("seed") is not None:
        report.seeds["split"] = splits["seed"]
        report.add("split_seed", True,
                   f"{ds.ref} splits made with seed {splits['seed']}, membership recorded in the manifest")
    elif method == "source":
        report.seeds["split"] = None
        report.add("split_seed", True, f"{ds.ref} splits are the source's own, membership recorded in the manifest")
    elif method in (None, "none"):
        report.seeds["split"] = None
        report.add("split_seed", True, f"{ds.ref} has no splits: the run uses the whole version")
    else:
        report.add("split_seed", False, f"{ds.ref} records hashed splits ({method}) without the seed that made them",
                   "snapshot a new version with `--split 70/20/10 --seed N`, or with split files in the source")


def _check_model(conn, report: PreflightReport, name: str, version: str) -> None:
    from lensvault.catalog.repos import ModelRepo, RunRepo
    from lensvault.refs import SemVer, validate_name

    try:
        validate_name(name, "model")
        SemVer.parse(version)
    except LensVaultError as e:
        report.add("model_version", False, f"{name}@{version}: {e.what}", e.fix or "use NAME and X.Y.Z")
        return
    version = str(SemVer.parse(version))
    if ModelRepo(conn).exists(name, version):
        report.add("model_version", False, f"model {name}@{version} is already registered",
                   f"pick a free version (see `lensvault model list {name}`)")
        return
    held = RunRepo(conn).reservation(name, version)
    if held is not None:
        report.add("model_version", False, f"model {name}@{version} is reserved by run {held.run_id}",
                   "pick another version, or wait for that run to finish")
        return
    report.model = (name, version)
    report.add("model_version", True, f"model {name}@{version} is free (reserved when the run starts)")
