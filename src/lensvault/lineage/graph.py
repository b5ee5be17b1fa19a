"""Walk lineage up (what made this) or down (what depends on this) with targeted queries.

Nothing is loaded wholesale: each step asks the catalog for the neighbours of
the nodes it has, so a model's lineage costs a handful of indexed lookups
whatever the size of the catalog.

Node ids are ``kind:key`` — ``model:detector@1.1.0``, ``run:2026-…``,
``dataset:retail@1.1.0``, ``config:C-01``, ``commit:9f3a1c4…``, ``eval:E-…``,
``alias:detector@production``. Edges point from input to output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lensvault.errors import InvalidRef, NotFound

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["Graph", "lineage"]


@dataclass
class Graph:
    root: str
    direction: str
    nodes: dict[str, dict] = field(default_factory=dict)
    edges: list[dict] = field(default_factory=list)
    _seen: set = field(default_factory=set, repr=False)  # edge keys: a list scan per edge was O(E²)
    limit: int | None = None  # at most this many runs (and evaluations) listed below one node, newest first
    # What a limit left out: {"node", "edge" (its type), "type" (of the nodes left out), "shown", "total"}
    omitted: list[dict] = field(default_factory=list)

    def node(self, nid: str, kind: str, label: str, **attrs) -> str:
        if nid not in self.nodes:
            self.nodes[nid] = {"id": nid, "type": kind, "label": label, "attrs": attrs}
        return nid

    def edge(self, src: str, dst: str, kind: str) -> None:
        key = (src, dst, kind)
        if key not in self._seen:
            self._seen.add(key)
            self.edges.append({"from": src, "to": dst, "type": kind})

    def to_dict(self) -> dict:
        return {"root": self.root, "direction": self.direction, "nodes": list(self.nodes.values()), "edges": self.edges,
                "limit": self.limit, "omitted": self.omitted}

    def page(self, nid: str, edge: str, kind: str, shown: int, count) -> None:
        """Record that only the newest ``shown`` of the ``kind`` nodes below ``nid`` are listed, if a
        limit cut them (``count()`` asks how many there are only then)."""
        if self.limit is not None and shown >= self.limit:
            total = count()
            if total > shown:
                self.omitted.append({"node": nid, "edge": edge, "type": kind, "shown": shown, "total": total})


def _repos():
    """The repositories (imported on first use: SQLAlchemy stays off start-up)."""
    from lensvault.catalog import repos

    return repos


def lineage(vault: Vault, ref: str, *, direction: str = "auto", limit: int | None = None) -> Graph:
    """Lineage of a model version/alias, run id, dataset version or config id.

    ``limit``: list at most this many runs on a dataset version or config (and evaluations on a
    dataset version), newest first; ``Graph.omitted`` says how many more there are. None: all.
    """
    with vault.catalog.query() as conn:  # one read: what REF names, and the walk from it
        kind, key = _classify(conn, ref)
        if direction == "auto":
            direction = "down" if kind in ("dataset", "config") else "up"
        g = Graph(root="", direction=direction, limit=limit)
        root_node, walk_up, walk_down = _WALKS[kind]
        g.root = root_node(g, key)
        if direction in ("up", "both") and walk_up is not None:
            walk_up(conn, g, key)
        if direction in ("down", "both"):
            walk_down(conn, g, key)
    return g


def _classify(conn, ref: str):
    from lensvault.catalog.repos import ConfigRepo, DatasetRepo, ModelRepo, RunRepo
    from lensvault.runs.resolve import find_run_id

    run_id = find_run_id(conn, ref)  # an id, a unique prefix, or latest
    if run_id is not None:
        return "run", RunRepo(conn).one(run_id)
    cfg = ConfigRepo(conn).get(ref)
    if cfg is not None:
        return "config", cfg
    if "@" in ref or ref:
        name = ref.split("@", 1)[0]
        try:
            if ModelRepo(conn).exists(name):
                from lensvault.catalog.model_refs import resolve_model

                return "model", resolve_model(conn, ref)
            if DatasetRepo(conn).exists(name):
                from lensvault.datasets.versions import resolve

                return "dataset", resolve(conn, ref)
        except InvalidRef:
            pass
    raise NotFound(
        f"{ref!r} is not a model version, run id, dataset version or config id",
        where=ref,
        fix="try `lensvault model list`, `lensvault runs list`, `lensvault dataset list` or `lensvault config list`",
    )


# -- nodes ----------------------------------------------------------------------------------


def _config_node(g: Graph, cfg) -> str:
    return g.node(f"config:{cfg.config_id}", "config", cfg.config_id, path=cfg.repo_path, commit=cfg.commit)


def _model_node(g: Graph, m) -> str:
    return g.node(f"model:{m.name}@{m.version}", "model", f"{m.name}@{m.version}", run_id=m.run_id, created_at=m.created_at,
                  dirty=bool(m.dirty))


def _run_node(g: Graph, run) -> str:
    return g.node(f"run:{run.run_id}", "run", run.run_id, status=run.status, clean=bool(run.clean),
                  started_at=run.started_at, run_kind=run.kind)


def _dataset_node(g: Graph, v) -> str:
    return g.node(f"dataset:{v.ref}", "dataset", v.ref, snapshot_id=v.snapshot_id, files=v.files,
                  changelog=(v.changelog or {}).get("summary") if v.changelog else None, bump=v.bump)


def _eval_node(g: Graph, e) -> str:
    metrics = json.loads(e.metrics).get("overall", {}) if e.metrics else {}
    return g.node(f"eval:{e.eval_id}", "evaluation", f"{e.eval_id} ({e.dataset}:{e.split or 'all'})",
                  dataset=e.dataset, split=e.split, AP=metrics.get("AP"), AP50=metrics.get("AP50"))


# -- walks ----------------------------------------------------------------------------------


def _model_up(conn, g: Graph, m) -> None:
    mid = f"model:{m.name}@{m.version}"
    run = _repos().RunRepo(conn).get(m.run_id)
    if run is not None:
        rid = _run_node(g, run)
        g.edge(rid, mid, "produced")
        _run_up(conn, g, run)
    _model_evals(conn, g, m)
    _aliases_of(conn, g, m)


def _model_evals(conn, g: Graph, m) -> None:
    """Evaluations of the model, and of its run's predictions (before it was registered)."""
    for e in _repos().EvaluationRepo(conn).of_model_or_its_run(m.name, m.version, m.run_id):
        g.edge(f"model:{m.name}@{m.version}", _eval_node(g, e), "evaluated")


