"""``lensvault serve``: a REST API (``/api/v1/…``) and a web UI over one vault, in one process.

    app = lensvault.server.create_app("/path/to/vault", public_read=False)   # an ASGI app

Every route calls the same ``Vault`` method the CLI calls and answers with the result's own
``to_dict()`` (or a page rendered from that result): no JSON is assembled here. The process
keeps no state of its own besides caches of immutable things (exact dataset versions,
thumbnails on disk), so several processes can serve one PostgreSQL catalog and one store.

Modules: ``app`` (the app, error mapping), ``state`` (the vault and caches), ``auth`` (tokens,
session cookies, CSRF), ``login`` (log in and out, the redirect to the login page), ``api`` (JSON
routes), ``objects`` (bytes, ranges, thumbnails), ``pages`` (HTML), ``svg`` (overlays, charts,
graphs), ``run`` (uvicorn).
"""

from __future__ import annotations

__all__ = ["create_app", "run_server"]


def create_app(vault_path, *, public_read: bool = False):
    from lensvault.server.app import create_app as _create

    return _create(vault_path, public_read=public_read)


def run_server(vault_path, **kw):
    from lensvault.server.run import run_server as _run

    return _run(vault_path, **kw)
