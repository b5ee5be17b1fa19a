"""``lensvault serve`` as a command: where it listens, and its refusals (errors with fixes, never a traceback)."""

from __future__ import annotations

import socket

from tests.cli.conftest import lv
from tests.server.conftest import Server


def test_a_taken_port_and_a_missing_vault_are_errors_with_fixes(sqlite_vault, tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        r = lv("serve", "--vault", sqlite_vault.root, "--port", port, cwd=tmp_path, timeout=60)
    finally:
        taken.close()
    assert r.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "fix: choose another --port" in r.stderr
    assert "Traceback" not in r.stderr
    r = lv("serve", "--vault", tmp_path / "nowhere", "--port", 0, cwd=tmp_path, timeout=60)
    assert r.returncode == 3 and "no LensVault vault" in r.stderr and "Traceback" not in r.stderr


def test_it_listens_on_loopback_and_stops_cleanly(sqlite_vault):
    s = Server(sqlite_vault.root)
    assert s.url.startswith("http://127.0.0.1:")
    log = s.stop()
    assert s.proc.returncode == 0 and "Traceback" not in log
