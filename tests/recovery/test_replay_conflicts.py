"""Catalog rebuild replays each record through the catalog's repositories, each record in a
savepoint of its own: a record the database refuses (its key is taken) is reported, leaves
none of its rows behind, and the records after it are still replayed — on both backends."""

from __future__ import annotations

from lensvault import ledger
from lensvault.catalog.repos import RunRepo

T0 = "2026-01-01T00:00:00.000000Z"


def _run_row(run_id: str, **kw) -> dict:
    row = {"run_id": run_id, "status": "running", "kind": "standalone", "code_commit": None, "clean": True,
           "repo_root": None, "dataset": None, "dataset_snapshot": None, "config_id": None, "seeds": "{}",
           "command": None, "cwd": None, "model_name": None, "model_version": None, "started_at": T0,
           "created_by": "t", "notes": None, "reproduces": None, "owner_host": None, "owner_pid": None,
           "owner_started": None}
    row.update(kw)
    return row


def _record(vault, kind: str, data: dict) -> None:
    """A record in the store whose write the catalog never saw (as a write killed before COMMIT leaves)."""
    with vault.catalog.begin() as conn:
        ledger.record(vault, conn, kind, data)


def test_a_record_the_database_refuses_is_reported_and_the_rest_replayed(vault):
    reservation = {"name": "det", "version": "1.0.0", "created_at": T0}
    _record(vault, "run.start", {"row": _run_row("r-1", notes="first", model_name="det", model_version="1.0.0"),
                                 "reservation": {**reservation, "run_id": "r-1"}})
    _record(vault, "run.start", {"row": _run_row("r-1", notes="second"), "reservation": None})  # the id is taken
    # A new run whose reservation is taken: its run row must not stay behind either.
    _record(vault, "run.start", {"row": _run_row("r-2", model_name="det", model_version="1.0.0"),
                                 "reservation": {**reservation, "run_id": "r-2"}})
    _record(vault, "run.start", {"row": _run_row("r-3"), "reservation": None})

    report = vault.rebuild_catalog(force=True)

    conflicts = [u for u in report.unproven if "conflicts with an earlier record" in u["problem"]]
    assert [u["what"] for u in conflicts] == ["run.start record", "run.start record"], report.unproven
    assert report.restored["runs"] == 2
    with vault.catalog.read() as conn:
        runs = RunRepo(conn)
        assert runs.get("r-1").notes == "first"
        assert not runs.exists("r-2")
        assert runs.exists("r-3")
        assert runs.reservation("det", "1.0.0").run_id == "r-1"
