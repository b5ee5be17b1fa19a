"""``lensvault serve --workers N``: N server processes answering on one listening socket.

The server keeps no state of its own (catalog and store hold everything; caches hold only
what cannot change), so processes need nothing from each other: this one binds the socket,
uvicorn's supervisor starts the workers (fresh interpreters, each opening the vault), restarts
one that dies, and stops them all on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os

__all__ = ["run_workers", "worker_app"]

_VAULT, _PUBLIC = "LENSVAULT_SERVE_VAULT", "LENSVAULT_SERVE_PUBLIC_READ"


def worker_app():
    """The app of one worker process (uvicorn imports and calls this in each)."""
    from lensvault.server.app import create_app

    return create_app(os.environ[_VAULT], public_read=os.environ.get(_PUBLIC) == "1")


def run_workers(vault_path, *, host: str, port: int, public_read: bool, on_ready, log_level: str, workers: int,
                sock, protocols: tuple) -> tuple[str, str]:
    """Serve until stopped; (url, vault root). ``sock(host, port)``: the bound listening socket;
    ``protocols``: uvicorn's (http, loop)."""
    import inspect
    from pathlib import Path

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    import lensvault
    from lensvault.vault import find_vault_root

    root = find_vault_root(Path(vault_path) if vault_path is not None else None)
    lensvault.open(root).close()  # a vault that cannot be opened fails here, once, with its fix
    listening = sock(host, port)
    h, p = listening.getsockname()[:2]
    url = f"http://{'[' + h + ']' if ':' in h else h}:{p}"
    os.environ[_VAULT], os.environ[_PUBLIC] = str(root), "1" if public_read else ""
    http, loop = protocols
    config = uvicorn.Config("lensvault.server.workers:worker_app", factory=True, workers=workers,
                            log_level=log_level, access_log=False, server_header=False, lifespan="on",
                            http=http, loop=loop)
    # Older uvicorn releases take the worker's target; newer ones build it from the config.
    if "target" in inspect.signature(Multiprocess).parameters:
        supervisor = Multiprocess(config, target=uvicorn.Server(config).run,  # type: ignore[call-arg]
                                  sockets=[listening])
    else:
        supervisor = Multiprocess(config, sockets=[listening])
    if on_ready is not None:
        on_ready(url)  # the socket listens already: requests wait in its backlog for the first worker
    supervisor.run()
    listening.close()
    return url, str(root)
