"""``lensvault why A B``: what changed between two models (or runs), ordered by how
likely each change explains the metric change.

Five factors are compared — code (git), data (the annotation-level diff),
config (key-level), environment (packages) and metrics (overall, per class, per
slice). The ranking is a transparent heuristic, printed with its reasons: a
factor that is the only change scores highest; evidence that lines up with where
the metrics moved (a slice such as ``time_of_day=night`` and config keys about
brightness; classes whose boxes were fixed and whose AP moved) raises a score.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from lensvault.errors import NotFound

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["WhyReport", "why"]

PROTECTED_ALIASES = ("production", "prod")
# A metric counts as regressed when it drops by more than this (absolute).
REGRESSION = 0.005
PRIMARY = ("AP50", "AP", "mIoU", "accuracy", "IoU", "F1")  # boxes, masks, poses; semantic; classes
# Changed boxes listed as examples in ``why --json`` (per kind of change); counts cover all.
EXAMPLES = 10
# Config keys that are not hyperparameters: changing them should not explain much.
_NOT_HYPER = re.compile(r"(^|\.)(notes?|description|name|output|log\w*|run_name)$")


@dataclass
class WhyReport:
    a: dict
    b: dict
    same_name: bool
    code: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    explanations: list[dict] = field(default_factory=list)
    regressed: bool = False
    protected_alias: str | None = None
    rollback_command: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _subject(vault: Vault, conn, ref: str) -> dict:
    """A model version/alias or a run id → the facts why needs."""
    from lensvault.catalog.repos import AliasRepo, ConfigRepo, RunRepo
    from lensvault.runs.resolve import find_run_id

    runs = RunRepo(conn)
    run_id = find_run_id(conn, ref)  # an id, a unique prefix, or latest
    run = runs.get(run_id) if run_id else None
    model = None
    if run is None:
        from lensvault.catalog.model_refs import resolve_model

        model = resolve_model(conn, ref)
        run = runs.get(model.run_id)
        if run is None:
            raise NotFound(f"the run {model.run_id} of {ref} is not in the catalog", where=ref,
                           fix="the catalog is incomplete; run `lensvault verify`")
    cfg = None
    if run.config_id:
        cfg = ConfigRepo(conn).get(run.config_id)
    aliases = []
    if model is not None:
        aliases = [a.alias for a in AliasRepo(conn).pointing_at(model.name, model.version)]
    return {
        "ref": f"{model.name}@{model.version}" if model is not None else run.run_id,
        "model": model.name if model is not None else None,
        "version": model.version if model is not None else None,
        "run_id": run.run_id,
        "code_commit": run.code_commit,
        "clean": bool(run.clean),
        "repo_root": run.repo_root,
        "dataset": run.dataset,
        "config_id": run.config_id,
        "config": json.loads(cfg.content) if cfg is not None else None,
        "environment_oid": run.environment_oid,
        "aliases": aliases,
    }


def why(vault: Vault, a_ref: str, b_ref: str, *, allow_different_data: bool = False) -> WhyReport:
    """``allow_different_data``: compare metrics even when no evaluations (or logged metrics) of
    A and B share a dataset version and split; the report then labels them as different data."""
    with vault.catalog.query() as conn:
        a = _subject(vault, conn, a_ref)
        b = _subject(vault, conn, b_ref)
        metrics = _metrics(conn, a, b, allow_different_data=allow_different_data)
    rep = WhyReport(
        a={k: v for k, v in a.items() if k != "config"},
        b={k: v for k, v in b.items() if k != "config"},
        same_name=(a["model"] == b["model"]),
        metrics=metrics,
    )
    if metrics["same_data"] is False:
        rep.notes.append("the metrics compare different data (--allow-different-data): a difference may come "
                         "from the data rather than from the model")
    if a["model"] and b["model"] and a["model"] != b["model"]:
        rep.notes.append(f"comparing two different models ({a['model']} and {b['model']}): allowed, but "
                         "differences in architecture and purpose may dominate")
    rep.code = _code(a, b, manifests=vault.manifests_dir)
    rep.data = _data(vault, a, b)
    rep.config = _config(a, b)
    rep.environment = _environment(vault, a, b)
    rep.explanations = _rank(rep)
    rep.regressed = _regressed(metrics)
    protected = [x for x in b["aliases"] if x in PROTECTED_ALIASES]
    if protected:
        rep.protected_alias = protected[0]
        if rep.regressed:
            rep.rollback_command = f"lensvault model rollback {b['model']} {protected[0]}"
    return rep


# -- factors ----------------------------------------------------------------------------


def _code(a: dict, b: dict, *, manifests=None) -> dict:
    """Commits and files between the two runs' commits.

    ``code_changed`` is False when the only files that differ are dataset manifests (committing
    the manifest of a new dataset version is part of changing the data, not the code).
    """
    import os

    from lensvault import gitinfo

    out = {"a": a["code_commit"], "b": b["code_commit"], "changed": a["code_commit"] != b["code_commit"],
           "dirty": [x["ref"] for x in (a, b) if not x["clean"]], "commits": [], "files": []}
    out["code_changed"] = out["changed"]
    if not out["changed"] or not (a["code_commit"] and b["code_commit"]):
        return out
    repo = b["repo_root"] or a["repo_root"]
    try:
        out["commits"] = gitinfo.commits_between(a["code_commit"], b["code_commit"], repo=repo)
        out["files"] = gitinfo.files_changed(a["code_commit"], b["code_commit"], repo=repo)
    except Exception as e:  # noqa: BLE001 - the repo moved or the commit is gone: report, don't fail
        out["error"] = f"git history unavailable: {e}"
        return out
    prefix = None
    if manifests is not None and repo:
        rel = os.path.relpath(os.path.abspath(manifests), os.path.abspath(repo)).replace(os.sep, "/")
        prefix = None if rel.startswith("..") else rel.rstrip("/") + "/"
    code_files = [f for f in out["files"] if not (prefix and f["path"].startswith(prefix))]
    out["code_changed"] = bool(code_files)
    if out["files"] and not code_files:
        out["note"] = "only dataset manifests changed between the commits: counted as the data change"
    return out


def _data(vault: Vault, a: dict, b: dict) -> dict:
    out = {"a": a["dataset"], "b": b["dataset"], "changed": a["dataset"] != b["dataset"]}
    if not out["changed"] or not (a["dataset"] and b["dataset"]):
        return out
    try:
        da, db = vault.dataset(a["dataset"]), vault.dataset(b["dataset"])
    except NotFound as e:
        out["error"] = str(e)
        return out
    if da.is_vision and db.is_vision:
        d = da.diff_annotations(db)
        dd = d.to_dict()
        # Counts and a few examples, not every changed box: a report, not a dump.
        ann = dd.get("annotations") or {}
        examples = {c: ann[c][:EXAMPLES] for c in ("moved", "relabeled", "added", "removed", "attributes_changed")
                    if ann.get(c)}
        im = dd.get("images") or {}
        out.update({"summary": d.summary(), "suggested_bump": d.suggested_bump,
                    "annotations": {"counts": ann.get("counts", {}), "kinds": ann.get("kinds"), "examples": examples},
                    "classes": dd.get("classes"),
                    "split_moves": {k: v for k, v in (dd.get("split_moves") or {}).items() if k != "items"},
                    "per_class": dd.get("per_class"),
                    "images": {k: im.get(k) for k in ("count_a", "count_b", "counts", "added_by_split",
                                                      "removed_by_split")}})
    else:
        fd = da.diff(db)
        out.update({"summary": fd.summary(), "files": {"added": len(fd.added), "removed": len(fd.removed),
                                                       "modified": len(fd.modified)}})
    return out


def _config(a: dict, b: dict) -> dict:
    from lensvault.configs.values import diff_configs, flatten

    out = {"a": a["config_id"], "b": b["config_id"], "changed": False, "added": {}, "removed": {}, "changed_keys": {}}
    if a["config"] is None or b["config"] is None:
        out["changed"] = a["config_id"] != b["config_id"]
        return out
    d = diff_configs(flatten(a["config"]), flatten(b["config"]))
    out.update({"added": d["added"], "removed": d["removed"],
                "changed_keys": {k: {"a": v[0], "b": v[1]} for k, v in d["changed"].items()}})
    out["changed"] = bool(d["added"] or d["removed"] or d["changed"])
    return out


def _environment(vault: Vault, a: dict, b: dict) -> dict:
    from lensvault.environment import diff_environments

    if not (a["environment_oid"] and b["environment_oid"]):
        return {"changed": False, "note": "environment not recorded for both"}
    if a["environment_oid"] == b["environment_oid"]:
        return {"changed": False}
    ea = json.loads(vault.store.read_bytes(a["environment_oid"]))
    eb = json.loads(vault.store.read_bytes(b["environment_oid"]))
    d = diff_environments(ea, eb)
    pk = d.get("packages", {})
    changed = bool(pk.get("added") or pk.get("removed") or pk.get("changed")) or not d.get("same", True)
    return {"changed": changed, **d}


# -- metrics ------------------------------------------------------------------------------


def _groups(conn, subj: dict) -> tuple[list[dict], dict | None]:
    """A subject's evaluations (of its run, and of the model version) and what its run logged."""
    from lensvault.runs.metric_sources import evaluation_groups, logged_group

    model = (subj["model"], subj["version"]) if subj["model"] else None
    return evaluation_groups(conn, run_id=subj["run_id"], model=model), logged_group(conn, subj["run_id"])


