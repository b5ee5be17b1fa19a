"""Events travel with the records that carry them: ``clone``, ``fetch`` and ``pull`` bring the
history of every vault that pushed to a remote into ``lensvault events`` — each event once, none
dropped because another vault's catalog used the same id — and ``catalog rebuild`` keeps them."""

from __future__ import annotations

import lensvault

from .conftest import lv, lv_json, remote_args


def _facts(root) -> list[tuple]:
    return sorted((e["at"], e["actor"], e["action"], e["subject"]) for e in lv_json("events", cwd=root))


def test_events_of_two_vaults_travel_once_through_clone_fetch_pull_and_rebuild(tmp_path, remote_url, vault):
    url, endpoint = remote_url
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.txt").write_text(name)
    # Two vaults push to one remote; their catalogs both number their events from 1.
    vault.snapshot("one", tmp_path / "one", version="1.0.0")
    c = lensvault.init(tmp_path / "c", actor="carol")
    c.snapshot("two", tmp_path / "two", version="1.0.0")
    c.close()
    for root in (vault.root, c.root):
        lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=root)
        lv_json("push", "--all", cwd=root)
    ours, carols = _facts(vault.root), _facts(c.root)
    assert [e["id"] for e in lv_json("events", cwd=c.root)][:2] == [e["id"] for e in lv_json("events", cwd=vault.root)][:2]

    # clone: both histories, nothing dropped for a shared id, nothing twice.
    cloned = lv_json("clone", *remote_args(url, endpoint), str(tmp_path / "b"), cwd=tmp_path)
    assert cloned["unproven"] == []
    b = _facts(tmp_path / "b")
    assert set(ours) | set(carols) <= set(b) and len(b) == len(set(b))

    # fetch into the first vault: carol's events come, once, however often it fetches.
    lv_json("fetch", cwd=vault.root)
    lv_json("fetch", cwd=vault.root)
    here = _facts(vault.root)
    assert set(carols) <= set(here) and len(here) == len(set(here))
    assert ("carol", "dataset.version.create", "two@1.0.0") in {f[1:] for f in here}
    shown = lv("events", "--subject", "two", cwd=vault.root).stdout
    assert "carol" in shown and "dataset.version.create" in shown
    # … and a rebuild of its catalog keeps them all; this vault's own events keep their ids.
    def ids(root) -> dict[tuple, int]:
        return {(e["at"], e["actor"], e["action"], e["subject"]): e["id"] for e in lv_json("events", cwd=root)}

    before = ids(vault.root)
    r = lv("catalog", "rebuild", "--force", "--json", cwd=vault.root)
    assert r.returncode == 0 and "recorded twice" not in r.stdout, r.stdout
    after = ids(vault.root)
    assert set(here) <= set(after)
    assert {f: after[f] for f in ours} == {f: before[f] for f in ours}


def test_pull_brings_the_events_of_what_it_brings(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    a = lensvault.init(tmp_path / "a", actor="alice")
    a.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    a.close()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=a.root)
    lv_json("push", "--all", cwd=a.root)
    b = lensvault.init(tmp_path / "b", actor="bob")
    b.close()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=b.root)
    lv_json("pull", "bccd@1.0.0", cwd=b.root)
    lv_json("pull", "bccd@1.0.0", cwd=b.root)
    made = [e for e in lv_json("events", cwd=b.root) if e["action"] == "dataset.version.create"]
    assert [(e["actor"], e["subject"]) for e in made] == [("alice", "bccd@1.0.0")]
