"""Read side of the registry: one model version, or all of them, with their aliases."""

from __future__ import annotations

from lensvault.registry.model import ModelVersion

__all__ = ["get_model", "list_models"]


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


def get_model(vault, ref) -> ModelVersion:
    from lensvault.registry.resolve import resolve_model

    with vault.catalog.read() as conn:
        row = resolve_model(conn, ref)
        names = _aliases(conn, row.name).get((row.name, row.version), [])
    return ModelVersion.from_row(row, vault.store, names)


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
    rows.sort(key=lambda r: (r.name, SemVer.parse(r.version)))
    return [ModelVersion.from_row(r, vault.store, al.get((r.name, r.version), [])) for r in rows]
