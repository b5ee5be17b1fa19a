"""Resolve ``detector@1.2.0``, ``detector@production`` or ``detector`` (latest) to a model version row.

A catalog lookup, below runs, evaluations and the registry alike: evaluations and reproductions
of a model version need it as much as the registry does (it lived in ``registry/`` once, which
made ``runs`` and ``evaluations`` import from a layer above them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.errors import NotFound
from lensvault.refs import Ref, SemVer

if TYPE_CHECKING:
    from lensvault.catalog.repos._base import RowT
    from lensvault.catalog.sql import Conn

__all__ = ["resolve_model"]


def resolve_model(conn: Conn, ref: str | Ref) -> RowT:
    """The ``model_versions`` row for a version, an alias, or the latest version."""
    from lensvault.catalog.repos import AliasRepo, ModelRepo

    models = ModelRepo(conn)
    r = ref if isinstance(ref, Ref) else Ref.parse(ref, kind="model")
    if r.version is not None:
        row = models.get(r.name, str(r.version))
        if row is None:
            raise NotFound(f"model version {r} does not exist", where=str(r),
                           fix=f"see `lensvault model list` for the versions of {r.name}")
        return row
    rows = models.of_name(r.name)
    if not rows:
        raise NotFound(f"no model named {r.name!r}", where=str(r), fix="see `lensvault model list`")
    if r.alias in (None, "latest"):
        return max(rows, key=lambda x: SemVer.parse(x.version))
    a = AliasRepo(conn).get(r.name, r.alias)
    if a is None:
        raise NotFound(f"{r.name} has no alias {r.alias!r}", where=str(r),
                       fix=f"promote a version first: `lensvault model promote {r.name}@X.Y.Z {r.alias} --new`")
    return next(x for x in rows if x.version == a.version)
