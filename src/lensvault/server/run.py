"""Running the app on uvicorn: bound to localhost unless told otherwise, told when it listens."""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass
from typing import Literal

__all__ = ["ServeResult", "run_server", "uvicorn_protocols"]


@dataclass(frozen=True)
class ServeResult:
    """``serve``: where it listened, until it was stopped."""

    url: str
    vault: str
    public_read: bool

    def to_dict(self) -> dict:
        return {"url": self.url, "vault": self.vault, "public_read": self.public_read, "stopped": True}


def _missing_server_extra(e: ImportError):
    from lensvault.errors import UsageError

    return UsageError(f"the server needs the server extra ({e.name} is not installed)",
                      where="serve", fix="pip install 'lensvault[server]'")


def uvicorn_protocols() -> tuple[Literal["httptools", "h11"], Literal["uvloop", "asyncio"]]:
    """uvicorn's HTTP parser and event loop: httptools and uvloop (C; the server extra installs
    them, uvloop where it exists: not on Windows), else uvicorn's pure-Python h11 and asyncio.
    With h11, parsing and writing HTTP was a quarter of the server's CPU on small JSON answers."""
    import importlib.util

    return ("httptools" if importlib.util.find_spec("httptools") else "h11",
            "uvloop" if importlib.util.find_spec("uvloop") else "asyncio")


def _listen(host: str, port: int):
    """The listening socket, bound here so that a taken port or an unknown host is an error
    with its fix (uvicorn would log it and exit)."""
    import socket

    from lensvault.errors import UsageError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}", where=f"{host}:{port}",
                         fix="choose another --port (0: any free port) or --host") from e
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_server(vault_path, *, host: str = "127.0.0.1", port: int = 8470, public_read: bool = False,
               on_ready=None, log_level: str = "warning", workers: int = 1) -> ServeResult:
    """Serve the vault at ``vault_path`` until interrupted; ``on_ready(url)`` once it listens
    (with ``port`` 0, the URL names the port the system chose). ``workers`` > 1: that many
    server processes share the listening socket (the server keeps no state of its own)."""
    try:
        import uvicorn

        from lensvault.server.app import create_app
    except ImportError as e:
        raise _missing_server_extra(e) from e
    if workers > 1:
        from lensvault.server.workers import run_workers

        return ServeResult(*run_workers(vault_path, host=host, port=port, public_read=public_read,
                                        on_ready=on_ready, log_level=log_level, workers=workers,
                                        sock=_listen, protocols=uvicorn_protocols()), public_read)

    app = create_app(vault_path, public_read=public_read)
    root = str(app.state.lv.root)
    urls: list[str] = []

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            for server in self.servers:
                for sock in server.sockets:
                    h, p = sock.getsockname()[:2]
                    urls.append(f"http://{'[' + h + ']' if ':' in h else h}:{p}")
            if on_ready is not None and urls:
                on_ready(urls[0])

        @contextlib.contextmanager
        def capture_signals(self):
            # Ctrl-C or SIGTERM is how a server ends: shut down gracefully, then return (uvicorn
            # would raise the signal again afterwards, and the process would die by it).
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            before = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in before.items():
                    signal.signal(sig, handler)

    http, loop = uvicorn_protocols()
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            server_header=False, lifespan="on", http=http, loop=loop)
    Server(config).run(sockets=[_listen(host, port)])
    return ServeResult(urls[0] if urls else f"http://{host}:{port}", root, public_read)