def _metrics(conn, a: dict, b: dict, *, allow_different_data: bool = False) -> dict:
    """Metrics of A and B from comparable sources, each side's source named.

    Like with like: the latest evaluations of both on the same dataset version and split
    (B's data first: what B is judged on); else what both runs logged, when they trained on the
    same dataset version. Anything else compares different data: refused unless
    ``allow_different_data``, and then labelled so.
    """
    from lensvault.errors import UsageError
    from lensvault.runs.metric_sources import MetricSource

    (ea, la), (eb, lb) = _groups(conn, a), _groups(conn, b)
    pair = None
    for gb in reversed(eb):
        hits = [ga for ga in ea if MetricSource.from_dict(ga["source"]).same_data(MetricSource.from_dict(gb["source"]))]
        if hits:
            pair = (hits[-1], gb)
            break
    if pair is None and la and lb and MetricSource.from_dict(la["source"]).same_data(MetricSource.from_dict(lb["source"])):
        pair = (la, lb)
    same = pair is not None
    if pair is None:
        side_a, side_b = (ea[-1] if ea else la), (eb[-1] if eb else lb)
        if side_a is None or side_b is None:
            missing = " and ".join(x["ref"] for x, side in ((a, side_a), (b, side_b)) if side is None)
            return {"source": f"no metrics recorded for {missing}", "same_data": None, "a_source": _src(side_a),
                    "b_source": _src(side_b), **_deltas({}, {})}
        if not allow_different_data:
            raise UsageError(
                f"{a['ref']} and {b['ref']} have no metrics on the same data: {a['ref']} has "
                f"{_have(ea, la)}; {b['ref']} has {_have(eb, lb)}",
                where=f"{a['ref']} → {b['ref']}",
                fix=f"evaluate both on the same dataset version and split, e.g. `{_eval_hint(a, side_b)}`, "
                    "or pass --allow-different-data to compare them anyway (the report labels them)")
        pair = (side_a, side_b)
    ga, gb = pair
    if same:
        sa_ = ga["source"]
        what = (f"evaluations on {sa_['dataset']} split {sa_['split'] or 'all'}" if sa_["kind"] == "evaluation"
                else f"metrics logged by the runs (both trained on {sa_['dataset']})")
    else:
        what = "different data (--allow-different-data)"
    return {"source": what, "same_data": same, "a_source": ga["source"], "b_source": gb["source"],
            **_deltas(ga, gb)}


