"""What the registry reads about a run: its row, config and artifacts (its metrics: lensvault.runs.metric_sources).

The runs tables (``catalog/runs_schema.py``) are the contract with ``lensvault run``;
nothing here writes to them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lensvault.errors import NotFound

__all__ = ["RunInfo", "load_run"]


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
        raise NotFound(f"no run {run_id!r}", where=run_id, fix="see `lensvault runs list` for the run ids")
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
