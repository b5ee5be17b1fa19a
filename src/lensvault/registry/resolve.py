"""Resolve ``detector@1.2.0``, ``detector@production`` or ``detector`` (latest) to a model version row."""

from __future__ import annotations

from lensvault.errors import NotFound
from lensvault.refs import Ref, SemVer

__all__ = ["resolve_model"]


def resolve_model(conn, ref: str | Ref):
    """The ``model_versions`` row for a version, an alias, or the latest version."""
    import sqlalchemy as sa

    from lensvault.catalog.registry_schema import aliases, model_versions as mv

    r = ref if isinstance(ref, Ref) else Ref.parse(ref, kind="model")
    if r.version is not None:
        row = conn.execute(sa.select(mv).where(mv.c.name == r.name, mv.c.version == str(r.version))).first()
        if row is None:
            raise NotFound(f"model version {r} does not exist", where=str(r),
                           fix=f"see `lensvault model list` for the versions of {r.name}")
        return row
    rows = conn.execute(sa.select(mv).where(mv.c.name == r.name)).all()
    if not rows:
        raise NotFound(f"no model named {r.name!r}", where=str(r), fix="see `lensvault model list`")
    if r.alias in (None, "latest"):
        return max(rows, key=lambda x: SemVer.parse(x.version))
    a = conn.execute(sa.select(aliases).where(aliases.c.name == r.name, aliases.c.alias == r.alias)).first()
    if a is None:
        raise NotFound(f"{r.name} has no alias {r.alias!r}", where=str(r),
                       fix=f"promote a version first: `lensvault model promote {r.name}@X.Y.Z {r.alias} --new`")
    return next(x for x in rows if x.version == a.version)