def _aliases_of(conn, g: Graph, m) -> None:
    for a in _repos().AliasRepo(conn).pointing_at(m.name, m.version):
        aid = g.node(f"alias:{a.name}@{a.alias}", "alias", f"{a.name}@{a.alias}", since=a.updated_at)
        g.edge(f"model:{m.name}@{m.version}", aid, "alias")


def _aliases_of_many(conn, g: Graph, models) -> None:
    """Aliases of many model versions in one query (one per model cost 1 ms each)."""
    wanted = {(m.name, m.version) for m in models}
    if not wanted:
        return
    for a in _repos().AliasRepo(conn).of_models({n for n, _ in wanted}):
        if (a.name, a.version) in wanted:
            aid = g.node(f"alias:{a.name}@{a.alias}", "alias", f"{a.name}@{a.alias}", since=a.updated_at)
            g.edge(f"model:{a.name}@{a.version}", aid, "alias")


def _run_up(conn, g: Graph, run) -> None:
    from lensvault.datasets.versions import resolve

    rid = f"run:{run.run_id}"
    if run.code_commit:
        cid = g.node(f"commit:{run.code_commit}", "commit", run.code_commit[:10], sha=run.code_commit, clean=bool(run.clean))
        g.edge(cid, rid, "code")
    if run.config_id:
        cfg = _repos().ConfigRepo(conn).get(run.config_id)
        cfid = g.node(f"config:{run.config_id}", "config", run.config_id,
                      path=cfg.repo_path if cfg else None, sha256=cfg.sha256 if cfg else None)
        g.edge(cfid, rid, "config")
    if run.dataset:
        try:
            v = resolve(conn, run.dataset)
        except NotFound:
            g.edge(g.node(f"dataset:{run.dataset}", "dataset", run.dataset, missing=True), rid, "data")
        else:
            g.edge(_dataset_node(g, v), rid, "data")
            _dataset_chain(conn, g, v)


_SHORT_CHAIN = 8  # parents looked up one by one; past that, every version of the name in one query


def _dataset_chain(conn, g: Graph, v) -> None:
    """The versions ``v`` derives from, parent by parent (a parent is a version of the same name).
    A 500-long chain cost 500 lookups (0.2 s at 10,000 versions); a long one now costs one query."""
    from lensvault.datasets.versions import DatasetVersion, resolve

    seen = set()
    by_ref = None
    while v.parent and v.parent not in seen:
        seen.add(v.parent)
        if by_ref is None and len(seen) > _SHORT_CHAIN:
            by_ref = {f"{r.name}@{r.version}": r for r in _repos().DatasetRepo(conn).of_name(v.name)}
        if by_ref is not None:
            row = by_ref.get(v.parent)
            if row is None:
                break
            p = DatasetVersion.from_row(row)
        else:
            try:
                p = resolve(conn, v.parent)
            except NotFound:
                break
        g.edge(_dataset_node(g, p), f"dataset:{v.ref}", "derived")
        v = p


