"""Read side of the registry: one model version, or all of them, with their aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.registry.model import ModelVersion

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["get_model", "list_models", "model_evaluations"]


def _aliases(conn, name: str | None = None) -> dict[tuple[str, str], list[str]]:
    from lensvault.catalog.repos.aliases import AliasRepo

    out: dict[tuple[str, str], list[str]] = {}
    for a in AliasRepo(conn).of_model(name):
        out.setdefault((a.name, a.version), []).append(a.alias)
    return out


def model_evaluations(conn, rows) -> dict[tuple[str, str], list[dict]]:
    """(name, version) → the evaluations of that model version or of its run, oldest first."""
    from lensvault.catalog.repos.evaluations import EvaluationRepo
    from lensvault.runs.metric_sources import evaluation_group

    rows = list(rows)
    out: dict[tuple[str, str], list[dict]] = {(r.name, r.version): [] for r in rows}
    if not rows:
        return out
    by_run: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        by_run.setdefault(r.run_id, []).append((r.name, r.version))
    names = sorted({r.name for r in rows})
    repo = EvaluationRepo(conn)
    found = {}
    for ev in repo.of_model_names(names):
        found[ev.eval_id] = ev
    for ev in repo.of_runs(sorted(by_run)):
        found[ev.eval_id] = ev
    for ev in sorted(found.values(), key=lambda ev: (ev.created_at, ev.eval_id)):
        # An evaluation of a model version belongs to that version alone; one of a run, to the
        # versions registered from the run.
        if ev.model_name:
            owners = [(ev.model_name, ev.model_version)] if (ev.model_name, ev.model_version) in out else []
        else:
            owners = by_run.get(ev.run_id, [])
        for key in owners:
            out[key].append(evaluation_group(ev))
    return out


def get_model(vault: Vault, ref) -> ModelVersion:
    from lensvault.catalog.model_refs import resolve_model

    with vault.catalog.query() as conn:
        row = resolve_model(conn, ref)
        names = _aliases(conn, row.name).get((row.name, row.version), [])
        evals = model_evaluations(conn, [row])[(row.name, row.version)]
    return ModelVersion.from_row(row, vault.store, names, evals)


def list_models(vault: Vault, name: str | None = None) -> list[ModelVersion]:
    from lensvault.catalog.repos.models import ModelRepo
    from lensvault.refs import SemVer

    with vault.catalog.query() as conn:
        rows = ModelRepo(conn).of_name(name)
        al = _aliases(conn, name)
        evals = model_evaluations(conn, rows)
    rows.sort(key=lambda r: (r.name, SemVer.parse(r.version)))
    return [ModelVersion.from_row(r, vault.store, al.get((r.name, r.version), []), evals[(r.name, r.version)])
            for r in rows]
