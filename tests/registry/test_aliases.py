"""Aliases: promotion, rollback ("undo" over a stack of moves), history, races (both backends)."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from lensvault.errors import InvalidRef, NotFound, UsageError

from ._helpers import insert_run, lv, write

VERSIONS = ("1.0.0", "1.1.0", "1.2.0")


@pytest.fixture
def models(rvault, tmp_path):
    for i, v in enumerate(VERSIONS):
        w = write(tmp_path / f"w{i}" / "model.pt", f"weights {i}".encode())
        insert_run(rvault, f"r{i}", config_id="C-01", code_commit=f"{i}" * 40, artifacts={"model.pt": w})
        rvault.register_model("detector", run=f"r{i}", weights=w, version=v)
    return rvault


def _where(vault, alias="production"):
    return vault.model(f"detector@{alias}").version


def test_promote_and_resolve_alias(models):
    move = models.promote("detector@1.0.0", "production", reason="first release", new=True)
    assert (move.from_version, move.to_version, move.action) == (None, "1.0.0", "promote")
    assert _where(models) == "1.0.0"
    assert models.model("detector@1.0.0").aliases == ("production",)
    models.promote("detector@production", "staging", new=True)  # an alias resolves wherever a version does
    assert _where(models, "staging") == "1.0.0"
    assert models.model("detector").version == "1.2.0"  # no alias: latest


def test_rollback_walks_back_through_promotions(models):
    for v in VERSIONS:
        models.promote(f"detector@{v}", "production", reason=f"ship {v}", new=v == VERSIONS[0])
    assert models.rollback("detector", "production", reason="regressed at night").to_version == "1.1.0"
    assert models.rollback("detector", "production").to_version == "1.0.0"
    with pytest.raises(NotFound, match="no earlier version"):
        models.rollback("detector", "production")
    models.promote("detector@1.2.0", "production")
    assert models.rollback("detector", "production").to_version == "1.0.0"  # not 1.2.0's predecessor in time
    hist = [m.to_dict() for m in models.model_history("detector", "production")]
    assert [(h["action"], h["from"], h["to"]) for h in hist] == [
        ("promote", None, "1.0.0"), ("promote", "1.0.0", "1.1.0"), ("promote", "1.1.0", "1.2.0"),
        ("rollback", "1.2.0", "1.1.0"), ("rollback", "1.1.0", "1.0.0"),
        ("promote", "1.0.0", "1.2.0"), ("rollback", "1.2.0", "1.0.0"),
    ]
    assert hist[3]["why"] == "regressed at night" and hist[0]["why"] == "ship 1.0.0"
    assert all(h["who"] and h["when"] for h in hist)
    ev = models.events(subject="detector@production")
    assert [e["action"] for e in ev] == ["model.promote"] * 3 + ["model.rollback"] * 2 + ["model.promote", "model.rollback"]
    assert ev[3]["before"] == {"version": "1.2.0"} and ev[3]["after"]["version"] == "1.1.0"


def test_repromoting_the_same_version_is_recorded_but_not_a_rollback_target(models):
    models.promote("detector@1.0.0", "production", new=True)
    models.promote("detector@1.1.0", "production")
    models.promote("detector@1.1.0", "production", reason="re-affirmed")
    assert len(models.model_history("detector")) == 3
    assert models.rollback("detector", "production").to_version == "1.0.0"


def test_alias_errors(models):
    with pytest.raises(NotFound, match="does not exist"):
        models.promote("detector@9.9.9", "production")
    with pytest.raises(NotFound):
        models.promote("nosuch@1.0.0", "production")
    with pytest.raises(NotFound, match="no alias 'production'"):
        models.rollback("detector", "production")  # never promoted: no history
    models.promote("detector@1.0.0", "production", new=True)
    with pytest.raises(NotFound, match="no earlier version"):
        models.rollback("detector", "production")  # one move: nothing before it
    for bad in ("latest", "1.1.0", "Prod!"):
        with pytest.raises(UsageError, match="cannot be an alias"):
            models.promote("detector@1.0.0", bad, new=True)
    with pytest.raises(InvalidRef):
        models.promote("detector@1.x", "production")
    with pytest.raises(UsageError):
        models.promote("detector", "production")  # which version?
    with pytest.raises(NotFound):
        models.model_history("nosuch")
    assert len(models.model_history("detector")) == 1  # refusals recorded nothing


def test_alias_moves_are_write_once(models):
    from lensvault.catalog.registry_schema import alias_moves

    models.promote("detector@1.0.0", "production", new=True)
    with pytest.raises(Exception, match="write-once"), models.catalog.begin() as conn:
        conn.execute(alias_moves.delete())


def test_racing_promotions_are_all_recorded_in_order(models):
    """Many processes promote at once: every move recorded, the chain unbroken, the alias on the last."""
    import os
    import subprocess

    from lensvault.catalog.registry_schema import aliases

    from ._helpers import LV

    n = 12
    env = {k: v for k, v in os.environ.items() if k != "LENSVAULT_DIR"}
    env["LENSVAULT_DIR"] = str(models.root)
    models.promote("detector@1.0.0", "production", reason="first", new=True)
    procs = [subprocess.Popen([*LV, "model", "promote", f"detector@{VERSIONS[i % 3]}", "production",
                               "--reason", f"p{i}"], env={**env, "LENSVAULT_USER": f"user{i}"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(n)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, outs
    hist = models.model_history("detector", "production")
    assert len(hist) == n + 1
    assert sorted(m.reason for m in hist[1:]) == sorted(f"p{i}" for i in range(n))
    assert [m.id for m in hist] == sorted(m.id for m in hist)
    assert hist[0].from_version is None
    for before, after in itertools.pairwise(hist):
        assert after.from_version == before.to_version  # nobody moved it from a stale version
        assert after.at >= before.at
    with models.catalog.read() as conn:
        row = conn.execute(sa.select(aliases)).one()
    assert (row.version, row.move_id) == (hist[-1].to_version, hist[-1].id)
    assert len(models.events(subject="detector@production")) == n + 1


def test_cli_promote_rollback_history(models):
    root = models.root
    r = lv("model", "rollback", "detector", "production", cwd=root)
    assert r.returncode == 3 and "no alias 'production'" in r.stderr
    r = lv("model", "promote", "detector@2.0.0", "production", cwd=root)
    assert r.returncode == 3 and "does not exist" in r.stderr
    assert lv("model", "promote", "detector@1.0.0", "production", "--reason", "go", "--new", cwd=root).returncode == 0
    r = lv("model", "promote", "detector@1.1.0", "production", cwd=root)
    assert r.returncode == 0 and "1.0.0 → 1.1.0" in r.stdout
    # The version it already holds: recorded, and said to be no move (it read as one).
    r = lv("model", "promote", "detector@1.1.0", "production", cwd=root)
    assert r.returncode == 0 and "already pointed at 1.1.0" in r.stdout and "→" not in r.stdout, r.stdout
    r = lv("model", "rollback", "detector", "production", "--reason", "bad", cwd=root)
    assert r.returncode == 0 and "1.1.0 → 1.0.0" in r.stdout
    import json

    hist = json.loads(lv("model", "history", "detector", "--json", cwd=root).stdout)
    assert [(h["action"], h["from"], h["to"], h["why"]) for h in hist] == [
        ("promote", None, "1.0.0", "go"), ("promote", "1.0.0", "1.1.0", None), ("promote", "1.1.0", "1.1.0", None),
        ("rollback", "1.1.0", "1.0.0", "bad")]
    table = lv("model", "history", "detector", cwd=root).stdout
    assert "rollback" in table and "bad" in table
