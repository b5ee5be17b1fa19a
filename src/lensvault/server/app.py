"""The ASGI app: the API router, the pages, and the one edge where errors become statuses."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from lensvault.errors import LensVaultError
from lensvault.server.errors import HTTPProblem, status_of

__all__ = ["create_app"]

log = logging.getLogger("lensvault.server")


def _wants_html(request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _problem(request, status: int, body: dict, headers: dict | None = None):
    from starlette.responses import JSONResponse

    if status == 401 and not request.url.path.startswith("/api/"):
        # A page (or a form) without a live login goes to the login page, whatever it accepts;
        # the API keeps answering 401 with JSON.
        from lensvault.server.login import login_redirect

        return login_redirect(request)
    if _wants_html(request):
        from lensvault.server.pages import error_page

        return error_page(request, status, body)
    return JSONResponse(body, status_code=status, headers=headers)


@contextmanager
def _collector_for_a_server():
    """Python's cycle collector, tuned while the app serves; as it was afterwards.

    By default it runs after every 700 new container objects, and every so often goes through
    every object the process holds; on the event loop each run stops every request. Measured
    with benchmarks/bench_server.py (50 clients, 2 processes, quiet machine): the short reads'
    p99 was 103–129 ms with the default and 57 ms with no collector at all; with what is
    loaded at start frozen out of its scans (``gc.freeze``) and a run every 50,000 new
    objects, 63–65 ms, at the same throughput. Cycles are still collected: later, not never.
    """
    import gc

    before = gc.get_threshold()
    ours = gc.get_freeze_count() == 0  # (a host program that froze objects itself keeps them so)
    if ours:
        gc.collect()
        gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        if ours:
            gc.unfreeze()


def create_app(vault_path, *, public_read: bool = False):
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from lensvault.server import api, login, pages
    from lensvault.server.state import ServerState
    from lensvault.vault import find_vault_root

    state = ServerState(find_vault_root(Path(vault_path) if vault_path is not None else None),
                        public_read=public_read)
    @asynccontextmanager
    async def lifespan(app):
        from anyio.to_thread import current_default_thread_limiter

        from lensvault.catalog.engine import SQLITE_POOL_SIZE

        # Requests run in worker threads (every route is a plain function); no more at once than
        # the catalog keeps connections for (anyio's default, 40, made a SQLite catalog open and
        # close a connection on most requests under load). More threads would only queue on the GIL.
        current_default_thread_limiter().total_tokens = SQLITE_POOL_SIZE
        with _collector_for_a_server():
            yield
        state.close()

    app = FastAPI(lifespan=lifespan, title="LensVault", version="1", openapi_url="/api/v1/openapi.json",
                  # No Swagger page: it loads its scripts from a CDN, and nothing here reaches the network.
                  docs_url=None, redoc_url=None,
                  description="Dataset versions, runs, evaluations, models and lineage of one vault. Every "
                              "answer is the JSON the command line prints with --json for the same question.")
    app.state.lv = state

    @app.exception_handler(LensVaultError)
    async def lensvault_error(request, exc: LensVaultError):
        status = exc.status if isinstance(exc, HTTPProblem) else status_of(exc)
        body = exc.to_dict()
        if isinstance(exc, HTTPProblem):
            body["error"] = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 422: "UsageError"}.get(status, "BadRequest")
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return _problem(request, status, body, headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        what = exc.detail if isinstance(exc.detail, str) else "the request was refused"
        return _problem(request, exc.status_code,
                        {"error": "NotFound" if exc.status_code == 404 else "HTTPError", "what": what,
                         "where": request.url.path, "fix": "see /api/v1/openapi.json for the routes"})

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        problems = [{"where": ".".join(str(p) for p in e.get("loc", ())), "what": e.get("msg", "")}
                    for e in exc.errors()]
        return _problem(request, 422, {"error": "UsageError",
                                       "what": "; ".join(f"{p['where']}: {p['what']}" for p in problems),
                                       "where": request.url.path, "fix": "see /api/v1/openapi.json",
                                       "problems": problems})

    @app.exception_handler(Exception)
    async def unexpected(request, exc: Exception):
        # Logged with its traceback on the server; the client gets no internals.
        log.error("unexpected error on %s", request.url.path, exc_info=exc)
        return _problem(request, 500, {"error": "InternalError", "what": "the server failed to answer",
                                       "where": request.url.path,
                                       "fix": "see the server's log; report it if it persists"})

    app.include_router(api.router)
    app.include_router(login.router)
    app.include_router(pages.router)

    return app
