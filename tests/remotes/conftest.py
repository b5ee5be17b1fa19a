"""A real S3-compatible server (moto's standalone server, HTTP on a random loopback port) for the
session, like PostgreSQL for the catalog tests; each test gets a bucket of its own. Credentials
reach the client the way they do for users: through the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_server():
    """The server's endpoint URL; stopped after the session."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def _credentials(monkeypatch):
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    for k in [k for k in os.environ if k.startswith("LENSVAULT_") and k != "LENSVAULT_TEST_PG_URL"]:
        monkeypatch.delenv(k)


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def bucket(s3_server) -> str:
    name = f"lv-{uuid.uuid4().hex[:12]}"
    s3_client(s3_server).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["s3", "file"])
def remote_url(request, tmp_path):
    """(url, endpoint or None) of an empty remote: a bucket on the S3 server, or a folder."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_server")
        return f"s3://{request.getfixturevalue('bucket')}/team/vision", endpoint
    return f"file://{tmp_path / 'remote'}", None


# How a remote lays objects out (store/remote.py); a test that sets one means it for every command it runs.
LAYOUT_KNOBS = ("LENSVAULT_PACK_BELOW", "LENSVAULT_PACK_BYTES")


def single_objects(monkeypatch) -> None:
    """Every non-empty object travels singly (``objects/…``), as on a format-1 remote: for tests
    that damage, age or delete one object behind LensVault's back (tests/remotes/raw.py). The
    packed layout has its own such tests (test_packs.py, test_gc.py's packed cases)."""
    monkeypatch.setenv("LENSVAULT_PACK_BELOW", "1")


def lv(*args, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """``lensvault ARGS`` in a subprocess, as a user types it."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_") or k in LAYOUT_KNOBS}
    full.update(CREDENTIALS)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "lensvault.cli.main", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout)


def lv_json(*args, cwd: Path, ok=(0,), env: dict | None = None):
    r = lv(*args, "--json", cwd=cwd, env=env)
    assert r.returncode in ok, r.stdout + r.stderr
    return json.loads(r.stdout)


def remote_args(url: str, endpoint: str | None) -> list[str]:
    return [url, *(["--endpoint-url", endpoint] if endpoint else [])]