def _src(group: dict | None) -> dict | None:
    return group["source"] if group else None


def _have(evals: list[dict], logged: dict | None) -> str:
    parts = [g["source"]["label"] for g in evals[-3:]]
    if len(evals) > 3:
        parts.insert(0, f"… {len(evals) - 3} older evaluation(s)")
    if logged:
        parts.append(logged["source"]["label"])
    return ", ".join(parts) or "no metrics"


def _eval_hint(a: dict, b_side: dict) -> str:
    src = b_side["source"]
    data = src["dataset"] if src["kind"] == "evaluation" else (src["dataset"] or "NAME@VER")
    split = (src["split"] or "all") if src["kind"] == "evaluation" else "test"
    target = f"--model {a['ref']}" if a["model"] else f"--run {a['run_id']}"
    return f"lensvault eval {target} --dataset {data} --split {split} --predictions PREDICTIONS.json"


def _num(x):
    return x if isinstance(x, (int, float)) and x == x else None


def _pair(da: dict, db: dict) -> dict:
    out = {}
    for k in sorted(set(da) | set(db)):
        va, vb = _num(da.get(k)), _num(db.get(k))
        if va is None and vb is None:
            continue
        out[k] = {"a": va, "b": vb, "delta": (vb - va) if (va is not None and vb is not None) else None}
    return out


