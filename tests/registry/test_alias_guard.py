"""Promoting to an alias the model never had needs --new (a typo is refused with the close
name); a rollback names every version the alias held and where a further one would go."""

from __future__ import annotations

import json

import pytest

from lensvault.errors import AlreadyExists, UsageError

from ._helpers import lv
from .test_aliases import models  # noqa: F401  (the fixture: detector 1.0.0, 1.1.0, 1.2.0)


def test_a_new_alias_needs_new_and_a_typo_is_refused(models):  # noqa: F811
    with pytest.raises(UsageError, match="no alias 'production' yet") as e:
        models.promote("detector@1.0.0", "production")
    assert "--new" in e.value.fix
    assert models.model_history("detector") == []  # refused: nothing recorded
    models.promote("detector@1.0.0", "production", new=True)
    models.promote("detector@1.1.0", "production")  # known now: no --new needed
    for typo in ("prod", "prodution", "productions"):
        with pytest.raises(UsageError, match="did you mean 'production'") as e:
            models.promote("detector@1.2.0", typo)
        assert e.value.fix.startswith("`lensvault model promote detector@1.2.0 production`")
    with pytest.raises(UsageError, match=r"no alias 'staging' yet \(its aliases: production\)"):
        models.promote("detector@1.2.0", "staging")
    assert [m.alias for m in models.model_history("detector")] == ["production", "production"]
    models.promote("detector@1.2.0", "staging", new=True)
    assert models.model("detector@staging").version == "1.2.0"


def test_cli_promote_new_and_rollback_names_the_history(models):  # noqa: F811
    root = models.root
    r = lv("model", "promote", "detector@1.0.0", "production", cwd=root)
    assert r.returncode == 2 and "--new" in r.stderr
    # the fix is a command that works as printed
    fix = r.stderr.split("`")[1]
    assert fix == "lensvault model promote detector@1.0.0 production --new"
    assert lv(*fix.split()[1:], cwd=root).returncode == 0
    for v in ("1.1.0", "1.2.0"):
        assert lv("model", "promote", f"detector@{v}", "production", cwd=root).returncode == 0
    r = lv("model", "promote", "detector@1.2.0", "prod", cwd=root)
    assert r.returncode == 2 and "did you mean 'production'" in r.stderr

    r = lv("model", "rollback", "detector", "production", cwd=root)
    assert r.returncode == 0
    assert "rolled back 1.2.0 → 1.1.0" in r.stdout
    assert "production has held: 1.0.0, 1.1.0, 1.2.0" in r.stdout
    assert "a further rollback would go to 1.0.0" in r.stdout
    out = json.loads(lv("model", "rollback", "detector", "production", "--json", cwd=root).stdout)
    assert (out["from"], out["to"], out["held"], out["next_rollback"]) == ("1.1.0", "1.0.0", ["1.0.0", "1.1.0", "1.2.0"], None)
    r = lv("model", "promote", "detector@1.1.0", "production", cwd=root)
    assert r.returncode == 0
    r = lv("model", "rollback", "detector", "production", cwd=root)
    assert "no earlier version left to roll back to" in r.stdout


def test_new_never_moves_an_alias_that_exists(models):  # noqa: F811
    # A deploy script that always passes --new must not be able to move production by accident.
    models.promote("detector@1.1.0", "production", new=True)
    for ref in ("detector@1.0.0", "detector@1.1.0", "detector@1.2.0"):
        with pytest.raises(AlreadyExists, match=r"detector@production already exists \(it points at 1.1.0\)") as e:
            models.promote(ref, "production", new=True)
        assert "leave out --new" in e.value.fix
    assert models.model("detector@production").version == "1.1.0"
    assert [m.to_version for m in models.model_history("detector")] == ["1.1.0"]

