"""``runs list`` on a catalog with more runs than a table shows: the newest page, and how many
more — in the table; every run with --json (a program asked for them all)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from lensvault.catalog import runs_schema as s
from tests.cli.conftest import lv_out

N = 57  # more than a table's page (50)


def _fill(vault, n: int = N) -> list[str]:
    ids = [f"2026-01-01T00-00-{i:02d}Z-{i:04x}" for i in range(n)]
    with vault.catalog.begin() as conn:
        conn.execute(sa.insert(s.runs), [
            {"run_id": rid, "status": "succeeded" if i % 2 else "failed", "kind": "run", "clean": True,
             "dataset": "shapes@1.0.0", "config_id": "C-01", "started_at": f"2026-01-01T00:00:{i:02d}.000000Z",
             "ended_at": f"2026-01-01T00:00:{i:02d}.500000Z", "created_by": "test", "exit_code": 0}
            for i, rid in enumerate(ids)])
    return ids



def test_the_library_says_how_many_runs_a_limit_left_out(vault):
    ids = _fill(vault)
    page = vault.runs(limit=10)
    assert [r["run_id"] for r in page] == ids[::-1][:10] and page.total == N
    failed = vault.runs(status="failed", limit=5)
    assert page.to_dict() == list(page) and failed.total == (N + 1) // 2
    assert vault.runs().total == N == len(vault.runs())
    assert vault.runs(limit=N).total == N  # a limit that cut nothing


def test_the_table_shows_the_newest_page_and_says_how_many_more(vault):
    ids = _fill(vault)
    vault.close()
    root = vault.root
    table = lv_out("runs", "list", cwd=root)
    assert ids[-1] in table and ids[-50] in table and ids[-51] not in table
    assert f"the newest 50 of {N} runs … and {N - 50} more (--limit N or --all to see them)" in table
    every = lv_out("runs", "list", "--all", cwd=root)
    assert ids[0] in every and "more" not in every.splitlines()[-1] and f"{N} run(s)" in every
    assert [r["run_id"] for r in json.loads(lv_out("runs", "list", "--json", cwd=root))] == ids[::-1]
    assert len(json.loads(lv_out("runs", "list", "--json", "--limit", "3", cwd=root))) == 3
    assert "the newest 3 of" in lv_out("runs", "list", "--limit", "3", cwd=root)


def test_the_newest_page_is_read_from_an_index_not_sorted(tmp_path):
    """SQLite answers `runs list` (newest first, LIMIT n) by walking an index: no sort of every run."""
    import lensvault
    from lensvault.catalog.repos.runs import LIST_COLUMNS

    vault = lensvault.init(tmp_path / "v")
    _fill(vault)
    q = (sa.select(*[s.runs.c[c] for c in LIST_COLUMNS])
         .order_by(s.runs.c.started_at.desc(), s.runs.c.run_id.desc()).limit(50))
    with vault.catalog.read() as conn:
        sql = str(q.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        plan = " | ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    vault.close()
    assert "ix_runs_started_run" in plan and "TEMP B-TREE" not in plan, plan
