"""Running the app on uvicorn: bound to localhost unless told otherwise, told when it listens."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServeResult", "run_server"]


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


def run_server(vault_path, *, host: str = "127.0.0.1", port: int = 8470, public_read: bool = False,
               on_ready=None, log_level: str = "warning") -> ServeResult:
    """Serve the vault at ``vault_path`` until interrupted; ``on_ready(url)`` once it listens
    (with ``port`` 0, the URL names the port the system chose)."""
    try:
        import uvicorn

        from lensvault.server.app import create_app
    except ImportError as e:
        raise _missing_server_extra(e) from e

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

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            server_header=False, lifespan="on")
    Server(config).run()
    return ServeResult(urls[0] if urls else f"http://{host}:{port}", root, public_read)
