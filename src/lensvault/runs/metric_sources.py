"""Where a metric comes from: an evaluation (eval id, dataset@version, split) or the run's own log.

Every metric LensVault shows — ``eval``, ``model show``, release notes, ``why`` — carries its
source, and numbers from different sources are never merged under one name: what a training
script writes to ``metrics.json`` (on whatever data it chose) and ``lensvault eval`` on a
recorded split of a dataset version are different facts, even when both are called "AP50".

A *group* holds the metrics of one source::

    {"source": MetricSource.to_dict(), "overall": {key: value},
     "per_class": {class: {key: value}}, "per_slice": {slice: {key: value}}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = [
    "EVALUATION",
    "RUN",
    "UNRECORDED",
    "MetricSource",
    "comparable",
    "evaluation_group",
    "evaluation_groups",
    "groups_of",
    "logged_group",
    "run_groups",
]

EVALUATION, RUN, UNRECORDED = "evaluation", "run", "unrecorded"
_PARTS = ("overall", "per_class", "per_slice")


@dataclass(frozen=True)
class MetricSource:
    """``kind`` is "evaluation" (``eval_id``, ``dataset``, ``split``; ``run_id``/``model`` it is
    attached to, both None for an ad-hoc evaluation), "run" (logged by ``run_id``, which trained
    on ``dataset``) or "unrecorded" (a model registered before sources were recorded)."""

    kind: str
    eval_id: str | None = None
    dataset: str | None = None
    split: str | None = None
    run_id: str | None = None
    model: str | None = None

    @property
    def label(self) -> str:
        if self.kind == EVALUATION:
            return f"eval {self.eval_id} on {self.dataset} split {self.split or 'all'}"
        if self.kind == RUN:
            return f"logged by the run {self.run_id}" + (f" (trained on {self.dataset})" if self.dataset else "")
        return ("source not recorded (registered before LensVault recorded metric sources: "
                "values logged by the run and evaluations are merged)")

    def same_data(self, other: MetricSource) -> bool:
        """True when both were measured on the same data, as far as the records say."""
        if self.kind != other.kind or self.kind == UNRECORDED:
            return False
        if self.kind == EVALUATION:
            return (self.dataset, self.split) == (other.dataset, other.split)
        return self.dataset is not None and self.dataset == other.dataset

    def to_dict(self) -> dict:
        return {"kind": self.kind, "label": self.label, "eval_id": self.eval_id, "dataset": self.dataset,
                "split": self.split, "run_id": self.run_id, "model": self.model}

    @classmethod
    def from_dict(cls, d: dict) -> MetricSource:
        return cls(kind=d["kind"], eval_id=d.get("eval_id"), dataset=d.get("dataset"), split=d.get("split"),
                   run_id=d.get("run_id"), model=d.get("model"))


def _group(source: MetricSource, metrics: dict) -> dict:
    group = {"source": source.to_dict(), **{p: dict(metrics.get(p) or {}) for p in _PARTS}}
    if metrics.get("task"):  # evaluations of another task than detection (evaluations.tasks)
        group["task"] = metrics["task"]
    return group


def evaluation_group(row) -> dict:
    """The group of one ``evaluations`` row."""
    model = f"{row.model_name}@{row.model_version}" if row.model_name else None
    src = MetricSource(EVALUATION, eval_id=row.eval_id, dataset=row.dataset, split=row.split,
                       run_id=row.run_id, model=model)
    return _group(src, json.loads(row.metrics))


def evaluation_groups(conn, *, run_id: str | None = None, model: tuple[str, str] | None = None) -> list[dict]:
    """Evaluations attached to the run ``run_id`` or to the model version ``(name, version)``, oldest first."""
    from lensvault.catalog.repos.evaluations import EvaluationRepo

    return [evaluation_group(r) for r in EvaluationRepo(conn).of(run_id=run_id, model=model)]


def logged_group(conn, run_id: str) -> dict | None:
    """What the run logged itself (``metrics.json``, ``log_metrics``), or None if nothing.

    A metric logged at several steps counts at its last step (then its last write): the final
    value is the one the weights were saved with.
    """
    from lensvault.catalog.repos.runs import RunRepo

    runs = RunRepo(conn)
    best: dict[tuple, tuple] = {}
    for r in runs.metric_points(run_id):
        key = (r.key, r.class_name, r.slice)
        rank = (r.step if r.step is not None else -1, r.id)
        if key not in best or rank >= best[key][0]:
            best[key] = (rank, r.value)
    if not best:
        return None
    out: dict[str, dict] = {p: {} for p in _PARTS}
    for (key, cls, sl), (_, value) in sorted(best.items(), key=lambda kv: tuple(x or "" for x in kv[0])):
        if cls is not None:
            out["per_class"].setdefault(cls, {})[key] = value
        elif sl is not None:
            out["per_slice"].setdefault(sl, {})[key] = value
        else:
            out["overall"][key] = value
    run = runs.get(run_id)
    dataset = run.dataset if run is not None else None
    return _group(MetricSource(RUN, run_id=run_id, dataset=dataset), out)


def run_groups(conn, run_id: str) -> list[dict]:
    """Every metric group of a run: its evaluations (oldest first), then what it logged."""
    logged = logged_group(conn, run_id)
    return evaluation_groups(conn, run_id=run_id) + ([logged] if logged else [])


def groups_of(metrics) -> list[dict]:
    """A model bundle's ``metrics`` as groups: a list as recorded, or — for bundles written
    before sources were recorded — the one merged dict as a group whose source is unrecorded."""
    if isinstance(metrics, list):
        return metrics
    if not metrics or not any((metrics or {}).get(p) for p in _PARTS):
        return []
    return [_group(MetricSource(UNRECORDED), metrics)]


def comparable(group: dict, candidates: list[dict]) -> tuple[dict, bool] | None:
    """The candidate to compare ``group`` with, and whether it was measured on the same data.

    An evaluation pairs with the latest evaluation on the same dataset version and split,
    else on the same dataset name and split (a different version: not the same data); what a
    run logged pairs with what the other run logged. Merged values of unrecorded sources
    pair with nothing.
    """
    src = MetricSource.from_dict(group["source"])
    if src.kind == UNRECORDED:
        return None
    same_kind = [c for c in candidates if c["source"]["kind"] == src.kind]
    for c in reversed(same_kind):
        if src.same_data(MetricSource.from_dict(c["source"])):
            return c, True
    if src.kind == EVALUATION:
        name = (src.dataset or "").split("@")[0]
        for c in reversed(same_kind):
            if (c["source"]["dataset"] or "").split("@")[0] == name and c["source"]["split"] == src.split:
                return c, False
        return None
    return (same_kind[-1], False) if same_kind else None