def _deltas(ma: dict, mb: dict) -> dict:
    res = {"overall": _pair(ma.get("overall", {}), mb.get("overall", {})), "per_class": {}, "per_slice": {}}
    for part in ("per_class", "per_slice"):
        pa, pb = ma.get(part, {}) or {}, mb.get(part, {}) or {}
        for k in sorted(set(pa) | set(pb)):
            res[part][k] = _pair(pa.get(k) or {}, pb.get(k) or {})
    return res


def _primary_delta(d: dict) -> tuple[str, float] | None:
    for key in PRIMARY:
        if key in d and d[key]["delta"] is not None:
            return key, d[key]["delta"]
    return None


def _regressed(metrics: dict) -> bool:
    p = _primary_delta(metrics.get("overall", {}))
    if p and p[1] < -REGRESSION:
        return True
    for d in metrics.get("per_slice", {}).values():
        p = _primary_delta(d)
        if p and p[1] < -4 * REGRESSION:
            return True
    return False


# -- ranking ----------------------------------------------------------------------------


def _rank(rep: WhyReport) -> list[dict]:
    """Every factor that changed, scored by how likely it explains the metric change, likeliest
    first; the only factor that changed scores 1.0; nothing changed: the factor "none"."""
    changed = {
        "config": rep.config.get("changed", False),
        "data": rep.data.get("changed", False),
        "code": rep.code.get("code_changed", rep.code.get("changed", False)) or bool(rep.code.get("dirty")),
        "environment": rep.environment.get("changed", False),
    }
    # In this order, so equal scores list config before data, code and environment.
    out = [explain(rep) for factor, explain in (("config", _explain_config), ("data", _explain_data),
                                                ("code", _explain_code), ("environment", _explain_environment))
           if changed[factor]]
    if sum(changed.values()) == 1 and out:
        out[0]["score"] = 1.0
        out[0]["reasons"].insert(0, "the only thing that changed")
    if not out:
        out.append({"factor": "none", "score": 0.0,
                    "reasons": ["code, data, config and environment are identical: differences are noise or non-determinism"]})
    for e in out:
        e["score"] = round(min(e["score"], 1.0), 2)
    return sorted(out, key=lambda e: -e["score"])


def _explain_config(rep: WhyReport) -> dict:
    """More changed hyperparameters score higher; keys that plausibly act on the slice where the
    metrics dropped most score higher still."""
    cfg = rep.config
    keys = {**cfg["changed_keys"], **{k: {"a": None, "b": v} for k, v in cfg["added"].items()},
            **{k: {"a": v, "b": None} for k, v in cfg["removed"].items()}}
    hyper = [k for k in keys if not _NOT_HYPER.search(k)]
    score = 0.45 + min(0.3, 0.1 * len(hyper))
    reasons = [f"{len(hyper)} hyperparameter(s) changed: " + _listed([f"{k} {keys[k]['a']!r}→{keys[k]['b']!r}" for k in hyper], 6)]
    slice_reason = _acting_on_worst_slice(hyper, rep.metrics)
    if slice_reason:
        score += 0.3
        reasons.append(slice_reason)
    return {"factor": "config", "score": score, "reasons": reasons}


