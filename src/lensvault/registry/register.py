"""Register a run's weights as NAME@X.Y.Z: an immutable, content-addressed bundle.

A bundle is a JSON manifest in the store (format ``lensvault.model/1``) naming every
file by sha256 — weights, label map, pre/post-processing settings, metrics and release
notes — plus the lineage (run, dataset, config, commit) and how the version was chosen.
``model_versions.bundle_oid`` points at it; ``model_files`` lists its files; the
object refs keep all of them safe from gc.

Refused: a run that did not succeed; a dirty run (unless ``allow_dirty``, then marked);
weights whose bytes differ from what the run recorded; weights without a label map; a
version reserved by another run; a version lower than the change requires (unless
``force``, then recorded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault import interrupts, ledger
from lensvault.errors import AlreadyExists, InputError, UsageError, VersionRuleError
from lensvault.refs import SemVer, validate_name
from lensvault.registry import bundle_inputs
from lensvault.registry.bundle_inputs import BundleInputs, canonical
from lensvault.registry.model import BUNDLE_FORMAT, ModelVersion, load_bundle
from lensvault.registry.rules import ORDER, BumpDecision, Facts, architecture_of, required_bump
from lensvault.registry.run_facts import RunFacts, load_run_facts

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["RegisterRequest", "register_model"]

@dataclass(frozen=True)
class RegisterRequest:
    name: str
    run_id: str
    weights: tuple[Path, ...]
    labelmap: Path | None = None
    preprocess: Path | None = None
    postprocess: Path | None = None
    thresholds: tuple[str, ...] | dict = ()  # "KEY=NUMBER" items, or a mapping
    version: str | None = None
    bump: str | None = None  # auto | major | minor | patch
    caveats: tuple[str, ...] = ()
    force: bool = False
    allow_dirty: bool = False
    task: str | None = None  # None: read from the run's dataset version (registry.task)


# -- register -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionChoice:
    """The version to create, what it is compared with, and how the change judged it."""

    version: SemVer
    base: Any  # the model_versions row compared with (None: the first version)
    prev_bundle: dict | None
    decision: BumpDecision | None
    bump: str | None  # major | minor | patch, from base to version
    forced_reason: str | None


def register_model(vault: Vault, req: RegisterRequest) -> ModelVersion:
    """Check the request and the run, store the bundle's files, then — in one transaction
    holding the model's lock — choose the version, write the bundle and record it."""
    from lensvault.catalog.locks import lock_name

    name = _checked_request(req)
    run, metrics = _read_run(vault, req.run_id)
    _check_run(run, req.allow_dirty)
    inputs = bundle_inputs.collect(vault, run, weights=req.weights, labelmap=req.labelmap, preprocess=req.preprocess,
                                   postprocess=req.postprocess, thresholds=req.thresholds)
    bundle_inputs.store(vault, inputs.files)
    task, outputs = _task_of(vault, req, run, inputs, metrics)
    new = replace(inputs.facts(run), task=task, outputs=outputs)
    with (vault.store.committing() as check_stored, interrupts.commit("") as kept,
          vault.catalog.begin() as conn):
        lock_name(conn, "model", name)
        choice = _choose(vault, conn, name, req, run, new)
        kept.append(f"{name}@{choice.version}")
        manifest = _manifest(conn, name, run, inputs, metrics, choice, req.caveats, vault.actor, outputs)
        bundle_oid = _store_bundle(vault, manifest, metrics)
        check_stored([bundle_oid, *(f["sha256"] for f in manifest["files"])])
        _record(vault, conn, name, run, manifest, bundle_oid, choice)
    return _registered(vault, name, str(choice.version))


def _checked_request(req: RegisterRequest) -> str:
    """The model name, once the request says one version, one way, and names weights."""
    name = validate_name(req.name, "model")
    if (req.version is None) == (req.bump is None):
        raise UsageError("say which version to create, one way", fix="pass --version X.Y.Z or --bump auto")
    if req.bump not in (None, "auto", "major", "minor", "patch"):
        raise UsageError(f"unknown bump {req.bump!r}", fix="use --bump auto (or major, minor, patch)")
    if not req.weights:
        raise UsageError("no weights given", fix="pass --weights PATH")
    return name


def _read_run(vault: Vault, ref: str) -> tuple[RunFacts, list[dict]]:
    """The run's facts, and its metrics: one group per source (each evaluation of the run,
    what the run logged), never merged."""
    from lensvault.runs.crashes import reap_dead_runs
    from lensvault.runs.metric_sources import run_groups
    from lensvault.runs.resolve import resolve_run_id

    reap_dead_runs(vault)  # a crashed run's reservation must not hold on to its version
    with vault.catalog.read() as conn:
        run_id = resolve_run_id(conn, ref)  # an id, a unique prefix, or latest
        return load_run_facts(conn, run_id), run_groups(conn, run_id)


