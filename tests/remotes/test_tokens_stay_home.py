"""API tokens are ledger records of their own vault only: `push --all` never sends them, and a
token record found on a remote (put there by hand, or by anyone who can write to the bucket) is
never taken in by `clone` or `pull` — else writing to a bucket would open the clone's server."""

from __future__ import annotations

import lensvault

from .conftest import folder_url, lv_json


def test_push_sends_no_token_and_clone_takes_none(tmp_path):
    from lensvault.ledger import entries, ledger_prefix
    from lensvault.remotes.config import open_remote

    url = folder_url(tmp_path / 'remote')
    src = tmp_path / "files"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    a = lensvault.init(tmp_path / "a")
    a.snapshot("plain", src, version="1.0.0")
    live = a.create_token("ci", role="admin").token
    a.create_token("old", role="read")
    a.revoke_token("old")
    cid = a.catalog.catalog_id
    kinds = [e.kind for e in entries(a.store, cid)]
    assert kinds.count("token.create") == 2 and kinds.count("token.revoke") == 1  # in this vault's ledger

    lv_json("remote", "add", "origin", url, cwd=a.root)
    lv_json("push", "--all", cwd=a.root)
    a.close()
    a = lensvault.open(tmp_path / "a")  # with the remote the command line added
    _, rs = open_remote(a, "origin")
    pushed = rs.list_refs("journal")
    assert pushed and not [n for n in pushed if "-token." in n], pushed

    # A token record put on the remote anyway, as a hostile writer to the bucket would.
    made = next(e for e in entries(a.store, cid) if e.kind == "token.create")
    rs.restore_bytes(made.oid, a.store.read_bytes(made.oid))
    rs.put_ref(made.name[len(ledger_prefix(cid)) + 1:], b"", exclusive=True)
    lv_json("clone", url, str(tmp_path / "b"), cwd=tmp_path)
    with lensvault.open(tmp_path / "b") as b:
        assert [d["name"] for d in b.datasets().to_dict()] == ["plain"]
        assert b.tokens().to_dict() == [] and b.authenticate(live) is None
        assert not [e for e in entries(b.store, b.catalog.catalog_id) if e.kind.startswith("token.")]
        # Nor does a rebuild of the clone's catalog find one.
        assert "tokens" not in b.rebuild_catalog(force=True).to_dict()["restored"]
    a.close()
