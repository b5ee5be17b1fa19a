"""The facts about a run that registering its model needs: status, code, data, config and
artifacts (its metrics: lensvault.runs.metric_sources). Read only: runs are written by
``lensvault run`` (lensvault.runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lensvault.errors import NotFound

__all__ = ["RunFacts", "load_run_facts"]


@dataclass(frozen=True)
class RunFacts:
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


def load_run_facts(conn, run_id: str) -> RunFacts:
    from lensvault.catalog.repos import ConfigRepo, RunRepo

    runs = RunRepo(conn)
    row = runs.get(run_id)
    if row is None:
        raise NotFound(f"no run {run_id!r}", where=run_id, fix="see `lensvault runs list` for the run ids")
    config = None
    if row.config_id:
        content = ConfigRepo(conn).content(row.config_id)
        if content is not None:
            config = json.loads(content)
    arts = {a.path: (a.sha256, int(a.size)) for a in runs.artifacts(run_id)}
    return RunFacts(
        run_id=row.run_id, status=row.status, clean=bool(row.clean), code_commit=row.code_commit,
        dataset=row.dataset, config_id=row.config_id, config=config,
        seeds=json.loads(row.seeds) if row.seeds else None,
        model_name=row.model_name, model_version=row.model_version, artifacts=arts,
    )
