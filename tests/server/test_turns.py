"""Where a request's work runs (server/turns.py): a short read of a SQLite catalog on the event
loop, in the order the reads came; a read of a PostgreSQL catalog, and any work that grows with
the data, in a worker thread. Seen by holding every worker thread: what needs one cannot answer."""

from __future__ import annotations

import asyncio
import threading

import pytest

from lensvault.server.turns import Turns
from tests.server.conftest import bearer, while_every_worker_thread_is_taken

SHORT = ["/api/v1/runs?limit=5", "/api/v1/events?limit=3", "/api/v1/models", "/api/v1/whoami", "/"]
GROWING = ["/api/v1/runs", "/api/v1/events"]  # no limit: everything, however much there is


def test_short_reads_run_on_the_loop_only_with_a_sqlite_catalog(vault, catalog_url):
    from starlette.testclient import TestClient

    from lensvault.server import create_app

    on_loop = catalog_url is None  # the fixture's SQLite catalog
    with TestClient(create_app(vault.root, public_read=True)) as c:
        assert c.app.state.lv.turns.on_loop is on_loop
        for url in SHORT:
            assert c.get(url).status_code == 200
            got: dict = {}
            came_back = while_every_worker_thread_is_taken(c, lambda u=url, g=got: g.update(r=c.get(u)),
                                                           deadline=20 if on_loop else 0.5)
            assert came_back is on_loop, url
            if came_back:
                assert got["r"].status_code == 200
        for url in GROWING:
            assert c.get(url).status_code == 200
            assert not while_every_worker_thread_is_taken(c, lambda u=url: c.get(u), deadline=0.5), url


def test_a_token_is_checked_on_the_loop_and_still_refused_when_revoked(world, tokens):
    from starlette.testclient import TestClient

    from lensvault.server import create_app

    with TestClient(create_app(world)) as c:
        got: dict = {}

        def ask():
            got["reader"] = c.get("/api/v1/runs?limit=2", headers=bearer(tokens.reader))
            got["revoked"] = c.get("/api/v1/runs?limit=2", headers=bearer(tokens.revoked))
            got["none"] = c.get("/api/v1/runs?limit=2")

        assert while_every_worker_thread_is_taken(c, ask)
        assert [got[k].status_code for k in ("reader", "revoked", "none")] == [200, 401, 401]


def test_what_grows_with_the_data_keeps_its_worker_thread(world):
    from starlette.testclient import TestClient

    import lensvault
    from lensvault.server import create_app

    with lensvault.open(world) as v:
        versions = [x["version"] for x in v.dataset_log("shapes").to_dict()]
    a, b = versions[-1], versions[0]
    with TestClient(create_app(world, public_read=True)) as c:
        assert c.app.state.lv.turns.on_loop
        for url in ("/api/v1/datasets/shapes/versions/latest?files=true",  # every file
                    "/api/v1/datasets/shapes/versions",  # every version
                    f"/api/v1/datasets/shapes/diff/{a}/latest",  # a diff not kept (a moving ref)
                    "/api/v1/datasets/shapes/versions/latest/check"):
            assert not while_every_worker_thread_is_taken(c, lambda u=url: c.get(u), deadline=0.5), url
        # ... and the same routes answer once the threads are free.
        assert c.get(f"/api/v1/datasets/shapes/diff/{a}/{b}").status_code == 200


def test_reads_take_turns_in_order_and_let_kept_answers_through():
    """Reads run one after another, in the order they came, on the loop's own thread; an answer
    that needs no read, started while reads queue, is not held behind the whole queue."""
    order: list[str] = []
    threads: set[int] = set()

    def read(i: int) -> int:
        threads.add(threading.get_ident())
        order.append(f"read{i}")
        return i * i

    async def kept() -> None:
        order.append("kept")

    async def main() -> list[int]:
        turns = Turns(on_loop=True)
        reads = [asyncio.create_task(turns.read(read, i)) for i in range(6)]
        await asyncio.sleep(0)  # the reads are queued: the first one holds the turn
        answer = asyncio.create_task(kept())
        out = await asyncio.gather(*reads)
        await answer
        return out

    assert asyncio.run(main()) == [i * i for i in range(6)]
    assert [o for o in order if o != "kept"] == [f"read{i}" for i in range(6)]
    assert order.index("kept") < order.index("read2")
    assert threads == {threading.get_ident()}


@pytest.mark.parametrize("on_loop", [True, False])
def test_a_read_that_fails_gives_its_error_and_the_turn_back(on_loop):
    turns = Turns(on_loop=on_loop)

    def broken():
        raise LookupError("no such run")

    async def main():
        with pytest.raises(LookupError, match="no such run"):
            await turns.read(broken)
        return await asyncio.wait_for(turns.read(lambda: "next"), timeout=5)

    assert asyncio.run(main()) == "next"


def test_the_collector_is_tuned_while_the_app_serves_and_as_it_was_afterwards(world):
    """Each run of the cycle collector stops the event loop; while the app serves it runs less
    often and skips what was loaded at start (server/app.py). Nothing of it outlives the app."""
    import gc

    from starlette.testclient import TestClient

    from lensvault.server import create_app

    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with TestClient(create_app(world, public_read=True)) as c:
        assert gc.get_threshold() == (50_000, 20, 20)
        assert gc.get_freeze_count() > frozen
        assert c.get("/api/v1/runs?limit=1").status_code == 200
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen
