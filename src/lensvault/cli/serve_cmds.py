"""``lensvault serve``: the REST API and the web UI over a vault."""

from __future__ import annotations

import click

from lensvault.cli._common import emit, json_option
from lensvault.render import tokens as render


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on (localhost only by default).")
@click.option("--port", default=8470, show_default=True, type=click.IntRange(0, 65535),
              help="The port (0: any free port; the URL is printed).")
@click.option("--vault", "vault_dir", metavar="DIR", help="The vault to serve (default: as for every command).")
@click.option("--public-read", is_flag=True, help="Let anyone read without a token (writes still need one).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes sharing the port (each opens the vault; use one per core).")
@json_option
@click.pass_context
def serve_cmd(ctx, host, port, vault_dir, public_read, workers, as_json):
    """Serve the REST API (/api/v1) and the web UI until interrupted.

    Reads need a token (`lensvault token create NAME --role read`) unless --public-read;
    promote and rollback need a write token, gc an admin one.
    """
    from lensvault.server import run_server

    result = run_server(vault_dir or ctx.find_root().obj.get("vault_path"), host=host, port=port,
                        public_read=public_read, workers=workers,
                        on_ready=lambda url: click.echo(f"Serving {url}  (API: {url}/api/v1/openapi.json; Ctrl-C stops)",
                                                        err=True))
    emit(result, as_json, render.served)
