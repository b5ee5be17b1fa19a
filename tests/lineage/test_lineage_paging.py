"""``lineage … --down`` of a dataset version or config that thousands of runs used: the newest
page, and how many more — in the text tree, Mermaid and DOT; every node with --json (or a page
with --limit, its totals in ``omitted``). A long chain of parent versions is walked in one query.

The catalog is filled with rows directly (lineage reads only the catalog), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from lensvault.catalog import registry_schema as r
from lensvault.catalog import runs_schema as s
from lensvault.catalog import schema as c
from tests.cli.conftest import lv_out

N = 57  # more than a page (50)
CHAIN = 12  # more than the parents looked up one by one
HOT = f"shapes@1.{CHAIN - 1}.0"


def _fill(vault) -> list[str]:
    """shapes@1.0.0 … 1.11.0 (each derived from the one before); N runs on the last with C-01,
    oldest first; an evaluation on it per run; a model from the newest run."""
    now = "2026-01-01T00:00:00.000000Z"
    ids = [f"2026-01-01T00-00-{i:02d}Z-{i:04x}" for i in range(N)]
    with vault.catalog.begin() as conn:
        conn.execute(sa.insert(c.snapshots), [
            {"snapshot_id": f"{k:064x}", "snapshot_oid": f"{k:064x}", "files_oid": f"{k:064x}", "file_count": 1,
             "total_bytes": 1, "annotations_oid": None, "images_oid": None, "created_at": now} for k in range(CHAIN)])
        conn.execute(sa.insert(c.dataset_versions), [
            {"name": "shapes", "version": f"1.{k}.0", "major": 1, "minor": k, "patch": 0, "snapshot_id": f"{k:064x}",
             "manifest_oid": f"{k:064x}", "parent": f"1.{k - 1}.0" if k else None, "file_count": 1, "total_bytes": 1,
             "notes": "", "bump": "minor" if k else None, "changelog": None, "created_at": now, "created_by": "test"}
            for k in range(CHAIN)])
        conn.execute(sa.insert(s.configs), [{"config_id": "C-01", "sha256": "0" * 64, "canonical_sha256": "0" * 64,
                                             "repo_path": "c.yaml", "commit": "0" * 40, "format": "yaml",
                                             "content": "{}", "created_at": now, "created_by": "test"}])
        conn.execute(sa.insert(s.runs), [
            {"run_id": rid, "status": "succeeded", "kind": "run", "clean": True, "dataset": HOT, "config_id": "C-01",
             "started_at": f"2026-01-01T00:00:{i:02d}.000000Z", "ended_at": f"2026-01-01T00:00:{i:02d}.500000Z",
             "created_by": "test", "exit_code": 0} for i, rid in enumerate(ids)])
        conn.execute(sa.insert(s.evaluations), [
            {"eval_id": f"E-{i:03d}", "run_id": None, "model_name": None, "model_version": None, "dataset": HOT,
             "dataset_snapshot": "0" * 64, "split": "test", "metrics": json.dumps({"overall": {"AP50": 0.5}}),
             "predictions_oid": None, "created_at": f"2026-01-01T00:01:{i:02d}.000000Z", "created_by": "test"}
            for i in range(N)])
        conn.execute(sa.insert(r.model_versions), [
            {"name": "det", "version": "1.0.0", "major": 1, "minor": 0, "patch": 0, "run_id": ids[-1],
             "bundle_oid": "0" * 64, "dataset": HOT, "config_id": "C-01", "code_commit": None, "metrics": "{}",
             "release_notes": "", "bump": None, "created_at": now, "created_by": "test"}])
    return ids


def _runs(g) -> list[str]:
    return [n["label"] for n in g.nodes.values() if n["type"] == "run"]


def test_a_limit_lists_the_newest_runs_and_evaluations_and_counts_the_rest(vault):
    ids = _fill(vault)
    g = vault.lineage(HOT, direction="down", limit=10)
    assert _runs(g) == ids[::-1][:10]
    assert "model:det@1.0.0" in g.nodes  # what the listed runs produced comes with them
    evals = [n["label"].split(" ")[0] for n in g.nodes.values() if n["type"] == "evaluation"]
    assert evals == [f"E-{i:03d}" for i in range(N - 1, N - 11, -1)]
    assert g.to_dict()["omitted"] == [
        {"node": f"dataset:{HOT}", "edge": "data", "type": "run", "shown": 10, "total": N},
        {"node": f"dataset:{HOT}", "edge": "evaluated_on", "type": "evaluation", "shown": 10, "total": N}]
    every = vault.lineage(HOT, direction="down")
    assert sorted(_runs(every)) == sorted(ids) and every.omitted == [] and every.to_dict()["limit"] is None
    assert vault.lineage(HOT, direction="down", limit=N).omitted == []  # a limit that cut nothing


def test_a_config_down_is_paged_too(vault):
    ids = _fill(vault)
    g = vault.lineage("C-01", limit=5)
    assert _runs(g) == ids[::-1][:5]
    assert g.omitted == [{"node": "config:C-01", "edge": "config", "type": "run", "shown": 5, "total": N}]


def test_a_long_chain_of_parents_is_every_parent_in_order(vault):
    _fill(vault)
    g = vault.lineage(HOT, direction="up")
    derived = [(e["from"], e["to"]) for e in g.edges if e["type"] == "derived"]
    assert derived == [(f"dataset:shapes@1.{k - 1}.0", f"dataset:shapes@1.{k}.0") for k in range(CHAIN - 1, 0, -1)]
    short = vault.lineage("shapes@1.3.0", direction="up")  # looked up one by one: the same shape
    assert [e["from"] for e in short.edges] == ["dataset:shapes@1.2.0", "dataset:shapes@1.1.0", "dataset:shapes@1.0.0"]



def test_the_commands_show_a_page_and_say_how_many_more(sqlite_vault):
    ids = _fill(sqlite_vault)
    sqlite_vault.close()
    root = sqlite_vault.root
    text = lv_out("lineage", HOT, "--down", cwd=root)
    assert ids[-1] in text and ids[-50] in text and ids[-51] not in text
    assert f"[data] … and {N - 50} more run(s) (the newest 50 of {N} shown; --limit N or --all to see them)" in text
    assert f"└─ [evaluated_on] … and {N - 50} more evaluation(s)" in text  # the last line under the root
    every = lv_out("lineage", HOT, "--down", "--all", cwd=root)
    assert ids[0] in every and "more" not in every
    whole = json.loads(lv_out("lineage", HOT, "--down", "--json", cwd=root))
    assert {n["label"] for n in whole["nodes"] if n["type"] == "run"} == set(ids) and whole["omitted"] == []
    page = json.loads(lv_out("lineage", HOT, "--down", "--json", "--limit", "3", cwd=root))
    assert [n["label"] for n in page["nodes"] if n["type"] == "run"] == ids[::-1][:3]
    assert page["limit"] == 3 and {o["type"]: o["total"] for o in page["omitted"]} == {"run": N, "evaluation": N}
    mermaid = lv_out("lineage", HOT, "--down", "--format", "mermaid", "--limit", "3", cwd=root)
    assert f'more_0["… and {N - 3} more run(s)"]' in mermaid and "-.->|data| more_0" in mermaid
    dot = lv_out("lineage", "C-01", "--format", "dot", "--limit", "3", cwd=root)
    assert f'[label="… and {N - 3} more run(s)", shape=plaintext]' in dot


def test_a_page_is_read_from_an_index_not_sorted(sqlite_vault):
    """SQLite answers the newest runs on a dataset version or config, and the newest evaluations on
    a dataset version, by walking an m0011 index: no sort of every row that matches."""
    _fill(sqlite_vault)
    queries = {
        "ix_runs_dataset_started": sa.select(s.runs).where(s.runs.c.dataset == HOT)
        .order_by(s.runs.c.started_at.desc(), s.runs.c.run_id.desc()).limit(50),
        "ix_runs_config_started": sa.select(s.runs).where(s.runs.c.config_id == "C-01")
        .order_by(s.runs.c.started_at.desc(), s.runs.c.run_id.desc()).limit(50),
        "ix_evaluations_dataset_created": sa.select(s.evaluations).where(s.evaluations.c.dataset == HOT)
        .order_by(s.evaluations.c.created_at.desc(), s.evaluations.c.eval_id.desc()).limit(50),
    }
    with sqlite_vault.catalog.read() as conn:
        for index, q in queries.items():
            sql = str(q.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            plan = " | ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert index in plan and "TEMP B-TREE" not in plan, plan
