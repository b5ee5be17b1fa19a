"""A live ``lensvault serve`` (a real process on a random loopback port) over the CLI tests'
world (datasets, runs, models with aliases), plus a dataset version with a moved box, and
tokens of every role."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import runs, shell_env, world  # noqa: F401 (fixtures, one instance for this package)

pytest.importorskip("fastapi", reason="the server extra is not installed (pip install -e '.[dev]')")


@dataclass
class Tokens:
    admin: str
    writer: str
    reader: str
    revoked: str


@pytest.fixture(scope="package")
def moved(world):  # noqa: F811
    """shapes@1.0.2: one box of shapes@1.0.1 shifted 3 px right (a moved box: it still overlaps
    its old place with IoU > 0.5), as ``dataset fix`` makes it."""
    import lensvault

    coco = json.loads((world / "fixed" / "instances.json").read_text())
    box = coco["annotations"][0]
    box["bbox"] = [box["bbox"][0] + 3, box["bbox"][1], box["bbox"][2], box["bbox"][3]]
    out = world / "out" / "moved" / "instances.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(coco))
    with lensvault.open(world) as vault:
        vault.fix("shapes@1.0.1", out)
        changes = vault.compare_datasets("shapes@1.0.1", "shapes@1.0.2").annotations
    assert [len(changes.annotations.moved), changes.annotations.changed_boxes] == [1, 1]
    return {"image": changes.annotations.moved[0].image, "bbox": box["bbox"]}


@pytest.fixture(scope="package")
def tokens(world):  # noqa: F811
    import lensvault

    with lensvault.open(world, actor="admin@example.com") as vault:
        made = Tokens(admin=vault.create_token("root", role="admin", user="root@example.com").token,
                      writer=vault.create_token("ci-writer", role="write", user="writer@example.com").token,
                      reader=vault.create_token("viewer", role="read", user="viewer@example.com").token,
                      revoked=vault.create_token("gone", role="admin").token)
        vault.revoke_token("gone")
    return made


class Server:
    def __init__(self, vault: Path, *extra: str):
        env = shell_env({"PYTHONUNBUFFERED": "1"})
        self.proc = subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", "--vault", str(vault), "serve",
                                      "--port", "0", *extra], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.url = self._wait_for_url()
        self.log: list[str] = []
        # Drained all along: a full pipe would block the server's next log line.
        self._drain = threading.Thread(target=lambda: self.log.extend(iter(self.proc.stderr.readline, "")),
                                       daemon=True)
        self._drain.start()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                if self.proc.poll() is not None:
                    break
                continue
            seen.append(line)
            if line.startswith("Serving http://"):
                return line.split()[1]
        self.stop()
        raise RuntimeError("the server did not start:\n" + "".join(seen))

    def stop(self) -> str:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if hasattr(self, "_drain"):
            self._drain.join(timeout=10)
        return "".join(getattr(self, "log", []))


@pytest.fixture(scope="package")
def server(world, runs, moved, tokens):  # noqa: F811
    """The URL of a live server that needs a token for everything."""
    s = Server(world)
    yield s.url
    log = s.stop()
    assert "Traceback" not in log, log


@pytest.fixture(scope="package")
def public_server(world, runs, tokens):  # noqa: F811
    s = Server(world, "--public-read")
    yield s.url
    log = s.stop()
    assert "Traceback" not in log, log


@pytest.fixture
def client():
    import httpx

    with httpx.Client(timeout=60, follow_redirects=False) as c:
        yield c


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def log_in(server: str, token: str) -> str:
    """Log in through the login form, as a browser does; the session cookie's value."""
    import re

    import httpx

    with httpx.Client(timeout=60, follow_redirects=False) as c:
        form = c.get(server + "/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        r = c.post(server + "/login", data={"token": token, "next": "/", "csrf": csrf})
        assert r.status_code == 303, r.text
        return r.cookies["lensvault_session"]


def while_every_worker_thread_is_taken(c, ask, deadline: float = 20):
    """``ask()`` (requests through TestClient ``c``) while every token of the app's thread limiter
    is held, so that no route can start a worker thread; whether it came back before ``deadline``
    (a request that needs a thread cannot come back before the tokens are given back). Returns
    once ``ask()`` ended either way."""
    import threading

    from anyio.to_thread import current_default_thread_limiter

    limiter = c.portal.call(current_default_thread_limiter)
    holders = [object() for _ in range(int(limiter.total_tokens))]
    for h in holders:
        c.portal.call(limiter.acquire_on_behalf_of_nowait, h)
    try:
        t = threading.Thread(target=ask, daemon=True)
        t.start()
        t.join(timeout=deadline)  # a deadline for a hang, not a measurement
        came_back = not t.is_alive()
    finally:
        for h in holders:
            c.portal.call(limiter.release_on_behalf_of, h)
    t.join(timeout=60)  # a request that waited for a thread ends before the next check holds them all
    return came_back