def _acting_on_worst_slice(hyper: list[str], metrics: dict) -> str | None:
    """A reason when the drop concentrates on one slice (2 points below overall) and a changed
    key's name shares a word with that slice or is about brightness, augmentation and the like."""
    slices = {k: _primary_delta(v) for k, v in metrics.get("per_slice", {}).items()}
    worst_slice = min(((k, v[1]) for k, v in slices.items() if v), key=lambda kv: kv[1], default=None)
    overall = _primary_delta(metrics.get("overall", {}))
    if not (worst_slice and overall and worst_slice[1] < overall[1] - 0.02):
        return None
    tokens = set(re.split(r"[=_\-.]", worst_slice[0].lower())) | {"bright", "brightness", "contrast", "gamma",
                                                                  "exposure", "threshold", "augment", "preprocess"}
    related = [k for k in hyper if any(t and t in k.lower() for t in tokens)]
    if not related:
        return None
    return (f"the drop concentrates on slice {worst_slice[0]} ({worst_slice[1]:+.3f}) and "
            f"{', '.join(related)} plausibly acts on it")


def _explain_data(rep: WhyReport) -> dict:
    """A diff that asks for a minor or major bump scores higher; boxes changed in classes whose
    AP moved by more than 2 points score higher still."""
    ann = rep.data.get("annotations") or {}
    counts = ann.get("counts") or {}
    changed_boxes = sum(counts.get(k, 0) for k in ("moved", "relabeled", "added", "removed", "attributes_changed"))
    score = 0.45 + (0.15 if rep.data.get("suggested_bump") in ("minor", "major") else 0.0)
    reasons = [rep.data.get("summary") or f"dataset {rep.data['a']} → {rep.data['b']}"]
    moved_classes = [c for c, d in rep.metrics.get("per_class", {}).items() if (p := _primary_delta(d)) and abs(p[1]) > 0.02]
    pc = rep.data.get("per_class") or {}
    touched = [c for c in moved_classes if c in pc]
    if changed_boxes and touched:
        score += 0.2
        reasons.append(f"AP moved for classes whose labels changed: {_listed(touched)}")
    return {"factor": "data", "score": score, "reasons": reasons}


def _explain_code(rep: WhyReport) -> dict:
    """More changed Python files score higher; uncommitted code higher still (what ran is unknown)."""
    files = rep.code.get("files") or []
    src = [f["path"] for f in files if f["path"].endswith(".py")]
    score = 0.3 + min(0.2, 0.05 * len(src))
    reasons = [f"{len(rep.code.get('commits') or [])} commit(s), {len(files)} file(s) changed"
               + (f" ({_listed(src)})" if src else "")]
    if rep.code.get("dirty"):
        score += 0.1
        reasons.append(f"uncommitted code in {', '.join(rep.code['dirty'])}: what ran is not fully known")
    return {"factor": "code", "score": score, "reasons": reasons}


def _explain_environment(rep: WhyReport) -> dict:
    """Scores low (packages rarely explain a metric change), a little higher per package that differs."""
    pk = rep.environment.get("packages", {})
    n = len(pk.get("changed", {})) + len(pk.get("added", {})) + len(pk.get("removed", {}))
    return {"factor": "environment", "score": 0.15 + min(0.15, 0.03 * n),
            "reasons": [f"{n} package(s) differ" + (": " + _listed(list(pk.get("changed", {}))) if pk.get("changed") else "")]}


def _listed(items: list[str], n: int = 5) -> str:
    """The first ``n`` items, then how many more (a reason never drops names silently)."""
    return ", ".join(items[:n]) + (f" … and {len(items) - n} more" if len(items) > n else "")
