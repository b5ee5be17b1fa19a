"""The catalog's repositories, each against a real SQLite file and a real PostgreSQL database.

A repository is the only place a query is written, so what the domain relies on is pinned
here: orders, filters, batching past the IN-list size, conflicts decided by the database
(also inside a savepoint, where the outer transaction must go on), and the two metric write
paths (SQLite's DB-API executemany, PostgreSQL's upsert) keeping the same latest values.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lensvault.catalog import Catalog
from lensvault.catalog.repos import (
    AliasRepo,
    ConfigRepo,
    Conflict,
    DatasetRepo,
    EvaluationRepo,
    EventRepo,
    ModelRepo,
    ObjectRefRepo,
    RunRepo,
    savepoint,
)
from lensvault.catalog.repos._base import CHUNK

T0 = "2026-01-01T00:00:00.000000Z"


@pytest.fixture
def catalog(tmp_path, catalog_url):
    from lensvault.catalog.engine import normalize_url

    url = normalize_url(catalog_url) if catalog_url else f"sqlite:///{tmp_path / 'catalog.db'}"
    cat = Catalog(url, create=True)
    cat.migrate()
    yield cat
    cat.close()


def at(n: int) -> str:
    return f"2026-01-01T00:00:{n:02d}.000000Z"


def run_row(run_id: str, **kw) -> dict:
    row = {"run_id": run_id, "status": "running", "kind": "run", "clean": True, "started_at": T0, "created_by": "t"}
    row.update(kw)
    return row


def snapshot_row(sid: str) -> dict:
    return {"snapshot_id": sid, "snapshot_oid": sid, "files_oid": "f" * 64, "file_count": 1, "total_bytes": 1,
            "created_at": T0}


def version_row(name: str, version: str, sid: str, parent: str | None = None, created_at: str = T0) -> dict:
    major, minor, patch = (int(x) for x in version.split("."))
    return {"name": name, "version": version, "major": major, "minor": minor, "patch": patch, "snapshot_id": sid,
            "manifest_oid": "m" * 64, "parent": parent, "file_count": 1, "total_bytes": 1, "created_at": created_at,
            "created_by": "t"}


def model_row(name: str, version: str, run_id: str) -> dict:
    major, minor, patch = (int(x) for x in version.split("."))
    return {"name": name, "version": version, "major": major, "minor": minor, "patch": patch, "run_id": run_id,
            "bundle_oid": "b" * 64, "release_notes": "", "created_at": T0, "created_by": "t"}


def eval_row(eval_id: str, *, run_id=None, model=None, dataset="ds@1.0.0", created_at=T0) -> dict:
    return {"eval_id": eval_id, "run_id": run_id, "model_name": model[0] if model else None,
            "model_version": model[1] if model else None, "dataset": dataset, "dataset_snapshot": "s" * 64,
            "split": "test", "metrics": "{}", "created_at": created_at, "created_by": "t"}


# -- dataset versions ---------------------------------------------------------------------------


def test_dataset_repo_binds_once_and_names_the_holder_of_a_taken_version(catalog):
    with catalog.begin() as conn:
        repo = DatasetRepo(conn)
        repo.add_snapshot(snapshot_row("a" * 64))
        repo.add_snapshot(snapshot_row("a" * 64))  # same content: nothing to do
        repo.add_version(version_row("ds", "1.0.0", "a" * 64))
        repo.add_version(version_row("ds", "1.1.0", "a" * 64, parent="1.0.0", created_at=at(5)))
        repo.add_version(version_row("other", "1.0.0", "a" * 64))
        with pytest.raises(Conflict) as taken:
            repo.add_version({**version_row("ds", "1.0.0", "a" * 64), "created_by": "late"})
        assert taken.value.existing.created_by == "t"
        # The refused insert was rolled back alone: the transaction goes on.
        repo.add_version(version_row("ds", "1.2.0", "a" * 64, parent="1.1.0"))
    with catalog.query() as conn:
        repo = DatasetRepo(conn)
        assert repo.get("ds", "1.1.0").parent == "1.0.0" and repo.get("ds", "9.9.9") is None
        assert sorted(r.version for r in repo.of_name("ds")) == ["1.0.0", "1.1.0", "1.2.0"]
        assert len(repo.all()) == 4
        assert repo.exists("ds") and not repo.exists("d")
        assert {(r.name, int(r.versions), r.updated_at) for r in repo.summaries()} == {("ds", 3, at(5)),
                                                                                       ("other", 1, T0)}
        assert [r.version for r in repo.children("ds", "1.0.0")] == ["1.1.0"]
        assert repo.children("other", "1.0.0") == []


def test_a_version_of_a_missing_snapshot_is_refused_not_taken_for_a_conflict(catalog):
    with pytest.raises(sa.exc.IntegrityError), catalog.begin() as conn:
        DatasetRepo(conn).add_version(version_row("ds", "1.0.0", "9" * 64))


# -- configs ------------------------------------------------------------------------------------


def test_config_repo(catalog):
    def row(cid, created_at):
        return {"config_id": cid, "sha256": "1" * 64, "canonical_sha256": "2" * 64, "repo_path": "c.yaml",
                "commit": None, "format": "yaml", "content": '{"lr": 0.1}', "created_at": created_at,
                "created_by": "t"}

    with catalog.begin() as conn:
        ConfigRepo(conn).add(row("C-2", at(1)))
        ConfigRepo(conn).add(row("C-1", at(2)))
    with catalog.query() as conn:
        repo = ConfigRepo(conn)
        assert sorted(repo.ids()) == ["C-1", "C-2"]
        assert repo.exists("C-1") and not repo.exists("C-3")
        assert repo.content("C-1") == '{"lr": 0.1}' and repo.content("C-3") is None
        assert [r.config_id for r in repo.all()] == ["C-2", "C-1"]  # oldest first
        assert repo.get("C-2").repo_path == "c.yaml" and repo.get("C-3") is None


# -- runs ---------------------------------------------------------------------------------------


def test_run_repo_rows_states_and_refs(catalog):
    with catalog.begin() as conn:
        repo = RunRepo(conn)
        repo.add(run_row("r-1", dataset="ds@1.0.0", config_id="C-1", started_at=at(1)))
        repo.add(run_row("r-2", dataset="ds@1.0.0", started_at=at(2), reproduces="m@1.0.0"))
        repo.add(run_row("r_3", config_id="C-1", started_at=at(2), owner_host="h", owner_pid=1))
        with pytest.raises(Conflict), savepoint(conn):
            repo.add(run_row("r-1"))
        assert repo.exists("r-1")
    with catalog.query() as conn:
        repo = RunRepo(conn)
        assert repo.status("r-1") == "running" and repo.status("nope") is None
        assert repo.newest_id() == "r_3"  # latest start, then the highest id
        # A prefix is matched literally: "_" is not a wildcard.
        assert repo.ids_starting_with("r_") == ["r_3"] and repo.ids_starting_with("r") == ["r-1", "r-2", "r_3"]
        assert [r.run_id for r in repo.open_on_host("h", ("running",))] == ["r_3"]
        assert sorted(r.run_id for r in repo.using_dataset("ds@1.0.0")) == ["r-1", "r-2"]
        assert sorted(r.run_id for r in repo.using_config("C-1")) == ["r-1", "r_3"]
        assert [r.run_id for r in repo.reproducing(["x"] * CHUNK + ["m@1.0.0"])] == ["r-2"]
        assert [r[0] for r in repo.listing()] == ["r_3", "r-2", "r-1"]
        assert [r[0] for r in repo.listing(dataset="ds@1.0.0", limit=1)] == ["r-2"]
        assert repo.listing(status="succeeded") == []


def test_a_run_ends_once_and_is_frozen_after(catalog):
    with catalog.begin() as conn:
        RunRepo(conn).add(run_row("r-1"))
    with catalog.begin() as conn:
        repo = RunRepo(conn)
        assert repo.end("r-1", {"status": "succeeded", "ended_at": at(9)}, open_states=("reserved", "running"))
        assert not repo.end("r-1", {"status": "failed"}, open_states=("reserved", "running"))
    with pytest.raises(sa.exc.DBAPIError), catalog.begin() as conn:  # the database's trigger, not the repository, refuses it
            RunRepo(conn).set_environment("r-1", "e" * 64)
    with catalog.query() as conn:
        assert RunRepo(conn).get("r-1").status == "succeeded"


def test_a_model_version_is_reserved_by_one_run(catalog):
    with catalog.begin() as conn:
        repo = RunRepo(conn)
        repo.add(run_row("r-1"))
        repo.add(run_row("r-2"))
        repo.reserve({"name": "m", "version": "1.0.0", "run_id": "r-1", "created_at": T0})
    with pytest.raises(Conflict), catalog.begin() as conn:
        RunRepo(conn).reserve({"name": "m", "version": "1.0.0", "run_id": "r-2", "created_at": T0})
    with catalog.begin() as conn:
        repo = RunRepo(conn)
        assert repo.reservation("m", "1.0.0").run_id == "r-1"
        assert tuple(repo.reservation_of("r-1")) == ("m", "1.0.0") and repo.reservation_of("r-2") is None
        repo.release("r-1")
        assert repo.reservation("m", "1.0.0") is None


def test_metric_points_keep_the_last_overall_value_on_both_write_paths(catalog):
    pts = [("r-1", "loss", 3.0, 0, None, None, at(1)),
           ("r-1", "AP", 0.5, 0, "cat", None, at(1)),  # per class: not a latest value
           ("r-1", "loss", 2.0, 1, None, None, at(2)),
           ("r-1", "AP", None, 1, None, "night", at(2)),  # per slice: not either
           ("r-2", "loss", 9.0, 0, None, None, at(3))]
    with catalog.begin() as conn:
        repo = RunRepo(conn)
        repo.add(run_row("r-1"))
        repo.add(run_row("r-2"))
        repo.add_metric_points(pts[:2])
        repo.add_metric_points(pts[2:])
        repo.add_metric_points([("r-1", "loss", 1.0, 2, None, None, at(4))])
    with catalog.query() as conn:
        repo = RunRepo(conn)
        assert [(r.key, r.value, r.step) for r in repo.metric_points("r-1")] == [
            ("loss", 3.0, 0), ("AP", 0.5, 0), ("loss", 2.0, 1), ("AP", None, 1), ("loss", 1.0, 2)]
        assert [tuple(r) for r in repo.latest_metrics("r-1")] == [("loss", 1.0)]
        assert repo.metric_keys("r-1") == {("loss", None, None), ("AP", "cat", None), ("AP", None, "night")}
        assert sorted(repo.latest_metrics_of(None)) == [("r-1", "loss", 1.0), ("r-2", "loss", 9.0)]
        assert repo.latest_metrics_of(["r-2"]) == [("r-2", "loss", 9.0)]
        assert repo.latest_metrics_of([]) == []


def test_metric_points_without_latest_then_latest_at_once(catalog):
    """What catalog rebuild does: every point first, the latest values in one go at the end."""
    with catalog.begin() as conn:
        repo = RunRepo(conn)
        repo.add(run_row("r-1"))
        repo.add_metric_points([("r-1", "loss", 3.0, 0, None, None, at(1))], keep_latest=False)
        assert repo.latest_metrics("r-1") == []
        repo.add_latest_metrics([("r-1", "loss", 3.0, 0, None, None, at(1))])
        assert [tuple(r) for r in repo.latest_metrics("r-1")] == [("loss", 3.0)]


def test_params_and_artifacts(catalog):
    with catalog.begin() as conn:
        repo = RunRepo(conn)
        repo.add(run_row("r-1"))
        repo.add_params([{"run_id": "r-1", "key": "lr", "value": "0.1"}, {"run_id": "r-1", "key": "bs", "value": "8"}])
        repo.add_artifacts([{"run_id": "r-1", "path": "z.pt", "sha256": "1" * 64, "size": 2},
                            {"run_id": "r-1", "path": "a.json", "sha256": "2" * 64, "size": 3}])
    with pytest.raises(sa.exc.DBAPIError), catalog.begin() as conn:  # write-once
            conn.exec_driver_sql("UPDATE run_params SET value = '1'")
    with catalog.query() as conn:
        repo = RunRepo(conn)
        assert [(r.key, r.value) for r in repo.params("r-1")] == [("bs", "8"), ("lr", "0.1")]
        assert [a.path for a in repo.artifacts("r-1")] == ["a.json", "z.pt"]


# -- evaluations --------------------------------------------------------------------------------


def test_evaluation_repo_filters_orders_and_batches(catalog):
    many_runs = [f"r-{i:04d}" for i in range(CHUNK + 3)]
    with catalog.begin() as conn:
        repo = EvaluationRepo(conn)
        repo.add(eval_row("e-3", run_id="r-1", created_at=at(3)))
        repo.add(eval_row("e-1", model=("m", "1.0.0"), created_at=at(1), dataset="ds@2.0.0"))
        repo.add(eval_row("e-2", run_id="r-1", created_at=at(1)))
        repo.add(eval_row("e-4", created_at=at(4)))  # ad hoc
        repo.add(eval_row("e-5", run_id=many_runs[-1], created_at=at(5)))
    with catalog.query() as conn:
        repo = EvaluationRepo(conn)
        ids = lambda rows: [r.eval_id for r in rows]  # noqa: E731
        assert ids(repo.of(run_id="r-1")) == ["e-2", "e-3"]
        assert ids(repo.of(run_id="r-1", model=("m", "1.0.0"))) == ["e-1", "e-2", "e-3"]
        assert repo.of() == []
        assert sorted(ids(repo.of(model=("m", "1.0.0"), ordered=False))) == ["e-1"]
        assert ids(repo.of_run("r-1")) == ["e-2", "e-3"]
        assert ids(repo.of_model_names(["m", "x"])) == ["e-1"]
        assert ids(repo.of_runs(many_runs)) == ["e-5"]
        assert sorted(ids(repo.on_dataset("ds@1.0.0"))) == ["e-2", "e-3", "e-4", "e-5"]
        assert ids(repo.find()) == ["e-1", "e-2", "e-3", "e-4", "e-5"]
        assert ids(repo.find(dataset="ds@2.0.0")) == ["e-1"]
        assert ids(repo.find(run_id="r-1")) == ["e-2", "e-3"]
        assert ids(repo.find(model=("m", "1.0.0", "r-1"))) == ["e-1", "e-2", "e-3"]
        assert ids(repo.find(ad_hoc=True)) == ["e-4"]


# -- models and aliases -------------------------------------------------------------------------


def test_model_repo(catalog):
    runs = [f"r-{i:04d}" for i in range(CHUNK + 3)]
    files = [{"name": "m", "version": "1.0.0", "file": "w.pt", "role": "weights", "sha256": "1" * 64, "size": 1}]
    with catalog.begin() as conn:
        repo = ModelRepo(conn)
        repo.add(model_row("m", "1.0.0", runs[0]), files)
        repo.add(model_row("m", "1.1.0", runs[-1]), [])
        repo.add(model_row("n", "1.0.0", runs[1]), [])
    with pytest.raises(Conflict), catalog.begin() as conn:
        ModelRepo(conn).add(model_row("m", "1.0.0", "r-x"), [])
    with catalog.query() as conn:
        repo = ModelRepo(conn)
        assert repo.get("m", "1.1.0").run_id == runs[-1] and repo.get("m", "2.0.0") is None
        assert repo.exists("m") and repo.exists("m", "1.1.0") and not repo.exists("m", "2.0.0")
        assert not repo.exists("x")
        assert sorted(r.version for r in repo.of_name("m")) == ["1.0.0", "1.1.0"] and len(repo.of_name()) == 3
        assert repo.refs() == {("m", "1.0.0"), ("m", "1.1.0"), ("n", "1.0.0")}
        assert sorted((r.name, r.version) for r in repo.from_runs(runs)) == sorted(repo.refs())
        batches = list(repo.from_runs_by_batch(runs))
        assert len(batches) == 2 and [r.version for r in batches[1]] == ["1.1.0"]
        assert [f.file for f in repo.files("m", "1.0.0")] == ["w.pt"] and repo.files("m", "1.1.0") == []


def test_alias_repo(catalog):
    with catalog.begin() as conn:
        repo = AliasRepo(conn)
        first = repo.add_move({"name": "m", "alias": "production", "from_version": None, "to_version": "1.0.0",
                               "action": "promote", "reason": None, "actor": "t", "at": at(1)})
        repo.point("m", "production", "1.0.0", at=at(1), move_id=first, exists=False)
        second = repo.add_move({"name": "m", "alias": "staging", "from_version": None, "to_version": "1.1.0",
                                "action": "promote", "reason": "try", "actor": "t", "at": at(2)})
        repo.point("m", "staging", "1.1.0", at=at(2), move_id=second, exists=False)
        third = repo.add_move({"name": "m", "alias": "production", "from_version": "1.0.0", "to_version": "1.1.0",
                               "action": "promote", "reason": None, "actor": "t", "at": at(3)})
        assert repo.get("m", "production", for_update=True).version == "1.0.0"
        repo.point("m", "production", "1.1.0", at=at(3), move_id=third, exists=True)
    assert first < second < third
    with catalog.query() as conn:
        repo = AliasRepo(conn)
        assert repo.get("m", "production").move_id == third and repo.get("m", "canary") is None
        assert [m.id for m in repo.moves("m")] == [first, second, third]
        assert [m.to_version for m in repo.moves("m", "production")] == ["1.0.0", "1.1.0"]
        assert repo.names_used("m") == ["production", "staging"] and repo.names_used("n") == []
        assert sorted(a.alias for a in repo.pointing_at("m", "1.1.0")) == ["production", "staging"]
        assert len(repo.of_models({"m", "n"})) == 2 and len(repo.of_model()) == 2 and repo.of_model("n") == []
    with pytest.raises(sa.exc.DBAPIError), catalog.begin() as conn:  # moves are write-once
            conn.exec_driver_sql("DELETE FROM alias_moves")


# -- events and object refs ---------------------------------------------------------------------


def test_event_repo(catalog):
    def ev(action, subject, when):
        return {"at": when, "actor": "t", "action": action, "subject_kind": "x", "subject": subject,
                "before": None, "after": None}

    with catalog.begin() as conn:
        repo = EventRepo(conn)
        a = repo.add(ev("model.register", "det@1.0.0", at(1)))
        b = repo.add(ev("model.promote", "det@production", at(2)))
        repo.add(ev("dataset.version.create", "detector@1.0.0", at(3)))  # another name sharing the prefix
        repo.add_with_ids([{**ev("gc", "vault", at(4)), "id": 100}])
    assert b == a + 1
    with catalog.query() as conn:
        repo = EventRepo(conn)
        assert [e.subject for e in repo.find(subject="det")] == ["det@1.0.0", "det@production"]
        assert [e.action for e in repo.find(action="model.*")] == ["model.register", "model.promote"]
        assert [e.id for e in repo.find(since=at(2), until=at(3))] == [b, b + 1]
        assert repo.find()[-1].id == 100


def test_object_ref_repo(catalog):
    with catalog.begin() as conn:
        repo = ObjectRefRepo(conn)
        repo.add("run", "r-1", ["b" * 64, "a" * 64, "a" * 64])
        repo.add("run", "r-1", [])
        repo.add_missing("run", "r-1", ["a" * 64, None, "c" * 64])
    with catalog.query() as conn:
        assert sorted(ObjectRefRepo(conn).all()) == [("run", "r-1", o * 64) for o in "abc"]


def test_no_query_outside_the_catalog_package():
    """Domain modules ask repositories; only catalog/ builds statements or names tables."""
    import ast
    from pathlib import Path

    import lensvault

    src = Path(lensvault.__file__).parent
    offenders = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        if rel.startswith("catalog/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # Imports for annotations only (``if TYPE_CHECKING:``) never run: a type is not a query.
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                       for n in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            bad = [n for n in names if n.split(".")[0] == "sqlalchemy"
                   or n.startswith(("lensvault.catalog.schema", "lensvault.catalog.runs_schema",
                                    "lensvault.catalog.registry_schema"))]
            if isinstance(node, ast.Attribute) and (
                    node.attr in ("exec_driver_sql", "begin_nested")
                    or (node.attr == "execute" and isinstance(node.value, ast.Name) and node.value.id == "conn")):
                bad.append(node.attr)
            offenders += [f"{rel}:{node.lineno} {n}" for n in bad]
    assert offenders == []


# -- the two SQLite drivers ---------------------------------------------------------------------


def test_a_sqlite_catalog_is_read_without_sqlalchemy_and_both_drivers_give_the_same_rows(tmp_path):
    """``Catalog.query()`` on a SQLite file is the standard library's driver, read-only; the same
    SQL text through SQLAlchemy (reads inside a write transaction) gives the same rows, with the
    Boolean columns as bool on both."""
    import sqlite3

    from lensvault.catalog.sql import SqliteReader

    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}", create=True)
    cat.migrate()
    with cat.begin() as conn:
        DatasetRepo(conn).add_snapshot(snapshot_row("s1"))
        DatasetRepo(conn).add_version({**version_row("ds", "1.0.0", "s1"), "forced": True})
        DatasetRepo(conn).add_version(version_row("ds", "1.1.0", "s1", parent="1.0.0", created_at=at(2)))
        RunRepo(conn).add(run_row("r-1", dataset="ds@1.0.0", config_id="C-1", clean=False, started_at=at(1)))
        RunRepo(conn).add(run_row("r-2", dataset="ds@1.0.0", started_at=at(2)))
        RunRepo(conn).add_metric_points([("r-1", "AP", 0.5, 1, None, None, T0), ("r-1", "AP", 0.25, 2, "cat", None, T0)])
        ModelRepo(conn).add({**model_row("m", "1.0.0", "r-1"), "dirty": True}, [])
        EvaluationRepo(conn).add(eval_row("e-1", run_id="r-1", model=("m", "1.0.0")))

    def reads(conn) -> list:
        runs, models, datasets = RunRepo(conn), ModelRepo(conn), DatasetRepo(conn)
        return [runs.get("r-1"), runs.using_dataset("ds@1.0.0", limit=1), runs.listing(), runs.count(),
                runs.latest_metrics_of(["r-1", "r-2"]), runs.metric_point_tuples("r-1"), runs.newest_id(),
                models.of_name("m"), datasets.of_name("ds"), datasets.summaries(), datasets.children("ds", "1.0.0"),
                EvaluationRepo(conn).of_runs(["r-1"]), [r._mapping for r in datasets.of_name("ds")]]

    with cat.query() as conn:
        assert isinstance(conn, SqliteReader)
        plain = reads(conn)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):  # PRAGMA query_only
            conn.raw.execute("DELETE FROM runs")
    with cat.read() as conn:
        through_sqlalchemy = reads(conn)
    assert plain == through_sqlalchemy
    # An idle reader is kept and used again, each time in a fresh snapshot.
    with cat.query() as conn:
        kept = conn
        assert RunRepo(conn).get("r-3") is None
    with cat.begin() as conn:
        RunRepo(conn).add(run_row("r-3", started_at=at(3)))
    with cat.query() as conn:
        assert conn is kept and RunRepo(conn).get("r-3") is not None
    cat.close()
    row = plain[0]
    assert row.clean is False and plain[7][0].dirty is True and plain[7][0].forced is False
    assert sorted((v.version, v.forced) for v in plain[8]) == [("1.0.0", True), ("1.1.0", False)]


def test_a_sqlite_catalog_opens_without_an_engine(tmp_path):
    """Opening (the migration and identity check) and reading a SQLite catalog make no engine;
    a catalog gone missing is still refused, and a write makes the engine when it needs one."""
    from lensvault.errors import CatalogMissing

    path = tmp_path / "catalog.db"
    new = Catalog(f"sqlite:///{path}", create=True)
    new.migrate()
    new.close()
    cat = Catalog(f"sqlite:///{path}")
    cid = cat.open_existing()
    with cat.query() as conn:
        assert DatasetRepo(conn).all() == []
    assert cat._engine is None
    with cat.begin() as conn:
        DatasetRepo(conn).add_snapshot(snapshot_row("s1"))
    assert cat._engine is not None and cat.open_existing(cid) == cid
    cat.close()
    path.unlink()
    with pytest.raises(CatalogMissing):
        Catalog(f"sqlite:///{path}").open_existing()
    assert not path.exists()
