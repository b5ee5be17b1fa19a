"""API tokens on both catalogs: made once, stored hashed, checked, revoked; and the CLI."""

from __future__ import annotations

import hashlib
import json

import pytest

from lensvault.errors import AlreadyExists, NotFound, UsageError
from tests.cli.conftest import lv


def test_a_token_is_stored_hashed_and_names_its_user(vault):
    import sqlalchemy as sa

    made = vault.create_token("ci", role="write", user="ci@example.com")
    assert made.token.startswith(f"lvt_{made.info.token_id}_")
    p = vault.authenticate(made.token)
    assert (p.user, p.role, p.token_name) == ("ci@example.com", "write", "ci")
    with vault.catalog.read() as conn:
        row = conn.execute(sa.text("SELECT * FROM api_tokens")).mappings().one()
    secret = made.token[len(f"lvt_{made.info.token_id}_"):]
    assert row["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert made.token not in json.dumps(dict(row)) and secret not in json.dumps(dict(row))
    assert "token" not in vault.tokens().to_dict()[0]
    event = vault.events(action="token.create").to_dict()[-1]
    assert event["subject"] == "ci" and made.token not in json.dumps(event)


def test_wrong_revoked_and_malformed_tokens_name_nobody(vault):
    made = vault.create_token("ci", role="admin")
    tid = made.info.token_id
    secret = made.token[len(f"lvt_{tid}_"):]
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for bad in ("", "lvt_", f"lvt_{tid}_{flipped}", f"lvt_{'0' * 16}_{secret}", made.token + "x", made.token.upper(),
                f"lvt_{tid}_{secret}\n", None):
        assert vault.authenticate(bad) is None, bad
    assert vault.revoke_token("ci").already is False
    assert vault.authenticate(made.token) is None
    again = vault.revoke_token(tid)  # by id too; the first revoke is kept
    assert again.already is True and again.info.revoked_at is not None
    assert [e["action"] for e in vault.events(subject="ci").to_dict()] == ["token.create", "token.revoke"]


def test_token_names_and_roles_are_checked(vault):
    vault.create_token("ci", role="read")
    with pytest.raises(AlreadyExists):
        vault.create_token("ci", role="admin")
    with pytest.raises(UsageError):
        vault.create_token("ci2", role="root")
    with pytest.raises(UsageError):
        vault.create_token("../x", role="read")
    with pytest.raises(NotFound):
        vault.revoke_token("nobody")
    assert [t.name for t in vault.tokens()] == ["ci"]


def test_token_commands(sqlite_vault):
    root = sqlite_vault.root
    made = lv("token", "create", "alice", "--role", "write", "--user", "alice@example.com", cwd=root)
    assert made.returncode == 0, made.stderr
    token = next(w for w in made.stdout.split() if w.startswith("lvt_"))
    assert "cannot be shown again" in made.stdout
    listed = lv("token", "list", "--json", cwd=root)
    assert token not in listed.stdout
    assert [(t["name"], t["role"], t["user"], t["active"]) for t in json.loads(listed.stdout)] == [
        ("alice", "write", "alice@example.com", True)]
    assert lv("token", "create", "alice", "--role", "read", cwd=root).returncode == 4
    assert lv("token", "create", "bob", "--role", "superuser", cwd=root).returncode == 2
    revoked = lv("token", "revoke", "alice", "--json", cwd=root)
    assert json.loads(revoked.stdout)["active"] is False
    assert "was revoked already" in lv("token", "revoke", "alice", cwd=root).stdout


def test_token_hints_work_as_printed(sqlite_vault):
    from tests.cli.conftest import sh
    from tests.cli.hints import printed_hints

    root = sqlite_vault.root
    empty = lv("token", "list", cwd=root)
    made = next(h for h in printed_hints(empty.stdout) if h.startswith("lensvault token create"))
    r = sh(made.replace("NAME", "first").replace("read|write|admin", "read"), root)
    assert r.returncode == 0 and "lvt_" in r.stdout, r.stderr

    missing = lv("token", "revoke", "nobody", cwd=root)
    assert missing.returncode == 3
    listed = sh(next(h for h in printed_hints(missing.stderr) if h.startswith("lensvault token list")), root)
    assert listed.returncode == 0 and "first" in listed.stdout

    taken = lv("token", "create", "first", "--role", "write", cwd=root)
    assert taken.returncode == 4
    retire = next(h for h in printed_hints(taken.stderr) if h.startswith("lensvault token revoke"))
    assert sh(retire, root).returncode == 0
    assert json.loads(lv("token", "list", "--json", cwd=root).stdout)[0]["active"] is False
