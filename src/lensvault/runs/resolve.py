"""Which run a reference names: an id, a unique prefix of one (6+ characters), or ``latest``."""

from __future__ import annotations

from lensvault.errors import NotFound, UsageError

__all__ = ["find_run_id", "resolve_run_id"]

_SHOW_CANDIDATES = 10


def find_run_id(conn, ref: str) -> str | None:
    """The run ``ref`` names — an id, a unique prefix of one (6+ characters), or ``latest``
    (``last``) for the newest run — or None when it names no run. An ambiguous prefix is an
    error naming the candidates."""
    from lensvault.catalog.repos.runs import RunRepo

    runs = RunRepo(conn)
    if ref in ("latest", "last"):
        return runs.newest_id()
    if runs.exists(ref):
        return ref
    if len(ref) < 6 or "@" in ref:
        return None
    found = runs.ids_starting_with(ref)
    if len(found) > 1:
        shown = ", ".join(found[:_SHOW_CANDIDATES])
        more = f" … and {len(found) - _SHOW_CANDIDATES} more" if len(found) > _SHOW_CANDIDATES else ""
        raise UsageError(f"run id prefix {ref!r} is ambiguous: it matches {len(found)} runs: {shown}{more}",
                         where=ref, fix="give more of the run id (one of the candidates above)",
                         candidates=found)
    return found[0] if found else None


def resolve_run_id(conn, ref: str) -> str:
    """Like :func:`find_run_id`, but a ref that names no run is NotFound."""
    run_id = find_run_id(conn, ref)
    if run_id is None:
        if ref in ("latest", "last"):
            raise NotFound("there are no runs yet", where=ref,
                           fix="start one with `lensvault run --dataset NAME@X.Y.Z --config ID -- CMD`")
        raise NotFound(f"no run {ref!r}", where=ref, fix="see `lensvault runs list` for the run ids")
    return run_id