def _choose(vault: Vault, conn, name: str, req: RegisterRequest, run: RunFacts, new: Facts) -> VersionChoice:
    """The version to create, inside the registering transaction: taken, unchanged, reserved
    by another run and under-stated versions are refused (the last unless ``force``)."""
    from lensvault.catalog.repos import ModelRepo, RunRepo

    existing = {SemVer.parse(r.version): r for r in ModelRepo(conn).of_name(name)}
    version, base = _choose_version(name, req, run, existing)
    decision = prev_bundle = None
    if base is not None:
        prev_bundle = load_bundle(vault.store, base.bundle_oid)
        decision = required_bump(_facts_of(conn, prev_bundle), new)
    if decision is not None and not decision.reasons and not req.force:
        raise AlreadyExists(
            f"nothing changed since {name}@{base.version}: same weights, data, config, code and settings",
            where=f"{name}@{base.version}", fix="use that version (or --force to register a copy anyway)")
    if not req.force:
        _refuse_a_copy(vault, conn, name, run, new, existing, base)
    if version is None:  # --bump auto after an existing version: the change decides
        assert base is not None and decision is not None  # (an existing version, so its decision)
        version = SemVer.parse(base.version).bump(decision.required)
    reserved = RunRepo(conn).reservation(name, str(version))
    if reserved is not None and reserved.run_id != run.run_id:
        raise AlreadyExists(f"{name}@{version} is reserved by run {reserved.run_id}", where=f"{name}@{version}",
                            fix="register that run's weights, or choose another version")
    if base is None:
        return VersionChoice(version, None, None, None, None, None)
    assert decision is not None  # made for every base
    bump_kind = SemVer.parse(base.version).bump_kind_to(version)
    assert bump_kind is not None  # the base is the highest version below this one
    forced_reason = None
    if ORDER[bump_kind] < ORDER[decision.required]:
        msg = (f"{name}@{version} is a {bump_kind.upper()} step from {base.version}, but the change "
               f"requires {decision.required.upper()}: {decision.explain()}")
        if not req.force:
            raise VersionRuleError(msg, where=f"{name}@{base.version} → {version}",
                                   fix=f"use --version {SemVer.parse(base.version).bump(decision.required)} "
                                       "or --bump auto (or --force to record an under-stated version)",
                                   required=decision.required, reasons=decision.reasons)
        forced_reason = msg
    return VersionChoice(version, base, prev_bundle, decision, bump_kind, forced_reason)


def _refuse_a_copy(vault: Vault, conn: Any, name: str, run: RunFacts, new: Facts, existing: dict[SemVer, Any],
                   base: Any) -> None:
    """Refuse a version that would be a copy of one this run already made — same weights, data,
    config, code and settings — even when it is not the one compared with (registering run A
    again after run B's version would otherwise make a new MINOR that is A's version again).
    Only versions of the same run are read: a copy needs the same run's weights."""
    for row in sorted(existing.values(), key=lambda r: SemVer.parse(r.version)):
        if row.run_id != run.run_id or (base is not None and row.version == base.version):
            continue
        same = required_bump(_facts_of(conn, load_bundle(vault.store, row.bundle_oid)), new)
        if not same.reasons:
            raise AlreadyExists(
                f"run {run.run_id} is already registered as {name}@{row.version} with the same weights, data, "
                "config, code and settings", where=f"{name}@{row.version}",
                fix="use that version (promote it if it should be deployed), or --force to register a copy anyway")


def _task_of(vault: Vault, req: RegisterRequest, run: RunFacts, inputs: BundleInputs,
             metrics: list[dict]) -> tuple[str | None, dict | None]:
    """The model's task (given, else its evaluations', else its dataset's) and output schema."""
    from lensvault.registry.task import evaluated_task, infer_task, output_schema

    task = req.task or evaluated_task(metrics) or infer_task(vault, run.dataset)
    if task is None:
        return None, None
    class_map = vault.dataset(run.dataset).class_map() if run.dataset else None
    keypoints = class_map.to_dict().get("keypoints") if class_map is not None else None
    return task, output_schema(task, inputs.label_map, keypoints)


