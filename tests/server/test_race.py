"""Two server processes over one catalog and one store (a team's PostgreSQL behind a load
balancer): promotes racing through both make one history, and no write is lost."""

from __future__ import annotations

import itertools
import threading

import pytest

from tests.registry._helpers import insert_config, insert_run, snapshot, write
from tests.server.conftest import Server, bearer

VERSIONS = ("1.0.0", "1.1.0", "1.2.0")


@pytest.fixture
def team_vault(vault, tmp_path):
    """detector 1.0.0–1.2.0 with production on 1.0.0, on both catalogs (the `vault` fixture)."""
    snapshot(vault, tmp_path / "data", "1.0.0", 4)
    insert_config(vault, "C-01", {"train": {"lr": 0.01, "seed": 1}})
    for i, v in enumerate(VERSIONS):
        w = write(tmp_path / f"w{i}" / "model.pt", f"weights {i}".encode())
        insert_run(vault, f"r{i}", config_id="C-01", code_commit=f"{i}" * 40, artifacts={"model.pt": w})
        vault.register_model("detector", run=f"r{i}", weights=w, version=v)
    vault.promote("detector@1.0.0", "production", new=True)
    return vault


def test_two_servers_racing_promotes_keep_one_history(team_vault):
    import httpx

    token = team_vault.create_token("deployer", role="write", user="deployer@example.com").token
    servers = [Server(team_vault.root), Server(team_vault.root)]
    try:
        per_thread, threads, results = 6, [], []
        start = threading.Barrier(4)

        def promote(url: str, versions: list[str]) -> None:
            with httpx.Client(timeout=60) as c:
                start.wait()
                for v in versions:
                    r = c.post(f"{url}/api/v1/models/detector/aliases/production/promote",
                               json={"version": v, "reason": f"race {v}"}, headers=bearer(token))
                    results.append((r.status_code, r.json()))

        for i in range(4):
            url = servers[i % 2].url
            order = [VERSIONS[(i + k) % 3] for k in range(per_thread)]
            threads.append(threading.Thread(target=promote, args=(url, order)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        with httpx.Client(timeout=60) as c:
            history = c.get(f"{servers[0].url}/api/v1/models/detector/history", headers=bearer(token)).json()
            now = c.get(f"{servers[1].url}/api/v1/models/detector@production", headers=bearer(token)).json()
    finally:
        logs = [s.stop() for s in servers]
    assert all("Traceback" not in log for log in logs), logs
    assert len(results) == 4 * per_thread
    assert {status for status, _ in results} == {200}, [b for s, b in results if s != 200]
    # Every accepted promote is one move; each starts where the one before it ended.
    assert len(history) == 1 + len(results)
    assert {m["id"] for m in history[1:]} == {b["id"] for _, b in results}
    for before, after in itertools.pairwise(history):
        assert after["from"] == before["to"], (before, after)
    assert now["version"] == history[-1]["to"]
    assert {m["who"] for m in history[1:]} == {"deployer@example.com"}