def _run_down(conn, g: Graph, run) -> None:
    _runs_down(conn, g, [run])


def _runs_down(conn, g: Graph, runs) -> None:
    """Models the runs produced (and what depends on them); evaluations of runs without a model.

    Batched: a config used by thousands of runs costs a few queries, not a few per run.
    """
    repos = _repos()
    ids = [run.run_id for run in runs]
    models = repos.ModelRepo(conn).from_runs(ids)
    for m in models:
        g.edge(f"run:{m.run_id}", _model_node(g, m), "produced")
    _models_down(conn, g, models)
    # A run's evaluations hang under the model it produced (not twice); else under the run.
    bare = sorted(set(ids) - {m.run_id for m in models})
    for e in repos.EvaluationRepo(conn).of_runs(bare):
        g.edge(f"run:{e.run_id}", _eval_node(g, e), "evaluated")


def _model_down(conn, g: Graph, m) -> None:
    _models_down(conn, g, [m])


def _models_down(conn, g: Graph, models) -> None:
    """Evaluations, aliases and reproductions of many model versions, in a few queries."""
    if not models:
        return
    repos = _repos()
    by_run: dict[str, list[str]] = {}
    refs = {}
    for m in models:
        ref = f"{m.name}@{m.version}"
        refs[(m.name, m.version)] = f"model:{ref}"
        by_run.setdefault(m.run_id, []).append(f"model:{ref}")
    evaluations = repos.EvaluationRepo(conn)
    rows = evaluations.of_model_names(sorted({n for n, _ in refs}))  # model names: few
    rows += evaluations.of_runs(sorted(by_run))
    for e in rows:
        targets = by_run.get(e.run_id, [])
        if (e.model_name, e.model_version) in refs:
            targets = [refs[(e.model_name, e.model_version)]]
        for mid in targets:
            g.edge(mid, _eval_node(g, e), "evaluated")
    _aliases_of_many(conn, g, models)
    for rr in repos.RunRepo(conn).reproducing([x.split(":", 1)[1] for x in refs.values()]):
        g.edge(f"model:{rr.reproduces}", _run_node(g, rr), "reproduced_by")


def _dataset_down(conn, g: Graph, v) -> None:
    repos = _repos()
    did = f"dataset:{v.ref}"
    run_repo = repos.RunRepo(conn)
    runs = run_repo.using_dataset(v.ref, limit=g.limit)
    g.page(did, "data", "run", len(runs), lambda: run_repo.count_where(dataset=v.ref))
    by_run = {}
    for run in runs:
        by_run[run.run_id] = _run_node(g, run)
        g.edge(did, by_run[run.run_id], "data")
    if by_run:
        for models in repos.ModelRepo(conn).from_runs_by_batch(list(by_run)):
            for m in models:
                g.edge(by_run[m.run_id], _model_node(g, m), "produced")
            _aliases_of_many(conn, g, models)
    evaluations = repos.EvaluationRepo(conn)
    on_it = evaluations.on_dataset(v.ref, limit=g.limit)
    for e in on_it:
        g.edge(did, _eval_node(g, e), "evaluated_on")
    g.page(did, "evaluated_on", "evaluation", len(on_it), lambda: evaluations.count_on_dataset(v.ref))
    children = repos.DatasetRepo(conn).children(v.name, v.version)
    from lensvault.datasets.versions import DatasetVersion

    for ch in children:
        g.edge(did, _dataset_node(g, DatasetVersion.from_row(ch)), "derived")


def _config_down(conn, g: Graph, cfg) -> None:
    run_repo = _repos().RunRepo(conn)
    runs = run_repo.using_config(cfg.config_id, limit=g.limit)
    for run in runs:
        g.edge(f"config:{cfg.config_id}", _run_node(g, run), "config")
    g.page(f"config:{cfg.config_id}", "config", "run", len(runs), lambda: run_repo.count_where(config_id=cfg.config_id))
    _runs_down(conn, g, runs)


# kind -> (root node, walk up, walk down); a config has nothing upstream of it.
_WALKS = {
    "model": (_model_node, _model_up, _model_down),
    "run": (_run_node, _run_up, _run_down),
    "dataset": (_dataset_node, _dataset_chain, _dataset_down),
    "config": (_config_node, None, _config_down),
}