def _manifest(conn, name: str, run: RunFacts, inputs: BundleInputs, metrics: list[dict], choice: VersionChoice,
              caveats, actor: str, outputs: dict | None = None) -> dict:
    """The bundle manifest (format ``lensvault.model/1``) with its release notes, written by ``actor``."""
    from lensvault.catalog.catalog import utcnow
    from lensvault.registry.notes import dataset_changelog, metric_deltas, render_notes

    base, prev_bundle, decision = choice.base, choice.prev_bundle, choice.decision
    manifest = {
        "format": BUNDLE_FORMAT,
        "name": name, "version": str(choice.version), "run_id": run.run_id,
        "dataset": run.dataset, "config_id": run.config_id, "code_commit": run.code_commit,
        "architecture": architecture_of(run.config), "seeds": run.seeds,
        "task": outputs["task"] if outputs else None, "output_schema": outputs,
        "files": sorted(({"name": f["name"], "role": f["role"], "sha256": f["sha256"], "size": f["size"]}
                         for f in inputs.files), key=lambda f: f["name"]),
        "thresholds": inputs.thresholds, "preprocess": inputs.settings["preprocess"],
        "postprocess": inputs.settings["postprocess"],
        "label_map": inputs.label_map, "label_map_source": inputs.label_map_source, "metrics": metrics,
        "caveats": list(caveats), "weights_unverified": inputs.unverified,
        "previous_version": base.version if base is not None else None,
        "previous_dataset": prev_bundle.get("dataset") if prev_bundle else None,
        "previous_config_id": prev_bundle.get("config_id") if prev_bundle else None,
        "bump": choice.bump, "bump_decision": decision.to_dict() if decision else None,
        "forced": choice.forced_reason is not None, "forced_reason": choice.forced_reason, "dirty": not run.clean,
        "dataset_changelog": dataset_changelog(conn, prev_bundle.get("dataset") if prev_bundle else None, run.dataset)
        if prev_bundle else [],
        "metric_deltas": metric_deltas(_previous_metrics(conn, base, prev_bundle), metrics),
        "created_at": utcnow(), "created_by": actor,
    }
    manifest["release_notes"] = render_notes(manifest)
    return manifest


def _store_bundle(vault: Vault, manifest: dict, metrics: list[dict]) -> str:
    """Store metrics.json, RELEASE_NOTES.md (added to the manifest's files) and the manifest; its oid."""
    extra = [("metrics.json", "metrics", canonical(metrics)),
             ("RELEASE_NOTES.md", "notes", manifest["release_notes"].encode())]
    for fname, role, data in extra:
        manifest["files"].append({"name": fname, "role": role, "sha256": vault.store.put_bytes(data), "size": len(data)})
    manifest["files"].sort(key=lambda f: f["name"])
    return vault.store.put_bytes(canonical(manifest))


def _record(vault: Vault, conn, name: str, run: RunFacts, manifest: dict, bundle_oid: str, choice: VersionChoice) -> None:
    """The version's rows, object refs, event and ledger record, in the registering transaction."""
    from lensvault.catalog.repos import Conflict, ModelRepo, savepoint

    version = choice.version
    ref = f"{name}@{version}"
    forced = choice.forced_reason is not None
    row = {
        "name": name, "version": str(version), "major": version.major, "minor": version.minor,
        "patch": version.patch, "prerelease": version.prerelease, "run_id": run.run_id, "bundle_oid": bundle_oid,
        "dataset": run.dataset, "config_id": run.config_id, "code_commit": run.code_commit,
        "metrics": json.dumps(manifest["metrics"], sort_keys=True), "release_notes": manifest["release_notes"],
        "bump": choice.bump, "forced": forced, "dirty": not run.clean, "created_at": manifest["created_at"],
        "created_by": manifest["created_by"],
    }
    file_rows = [{"name": name, "version": str(version), "file": f["name"], "role": f["role"],
                  "sha256": f["sha256"], "size": f["size"]} for f in manifest["files"]]
    kept = [bundle_oid, *(f["sha256"] for f in manifest["files"])]
    try:
        with savepoint(conn):
            ModelRepo(conn).add(row, file_rows)
            vault.catalog.add_object_refs(conn, "model", ref, kept)
    except Conflict as e:
        if ModelRepo(conn).exists(name, str(version)):
            raise AlreadyExists(f"{ref} already exists", where=ref,
                                fix="model versions are write-once; choose another version") from e
        raise _stray_rows(ref) from e
    vault.catalog.append_event(conn, "model.register", "model", ref, after={
        "run_id": run.run_id, "bundle_oid": bundle_oid, "dataset": run.dataset, "config_id": run.config_id,
        "code_commit": run.code_commit, "bump": choice.bump, "forced": forced,
        "dirty": not run.clean, "previous_version": manifest["previous_version"]})
    ledger.record(vault, conn, "model.version", {"row": row, "files": file_rows}, objects=kept,
                  ref=f"models/{name}/{version}")


