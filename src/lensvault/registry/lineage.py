"""What the registry reads about a run: its row, config, artifacts and metrics.

The runs tables (``catalog/runs_schema.py``) are the contract with ``lensvault run``;
nothing here writes to them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lensvault.errors import NotFound

__all__ = ["RunInfo", "load_run", "run_metrics"]


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    clean: bool
    code_commit: str | None
    dataset: str | None
    config_id: str | None
    config: dict | None  # the parsed config values (configs.content), None without a config
    seeds: dict | None
    model_name: str | None
    model_version: str | None
    artifacts: dict[str, tuple[str, int]] = field(default_factory=dict)  # path -> (sha256, size)


def load_run(conn, run_id: str) -> RunInfo:
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import configs, run_artifacts, runs

    row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
    if row is None:
        raise NotFound(f"no run {run_id!r}", where=run_id, fix="see `lensvault run list` for the run ids")
    config = None
    if row.config_id:
        c = conn.execute(sa.select(configs.c.content).where(configs.c.config_id == row.config_id)).first()
        if c is not None:
            config = json.loads(c.content)
    arts = {
        a.path: (a.sha256, int(a.size))
        for a in conn.execute(sa.select(run_artifacts).where(run_artifacts.c.run_id == run_id))
    }
    return RunInfo(
        run_id=row.run_id, status=row.status, clean=bool(row.clean), code_commit=row.code_commit,
        dataset=row.dataset, config_id=row.config_id, config=config,
        seeds=json.loads(row.seeds) if row.seeds else None,
        model_name=row.model_name, model_version=row.model_version, artifacts=arts,
    )


def run_metrics(conn, run_id: str) -> dict:
    """``{"overall": {k: v}, "per_class": {cls: {k: v}}, "per_slice": {slice: {k: v}}}``.

    A metric logged at several steps counts at its last step (then its last write):
    the final value is the one the weights were saved with. Evaluations of the run
    fill in what the run did not log itself.
    """
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import evaluations, run_metrics as rm

    out: dict[str, dict] = {"overall": {}, "per_class": {}, "per_slice": {}}
    for ev in conn.execute(sa.select(evaluations.c.metrics).where(evaluations.c.run_id == run_id)
                           .order_by(evaluations.c.created_at)):
        m = json.loads(ev.metrics)
        out["overall"].update({k: v for k, v in (m.get("overall") or {}).items() if _number(v)})
        for part in ("per_class", "per_slice"):
            for name, values in (m.get(part) or {}).items():
                if isinstance(values, dict):
                    out[part].setdefault(str(name), {}).update({k: v for k, v in values.items() if _number(v)})
    best: dict[tuple, tuple] = {}
    for r in conn.execute(sa.select(rm).where(rm.c.run_id == run_id).order_by(rm.c.id)):
        key = (r.key, r.class_name, r.slice)
        rank = (r.step if r.step is not None else -1, r.id)
        if key not in best or rank >= best[key][0]:
            best[key] = (rank, r.value)
    for (key, cls, sl), (_, value) in sorted(best.items(), key=lambda kv: tuple(x or "" for x in kv[0])):
        if cls is not None:
            out["per_class"].setdefault(cls, {})[key] = value
        elif sl is not None:
            out["per_slice"].setdefault(sl, {})[key] = value
        else:
            out["overall"][key] = value
    return out


def _number(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
