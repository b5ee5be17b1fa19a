"""``lensvault reproduce``: rebuild a recorded run or model and verify it.

The recorded commit is checked out in a temporary git worktree (the user's work
tree is never touched), the recorded dataset version is materialized, and the
recorded command runs with the recorded config and seeds as a new run of kind
``reproduce``, linked to the original. Then every final metric must match
within the tolerance, every recorded artifact must have the same sha256, and
each evaluation of the original's predictions is recomputed on the new ones.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lensvault.errors import LensVaultError, NotFound

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["ReproduceReport", "reproduce"]

METRICS_FILE = "metrics.json"  # read by the launcher into the run's metrics


@dataclass
class ReproduceReport:
    target: str
    original_run: str
    new_run: str | None = None
    tolerance: float = 0.01
    verdict: str = "FAIL"
    reasons: list[str] = field(default_factory=list)  # why it could not even run
    differences: list[dict] = field(default_factory=list)
    matches: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def _original(vault: Vault, ref: str):
    from lensvault.catalog.repos.runs import RunRepo

    with vault.catalog.read() as conn:
        from lensvault.runs.resolve import find_run_id

        run_id = find_run_id(conn, ref)  # an id, a unique prefix, or latest
        if run_id is not None:
            return RunRepo(conn).one(run_id), None
        from lensvault.catalog.model_refs import resolve_model

        model = resolve_model(conn, ref)
        row = RunRepo(conn).get(model.run_id)
        if row is None:
            raise NotFound(f"the run {model.run_id} of {ref} is not in the catalog", where=ref,
                           fix="the catalog is incomplete; run `lensvault verify`")
        return row, model


def inputs(vault: Vault, ref: str) -> dict[str, list[str]]:
    """What rebuilding REF reads from the store, by owner: the dataset version's objects and the
    original run's environment (for a caller to fetch what is not here first)."""
    row, _model = _original(vault, ref)
    out: dict[str, list[str]] = {}
    if row.dataset:
        try:
            out[row.dataset] = sorted(vault.dataset(row.dataset).object_ids())
        except LensVaultError:
            pass  # an unreadable version is a FAIL reason of its own (_blockers)
    if row.environment_oid:
        out[f"run {row.run_id}"] = [row.environment_oid]
    return out


def _pins(row):
    from lensvault.runs.preflight import PreflightReport

    r = PreflightReport()
    r.dataset, r.dataset_snapshot, r.config_id = row.dataset, row.dataset_snapshot, row.config_id
    r.seeds = json.loads(row.seeds) if row.seeds else {}
    r.code_commit, r.repo_root, r.clean = row.code_commit, row.repo_root, True
    return r


def _blockers(vault: Vault, row) -> list[str]:
    """Reasons the original cannot be rebuilt at all (each a FAIL reason)."""
    from lensvault import gitinfo

    reasons = []
    if not row.clean:
        reasons.append(f"the original run {row.run_id} was dirty: its code is not fully known, so it cannot be rebuilt")
    if not row.command:
        reasons.append(f"run {row.run_id} recorded no command (a standalone run); only `lensvault run` runs can be reproduced")
    if not row.code_commit or not row.repo_root or not os.path.isdir(row.repo_root):
        reasons.append(f"the repository of run {row.run_id} ({row.repo_root}) is not available")
    elif not gitinfo.commit_exists(row.code_commit, repo=row.repo_root):
        reasons.append(f"commit {row.code_commit[:12]} is no longer reachable in {row.repo_root} "
                       "(rebased or garbage-collected?): fetch it or restore the branch")
    if row.dataset:
        try:
            ds = vault.dataset(row.dataset)
            missing = vault.store.missing(sorted(ds.object_ids()))
            if missing:
                reasons.append(f"{len(missing)} object(s) of dataset {row.dataset} are missing from the store "
                               f"(first {missing[0][:12]}); `lensvault verify {row.dataset}` lists them")
        except NotFound as e:
            reasons.append(f"dataset {row.dataset} cannot be read: {e.what}")
        except Exception as e:  # noqa: BLE001 - any unreadable dataset is a reason; a missing manifest object surfaces as ObjectMissing
            reasons.append(f"dataset {row.dataset} cannot be read: {e}")
    return reasons