def _registered(vault: Vault, name: str, version: str) -> ModelVersion:
    """The version as the catalog now has it, with its evaluations."""
    from lensvault.catalog.repos.models import ModelRepo
    from lensvault.registry.query import model_evaluations

    with vault.catalog.read() as conn:
        row = ModelRepo(conn).get(name, version)
        assert row is not None  # just registered; versions are never deleted
        evals = model_evaluations(conn, [row])[(row.name, row.version)]
    return ModelVersion.from_row(row, vault.store, evaluations=evals)


def _stray_rows(ref: str):
    """Rows of NAME@VERSION without the version row: a catalog changed outside LensVault."""
    from lensvault.errors import CatalogDamaged

    return CatalogDamaged(
        f"the catalog already holds files or object references of {ref}, but not the version itself",
        where=f"catalog tables model_files / object_refs ({ref})",
        fix="the catalog was changed outside LensVault: `lensvault verify` names what it lacks, and "
            "`lensvault catalog rebuild --force` recreates it from the store; then register again",
    )


def _previous_metrics(conn, base, prev_bundle) -> list[dict] | None:
    """What the previous version's metrics are compared with: those in its bundle, plus every
    evaluation of it recorded since (e.g. on the new version's data: a like-for-like delta)."""
    if base is None:
        return None
    from lensvault.registry.query import model_evaluations
    from lensvault.runs.metric_sources import groups_of

    groups = groups_of(prev_bundle.get("metrics"))
    known = {g["source"].get("eval_id") for g in groups}
    return groups + [g for g in model_evaluations(conn, [base])[(base.name, base.version)]
                     if g["source"]["eval_id"] not in known]


def _check_run(run: RunFacts, allow_dirty: bool) -> None:
    if run.status != "succeeded":
        raise InputError(
            f"run {run.run_id} {run.status if run.status != 'running' else 'is still running'}"
            + ("" if run.status == "running" else ": only a succeeded run can be registered"),
            where=run.run_id,
            fix="register the weights of a run that finished successfully",
        )
    if not run.clean and not allow_dirty:
        raise InputError(
            f"run {run.run_id} ran on uncommitted code: its model could not be rebuilt",
            where=run.run_id,
            fix="commit and re-run, or pass --allow-dirty to register it marked as dirty",
        )


def _choose_version(name, req: RegisterRequest, run: RunFacts, existing: dict):
    """The version to create (None: --bump auto decides once the change is known) and the
    existing version it is compared with (None for the first version).

    An explicit version is compared with the highest version below it, so a hotfix
    1.0.1 after 1.1.0 exists is judged against 1.0.0; ``--bump`` against the latest.
    """
    latest = max(existing) if existing else None
    reserved = SemVer.parse(run.model_version) if run.model_name == name and run.model_version else None
    if req.version is not None:
        version = SemVer.parse(req.version)
    elif req.bump == "auto" and reserved is not None:
        version = reserved  # the version preflight reserved for this run; checked like an explicit one
    elif latest is None:
        version = SemVer(1, 0, 0)
    elif req.bump == "auto":
        version = None  # decided below, once the change is known
    else:
        version = latest.bump(req.bump)
    if version is not None:
        if version in existing:
            raise AlreadyExists(f"{name}@{version} already exists", where=f"{name}@{version}",
                                fix="model versions are write-once; use --bump auto for the next version")
        below = [v for v in existing if v < version]
        return version, (existing[max(below)] if below else None)
    return None, existing[latest]


def _facts_of(conn, bundle: dict) -> Facts:
    from lensvault.catalog.repos.configs import ConfigRepo

    config = None
    if bundle.get("config_id"):
        content = ConfigRepo(conn).content(bundle["config_id"])
        config = json.loads(content) if content is not None else None
    return Facts(
        dataset=bundle.get("dataset"), config_id=bundle.get("config_id"), config=config,
        code_commit=bundle.get("code_commit"), label_map=bundle["label_map"], preprocess=bundle.get("preprocess"),
        postprocess=bundle.get("postprocess"), thresholds=bundle.get("thresholds") or {},
        weights=tuple(sorted(f["sha256"] for f in bundle["files"] if f["role"] == "weights")),
        task=bundle.get("task"), outputs=bundle.get("output_schema"),
    )
