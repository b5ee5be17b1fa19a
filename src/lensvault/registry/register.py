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
from dataclasses import dataclass
from pathlib import Path

from lensvault import ledger
from lensvault.errors import AlreadyExists, InputError, IntegrityError, UsageError, VersionRuleError
from lensvault.refs import SemVer, validate_name
from lensvault.registry.lineage import RunInfo, load_run
from lensvault.registry.model import BUNDLE_FORMAT, ModelVersion, load_bundle
from lensvault.registry.rules import ORDER, Facts, architecture_of, required_bump

__all__ = ["RegisterRequest", "register_model", "parse_thresholds", "read_label_map"]

RESERVED_NAMES = ("bundle.json", "metrics.json", "RELEASE_NOTES.md")


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


def parse_thresholds(items) -> dict[str, float]:
    """``["score=0.5", "nms_iou=0.6"]`` (or a mapping) -> ``{"nms_iou": 0.6, "score": 0.5}``."""
    if isinstance(items, dict):
        items = [f"{k}={v}" for k, v in items.items()]
    out: dict[str, float] = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        key = key.strip()
        try:
            if not sep or not key:
                raise ValueError
            out[key] = float(value)
        except ValueError:
            raise InputError(f"threshold {item!r} is not KEY=NUMBER", where=str(item),
                             fix="write e.g. --threshold score=0.5 --threshold nms_iou=0.6") from None
    return dict(sorted(out.items()))


def read_label_map(path: Path) -> dict:
    """A label map file -> ``{"classes": [{"id", "name"}]}``.

    Accepted: our/COCO-like JSON ``{"classes": [{"id", "name"}]}`` or ``{"categories": [...]}``,
    a list of names (ids from 0), a mapping ``{id: name}``, YOLO's ``names:`` (list or
    mapping) in YAML/JSON/TOML, or a text file with one name per line.
    """
    from lensvault.bounded import MAX_DEPTH, too_deep
    from lensvault.configs import load_config

    path = Path(path)
    if not path.is_file():
        raise InputError(f"label map {path} is not a file", where=str(path))
    if path.suffix.lower() in (".txt", ".names", ""):
        try:
            names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except UnicodeDecodeError as e:
            raise InputError(f"label map {path.name} is not UTF-8 text", where=str(path), fix="save it as UTF-8") from e
        return _classes(list(enumerate(names)), path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise InputError(f"label map {path.name} is not valid JSON: {e}", where=str(path)) from e
        deep = too_deep(data)
        if deep is not None:
            raise InputError(f"label map {path.name} nests more than {MAX_DEPTH} levels deep", where=f"{path}: {deep}",
                             fix="write a list of names or {\"classes\": [{\"id\", \"name\"}]}")
    else:
        data = load_config(path)
    if isinstance(data, dict):
        for key in ("classes", "categories", "names", "labels"):
            if key in data:
                data = data[key]
                break
    if isinstance(data, list):
        if all(isinstance(x, dict) for x in data):
            try:
                return _classes([(x["id"], x["name"]) for x in data], path)
            except KeyError:
                raise InputError(f"label map {path.name}: every class needs an id and a name", where=str(path)) from None
        return _classes(list(enumerate(map(str, data))), path)
    if isinstance(data, dict):
        return _classes(list(data.items()), path)
    raise InputError(f"label map {path.name} holds no classes", where=str(path),
                     fix='write {"classes": [{"id": 0, "name": "person"}, ...]} or one name per line')


def _classes(pairs, path) -> dict:
    try:
        rows = sorted(((int(i), str(n)) for i, n in pairs), key=lambda r: r[0])
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"label map {path.name}: class ids must be integers", where=str(path)) from None
    if not rows:
        raise InputError(f"label map {path.name} holds no classes", where=str(path))
    if len({i for i, _ in rows}) != len(rows):
        raise InputError(f"label map {path.name}: a class id repeats", where=str(path))
    return {"classes": [{"id": i, "name": n} for i, n in rows]}


