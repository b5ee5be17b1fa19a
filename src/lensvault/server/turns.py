"""Where a request's work runs: a catalog read on the event loop, one at a time, or anything
else in a worker thread.

Measured with benchmarks/bench_server.py (50 clients, 2 server processes, 2 cores, quiet): with
every read in a worker thread, a request cost 1.4 ms of CPU, the reads' p99 was 174–192 ms and
the server answered 1,545 requests/s. The threads hand the interpreter lock back and forth with
the event loop (each hand-off a futex call; a thread that wants the lock can wait a whole switch
interval), and which waiting request runs next is the scheduler's guess, so some wait many
turns. Run on the loop in the order they came (and with the cycle collector tuned: app.py), a
request costs 0.8 ms, the reads' p99 is 53–89 ms, at 2,100–2,300 requests/s.

A read is short when its answer is bounded (one record, a page, the newest N) and the catalog
is a local SQLite file: a query is then a read from the page cache, about a millisecond.
Against PostgreSQL every query waits for the network, and the loop must not wait: there reads
keep their worker threads. So does work that grows with the data or makes something (a diff,
a check, a picture, an object's bytes, a write): it would stop every other request.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

__all__ = ["Turns", "on_loop"]

T = TypeVar("T")


class Turns:
    """How one server process runs short reads: on its event loop when ``on_loop`` (a SQLite
    catalog), else in worker threads."""

    def __init__(self, *, on_loop: bool):
        self.on_loop = on_loop
        self._turn: asyncio.Lock | None = None

    async def read(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``: a short read, on the loop or in a worker thread."""
        if not self.on_loop:
            return await run_in_threadpool(fn, *args, **kwargs)
        if self._turn is None:
            self._turn = asyncio.Lock()
        # One read at a time, in the order they came (asyncio's lock is fair). Before each, the
        # loop goes round once: what arrived meanwhile is parsed, and answers already kept (a
        # thumbnail, a version's JSON) are sent without waiting behind a queue of reads.
        async with self._turn:
            await asyncio.sleep(0)
            return fn(*args, **kwargs)


def on_loop(endpoint: Callable[..., Any] | None = None, *, paged_by: str | None = None) -> Any:
    """Mark a route whose work is a short read (see the module's docstring): it runs through
    the process's ``Turns``. ``paged_by``: the query parameter that bounds the answer (a
    ``limit``); a request without it may ask for everything and is read in a worker thread.
    The route keeps its signature (FastAPI reads its parameters from it)."""

    def mark(route: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(route)
        async def short_read(*args: Any, **kwargs: Any) -> Any:
            turns = kwargs["request"].app.state.lv.turns
            if paged_by is not None and kwargs.get(paged_by) is None:
                return await run_in_threadpool(route, *args, **kwargs)
            return await turns.read(route, *args, **kwargs)

        return short_read

    return mark if endpoint is None else mark(endpoint)
