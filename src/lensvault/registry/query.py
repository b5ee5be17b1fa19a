"""Read side of the registry: one model version, or all of them, with their aliases."""

from __future__ import annotations

from lensvault.registry.model import ModelVersion

__all__ = ["get_model", "list_models", "model_evaluations"]


def _aliases(conn, name: str | None = None) -> dict[tuple[str, str], list[str]]:
    import sqlalchemy as sa

    from lensvault.catalog.registry_schema import aliases

    q = sa.select(aliases)
    if name is not None:
        q = q.where(aliases.c.name == name)
    out: dict[tuple[str, str], list[str]] = {}
    for a in conn.execute(q):
        out.setdefault((a.name, a.version), []).append(a.alias)
    return out


def model_evaluations(conn, rows) -> dict[tuple[str, str], list[dict]]:
    """(name, version) → the evaluations of that model version or of its run, oldest first."""
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import evaluations as e
    from lensvault.runs.metric_sources import evaluation_group

    rows = list(rows)
    out: dict[tuple[str, str], list[dict]] = {(r.name, r.version): [] for r in rows}
    if not rows:
        return out
    by_run: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        by_run.setdefault(r.run_id, []).append((r.name, r.version))
    names = sorted({r.name for r in rows})
    found = {}
    for ev in conn.execute(sa.select(e).where(e.c.model_name.in_(names))):
        found[ev.eval_id] = ev
    runs = sorted(by_run)
    for i in range(0, len(runs), 500):
        for ev in conn.execute(sa.select(e).where(e.c.run_id.in_(runs[i:i + 500]))):
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


def get_model(vault, ref) -> ModelVersion:
    from lensvault.registry.resolve import resolve_model

    with vault.catalog.read() as conn:
        row = resolve_model(conn, ref)
        names = _aliases(conn, row.name).get((row.name, row.version), [])
        evals = model_evaluations(conn, [row])[(row.name, row.version)]
    return ModelVersion.from_row(row, vault.store, names, evals)


def list_models(vault, name: str | None = None) -> list[ModelVersion]:
    import sqlalchemy as sa

    from lensvault.catalog.registry_schema import model_versions as mv
    from lensvault.refs import SemVer

    q = sa.select(mv)
    if name is not None:
        q = q.where(mv.c.name == name)
    with vault.catalog.read() as conn:
        rows = conn.execute(q).all()
        al = _aliases(conn, name)
        evals = model_evaluations(conn, rows)
    rows.sort(key=lambda r: (r.name, SemVer.parse(r.version)))
    return [ModelVersion.from_row(r, vault.store, al.get((r.name, r.version), []), evals[(r.name, r.version)])
            for r in rows]