def _canonical(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


# -- register -------------------------------------------------------------------------------


def register_model(vault, req: RegisterRequest) -> ModelVersion:
    from lensvault.catalog.catalog import utcnow
    from lensvault.hashing import hash_file
    from lensvault.runs.metric_sources import run_groups
    from lensvault.store.base import LinkMode

    name = validate_name(req.name, "model")
    if (req.version is None) == (req.bump is None):
        raise UsageError("say which version to create, one way", fix="pass --version X.Y.Z or --bump auto")
    if req.bump not in (None, "auto", "major", "minor", "patch"):
        raise UsageError(f"unknown bump {req.bump!r}", fix="use --bump auto (or major, minor, patch)")
    if not req.weights:
        raise UsageError("no weights given", fix="pass --weights PATH")

    from lensvault.runs.crashes import reap_dead_runs
    from lensvault.runs.records import resolve_run_id

    reap_dead_runs(vault)  # a crashed run's reservation must not hold on to its version
    with vault.catalog.read() as conn:
        run_id = resolve_run_id(conn, req.run_id)  # an id, a unique prefix, or latest
        run = load_run(conn, run_id)
        # One group per source (each evaluation of the run, what the run logged): never merged.
        metrics = run_groups(conn, run_id)
    _check_run(run, req.allow_dirty)

    # -- files: weights first, verified against what the run recorded
    files: list[dict] = []  # name, role, sha256, size, source (path) | data (bytes)
    unverified: list[str] = []
    for w in req.weights:
        p = Path(w)
        if not p.is_file():
            raise InputError(f"weights file {p} does not exist", where=str(p), fix="pass the path of the trained weights")
        fh = hash_file(p)
        verified = _verify_weights(run, p, fh.oid)
        if not verified:
            unverified.append(p.name)
        files.append({"name": p.name, "role": "weights", "sha256": fh.oid, "size": fh.size, "source": str(p)})

    # -- label map: given, or the class map of the run's dataset version
    if req.labelmap is not None:
        label_map = read_label_map(Path(req.labelmap))
        lm_path = Path(req.labelmap)
        data = lm_path.read_bytes()
        files.append({"name": "labelmap" + (lm_path.suffix or ".txt"), "role": "labelmap", "data": data})
        label_map_source = f"file {lm_path.name}"
    else:
        label_map = _dataset_label_map(vault, run)
        if label_map is None:
            raise InputError(
                "weights without a label map are refused",
                where=run.dataset or run.run_id,
                fix="pass --labelmap PATH (the run's dataset version has no class map)"
                if run.dataset else "pass --labelmap PATH (the run used no dataset version)",
            )
        files.append({"name": "labelmap.json", "role": "labelmap", "data": _canonical(label_map)})
        label_map_source = f"dataset {run.dataset}"

    settings = {}
    for role, path in (("preprocess", req.preprocess), ("postprocess", req.postprocess)):
        if path is None:
            settings[role] = None
            continue
        from lensvault.configs import load_config

        path = Path(path)
        settings[role] = load_config(path)
        files.append({"name": role + path.suffix, "role": role, "data": path.read_bytes()})
    thresholds = parse_thresholds(req.thresholds)

    names = [f["name"] for f in files]
    clash = sorted({n for n in names if names.count(n) > 1 or n in RESERVED_NAMES})
    if clash:
        raise InputError(f"bundle file name(s) {', '.join(clash)} used twice or reserved", where=", ".join(clash),
                         fix="rename the weights file(s): bundle.json, metrics.json and RELEASE_NOTES.md are the bundle's own")

    for f in files:
        if "data" in f:
            f["sha256"] = vault.store.put_bytes(f["data"])
            f["size"] = len(f["data"])
    # Objects written before the catalog commit are pinned (gc keeps them); the commit
    # checks that they are still there.
    vault.store.put_files([(f["source"], f["sha256"]) for f in files if "source" in f], LinkMode.COPY)
    for f in files:
        if "source" in f and vault.store.check(f["sha256"]) != "ok":
            # A stored object that is not the bytes we hashed: damaged in the store (the file
            # still hashes right: its bytes replace the object), or the file changed meanwhile.
            if not vault.store.restore(f["sha256"], f["source"]):
                raise IntegrityError(f"weights file {f['source']} changed while it was being registered",
                                     where=f["source"], fix="wait for the writer to finish and register again")

    new = Facts(
        dataset=run.dataset, config_id=run.config_id, config=run.config, code_commit=run.code_commit,
        label_map=label_map, preprocess=settings["preprocess"], postprocess=settings["postprocess"],
        thresholds=thresholds, weights=tuple(sorted(f["sha256"] for f in files if f["role"] == "weights")),
    )

    from lensvault.catalog.registry_schema import model_files, model_versions
    from lensvault.catalog.runs_schema import model_reservations
    from lensvault.registry._locks import lock_name
    from lensvault.registry.notes import dataset_changelog, metric_deltas, render_notes

    import sqlalchemy as sa

    with vault.store.committing() as check_stored, vault.catalog.begin() as conn:
        lock_name(conn, "model", name)
        rows = conn.execute(sa.select(model_versions).where(model_versions.c.name == name)).all()
        existing = {SemVer.parse(r.version): r for r in rows}
        version, base = _choose_version(name, req, run, existing)
        decision = prev_bundle = None
        if base is not None:
            prev_bundle = load_bundle(vault.store, base.bundle_oid)
            decision = required_bump(_facts_of(conn, prev_bundle), new)
        if decision is not None and not decision.reasons and not req.force:
            raise AlreadyExists(
                f"nothing changed since {name}@{base.version}: same weights, data, config, code and settings",
                where=f"{name}@{base.version}", fix="use that version (or --force to register a copy anyway)")
        if version is None:  # --bump auto after an existing version: the change decides
            version = SemVer.parse(base.version).bump(decision.required)
        reserved = conn.execute(sa.select(model_reservations).where(
            model_reservations.c.name == name, model_reservations.c.version == str(version))).first()
        if reserved is not None and reserved.run_id != run.run_id:
            raise AlreadyExists(f"{name}@{version} is reserved by run {reserved.run_id}", where=f"{name}@{version}",
                                fix="register that run's weights, or choose another version")

        forced_reason = None
        bump_kind = None
        if base is not None:
            bump_kind = SemVer.parse(base.version).bump_kind_to(version)
            if ORDER[bump_kind] < ORDER[decision.required]:
                msg = (f"{name}@{version} is a {bump_kind.upper()} step from {base.version}, but the change "
                       f"requires {decision.required.upper()}: {decision.explain()}")
                if not req.force:
                    raise VersionRuleError(msg, where=f"{name}@{base.version} → {version}",
                                           fix=f"use --version {SemVer.parse(base.version).bump(decision.required)} "
                                               "or --bump auto (or --force to record an under-stated version)",
                                           required=decision.required, reasons=decision.reasons)
                forced_reason = msg

        ref = f"{name}@{version}"
        manifest = {
            "format": BUNDLE_FORMAT,
            "name": name, "version": str(version), "run_id": run.run_id,
            "dataset": run.dataset, "config_id": run.config_id, "code_commit": run.code_commit,
            "architecture": architecture_of(run.config), "seeds": run.seeds,
            "files": sorted(({"name": f["name"], "role": f["role"], "sha256": f["sha256"], "size": f["size"]}
                             for f in files), key=lambda f: f["name"]),
            "thresholds": thresholds, "preprocess": settings["preprocess"], "postprocess": settings["postprocess"],
            "label_map": label_map, "label_map_source": label_map_source, "metrics": metrics,
            "caveats": list(req.caveats), "weights_unverified": unverified,
            "previous_version": base.version if base is not None else None,
            "previous_dataset": prev_bundle.get("dataset") if prev_bundle else None,
            "previous_config_id": prev_bundle.get("config_id") if prev_bundle else None,
            "bump": bump_kind, "bump_decision": decision.to_dict() if decision else None,
            "forced": forced_reason is not None, "forced_reason": forced_reason, "dirty": not run.clean,
            "dataset_changelog": dataset_changelog(conn, prev_bundle.get("dataset") if prev_bundle else None, run.dataset)
            if prev_bundle else [],
            "metric_deltas": metric_deltas(_previous_metrics(conn, base, prev_bundle), metrics),
            "created_at": utcnow(), "created_by": vault.actor,
        }
        notes = render_notes(manifest)
        manifest["release_notes"] = notes
        extra = [("metrics.json", "metrics", _canonical(metrics)), ("RELEASE_NOTES.md", "notes", notes.encode())]
        for fname, role, data in extra:
            manifest["files"].append({"name": fname, "role": role, "sha256": vault.store.put_bytes(data), "size": len(data)})
        manifest["files"].sort(key=lambda f: f["name"])
        bundle_oid = vault.store.put_bytes(_canonical(manifest))
        check_stored([bundle_oid, *(f["sha256"] for f in manifest["files"])])

        row = dict(
            name=name, version=str(version), major=version.major, minor=version.minor, patch=version.patch,
            prerelease=version.prerelease, run_id=run.run_id, bundle_oid=bundle_oid, dataset=run.dataset,
            config_id=run.config_id, code_commit=run.code_commit, metrics=json.dumps(metrics, sort_keys=True),
            release_notes=notes, bump=bump_kind, forced=forced_reason is not None, dirty=not run.clean,
            created_at=manifest["created_at"], created_by=manifest["created_by"],
        )
        file_rows = [{"name": name, "version": str(version), "file": f["name"], "role": f["role"],
                      "sha256": f["sha256"], "size": f["size"]} for f in manifest["files"]]
        try:
            conn.execute(model_versions.insert().values(**row))
        except sa.exc.IntegrityError as e:
            raise AlreadyExists(f"{ref} already exists", where=ref, fix="model versions are write-once; choose another version") from e
        conn.execute(model_files.insert(), file_rows)
        kept = [bundle_oid, *(f["sha256"] for f in manifest["files"])]
        vault.catalog.add_object_refs(conn, "model", ref, kept)
        vault.catalog.append_event(conn, "model.register", "model", ref, after={
            "run_id": run.run_id, "bundle_oid": bundle_oid, "dataset": run.dataset, "config_id": run.config_id,
            "code_commit": run.code_commit, "bump": bump_kind, "forced": forced_reason is not None,
            "dirty": not run.clean, "previous_version": manifest["previous_version"]})
        ledger.record(vault, conn, "model.version", {"row": row, "files": file_rows}, objects=kept,
                      ref=f"models/{name}/{version}")
    from lensvault.registry.query import model_evaluations

    with vault.catalog.read() as conn:
        row = conn.execute(sa.select(model_versions).where(model_versions.c.name == name,
                                                           model_versions.c.version == str(version))).first()
        evals = model_evaluations(conn, [row])[(row.name, row.version)]
    return ModelVersion.from_row(row, vault.store, evaluations=evals)


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


def _check_run(run: RunInfo, allow_dirty: bool) -> None:
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


def _verify_weights(run: RunInfo, path: Path, oid: str) -> bool:
    """True if the run recorded these bytes; IntegrityError if it recorded this path with other bytes."""
    if any(sha == oid for sha, _ in run.artifacts.values()):
        return True
    posix = path.absolute().as_posix()
    matches = [a for a in run.artifacts if posix == a or posix.endswith("/" + a.lstrip("./"))]
    if matches:
        art = max(matches, key=len)
        raise IntegrityError(
            f"weights {path.name} changed after run {run.run_id} recorded them "
            f"(run: {run.artifacts[art][0][:12]}…, file now: {oid[:12]}…)",
            where=str(path),
            fix="register the file the run produced (restore it), or re-run training",
            expected=run.artifacts[art][0], actual=oid,
        )
    return False


def _dataset_label_map(vault, run: RunInfo) -> dict | None:
    if not run.dataset:
        return None
    cm = vault.dataset(run.dataset).class_map()
    if cm is None:
        return None
    return {"classes": [{"id": int(i), "name": str(n)} for i, n in zip(cm.ids, cm.names)]}


def _choose_version(name, req: RegisterRequest, run: RunInfo, existing: dict):
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
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import configs

    config = None
    if bundle.get("config_id"):
        row = conn.execute(sa.select(configs.c.content).where(configs.c.config_id == bundle["config_id"])).first()
        config = json.loads(row.content) if row else None
    return Facts(
        dataset=bundle.get("dataset"), config_id=bundle.get("config_id"), config=config,
        code_commit=bundle.get("code_commit"), label_map=bundle["label_map"], preprocess=bundle.get("preprocess"),
        postprocess=bundle.get("postprocess"), thresholds=bundle.get("thresholds") or {},
        weights=tuple(sorted(f["sha256"] for f in bundle["files"] if f["role"] == "weights")),
    )