def reproduce(vault: Vault, ref: str, *, tolerance: float = 0.01, stream=None) -> ReproduceReport:
    from lensvault import gitinfo
    from lensvault.runs.launcher import execute

    row, model = _original(vault, ref)
    target = f"{model.name}@{model.version}" if model is not None else row.run_id
    rep = ReproduceReport(target=target, original_run=row.run_id, tolerance=tolerance)
    rep.reasons = _blockers(vault, row)
    if not rep.reasons:
        scratch = Path(tempfile.mkdtemp(prefix="reproduce-", dir=vault.dir))
        try:
            with gitinfo.worktree(row.repo_root, row.code_commit, scratch / "code") as wt:
                rel = os.path.relpath(row.cwd or row.repo_root, row.repo_root)
                cwd = (wt / rel) if not rel.startswith("..") else wt
                result = execute(vault, _pins(row), json.loads(row.command), kind="reproduce", reproduces=target,
                                 output_dir=scratch / "out", cwd=cwd, stream=stream, code_root=wt)
            rep.new_run = result.run_id
            if result.status != "succeeded":
                rep.reasons.append(f"the command {result.status} (exit code {result.exit_code}); "
                                   f"see `lensvault runs log {result.run_id}`")
            else:
                _compare(vault, rep, row, model, result.run_id, scratch / "out")
        except LensVaultError as e:  # e.g. the data could not be materialized: a FAIL, recorded, not a crash
            rep.reasons.append(f"the rebuild could not run: {e}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    rep.verdict = "PASS" if not rep.reasons and not rep.differences else "FAIL"
    with vault.catalog.begin() as conn:
        vault.catalog.append_event(conn, "reproduce", "run", row.run_id, after={
            "target": target, "new_run": rep.new_run, "verdict": rep.verdict, "tolerance": tolerance,
            "reasons": rep.reasons, "differences": rep.differences[:50]})
    return rep


def _compare(vault: Vault, rep: ReproduceReport, row, model, new_run: str, out_dir: Path) -> None:
    from lensvault.runs.read import get_run

    old, new = get_run(vault, row.run_id), get_run(vault, new_run)
    # Final metrics: overall, per class and per slice, within the tolerance.
    for part, a, b in (("", old["metrics"], new["metrics"]),
                       *((f"[{k}] ", old["metrics_per_class"].get(k, {}), new["metrics_per_class"].get(k, {}))
                         for k in old["metrics_per_class"]),
                       *((f"[{k}] ", old["metrics_per_slice"].get(k, {}), new["metrics_per_slice"].get(k, {}))
                         for k in old["metrics_per_slice"])):
        for key, va in sorted(a.items()):
            _within(rep, f"{part}{key}", va, b.get(key))
    # Artifacts: byte-identical (path by path) — except the metrics file, whose values were
    # just compared within the tolerance (requiring its bytes to match would void the tolerance).
    new_art = {x["path"]: x["sha256"] for x in new["artifacts"]}
    for art in old["artifacts"]:
        got = new_art.get(art["path"])
        item = {"kind": "artifact", "name": art["path"], "expected": art["sha256"], "got": got}
        if got is not None and got != art["sha256"] and art["path"] == METRICS_FILE:
            item["compared"] = "by value, within the tolerance"
            rep.matches.append(item)
            continue
        (rep.matches if got == art["sha256"] else rep.differences).append(item)
    if model is not None:
        _bundle_files(vault, rep, model, new_art)
    _evaluations(vault, rep, row, model, out_dir, old["artifacts"])


def _within(rep, name, va, vb, kind: str = "metric") -> None:
    num = (int, float)
    if isinstance(va, num) and isinstance(vb, num):
        ok = abs(vb - va) <= rep.tolerance
        item = {"kind": kind, "name": name, "expected": va, "got": vb, "delta": vb - va}
    else:
        ok = va == vb
        item = {"kind": kind, "name": name, "expected": va, "got": vb}
    (rep.matches if ok else rep.differences).append(item)


def _bundle_files(vault: Vault, rep, model, new_art: dict) -> None:
    """The registered weights must be what the rebuilt run produced."""
    from lensvault.catalog.repos.models import ModelRepo

    with vault.catalog.read() as conn:
        files = ModelRepo(conn).files(model.name, model.version)
    produced = set(new_art.values())
    for f in files:
        if f.role != "weights":
            continue
        item = {"kind": "bundle", "name": f.file, "expected": f.sha256, "got": f.sha256 if f.sha256 in produced else None}
        (rep.matches if f.sha256 in produced else rep.differences).append(item)


def _evaluations(vault: Vault, rep, row, model, out_dir: Path, old_artifacts: list[dict]) -> None:
    """Re-evaluate the rebuilt predictions wherever the original's were evaluated."""
    from lensvault.catalog.repos.evaluations import EvaluationRepo

    by_sha = {a["sha256"]: a["path"] for a in old_artifacts}
    with vault.catalog.read() as conn:
        evs = EvaluationRepo(conn).of(run_id=row.run_id, model=(model.name, model.version) if model is not None else None,
                                      ordered=False)
    from lensvault.evaluations.recorded import compute_metrics

    for e in evs:
        path = by_sha.get(e.predictions_oid or "")
        if path is None or not (out_dir / path).is_file():
            continue
        new = compute_metrics(vault, dataset=e.dataset, split=e.split, predictions=out_dir / path)
        old = json.loads(e.metrics)
        for key, va in sorted((old.get("overall") or {}).items()):
            _within(rep, f"{e.dataset}:{e.split} {key}", va, (new.get("overall") or {}).get(key), kind="evaluation")
