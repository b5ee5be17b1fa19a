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

# Azurite's one account and its published key (the emulator's documented development credentials).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
               "AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT, "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY}


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


def _azurite_bin() -> str | None:
    """Azurite's blob server as scripts/with-azurite.sh installed it (``make test`` exports its path)."""
    found = os.environ.get("LENSVAULT_TEST_AZURITE")
    if found:
        return found
    here = Path(__file__).resolve().parents[2] / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    return str(here) if here.exists() else None


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory):
    """Azurite's blob endpoint (``http://127.0.0.1:PORT/devstoreaccount1``): Azure Storage's emulator,
    started on a random loopback port, kept in memory, stopped after the session."""
    import re
    import time

    binary = _azurite_bin()
    if binary is None:
        pytest.skip("AZURITE IS NOT INSTALLED: the az:// remote tests did not run. `make test` installs it "
                    "(scripts/with-azurite.sh, from npm); it said why it could not")
    workdir = tmp_path_factory.mktemp("azurite")
    log = open(workdir / "out.log", "w+")  # noqa: SIM115 - read while the server runs, closed after it
    proc = subprocess.Popen([binary, "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence",
                             "--silent", "--skipApiVersionCheck", "--disableTelemetry"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    deadline = time.monotonic() + 120
    port = None
    while port is None:
        log.seek(0)
        m = re.search(r"listens on http://127\.0\.0\.1:(\d+)", log.read())
        if m:
            port = int(m.group(1))
        elif proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.seek(0)
            raise RuntimeError(f"Azurite did not start: {log.read()[-2000:]}")
        else:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def azure_client(endpoint: str):
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient(account_url=endpoint,
                             credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY})


@pytest.fixture
def container(azurite_server) -> str:
    name = f"lv-{uuid.uuid4().hex[:12]}"
    azure_client(azurite_server).create_container(name)
    return name


@pytest.fixture(autouse=True)
def _credentials(monkeypatch):
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    for k in [k for k in os.environ if k.startswith("LENSVAULT_") and k not in ("LENSVAULT_TEST_PG_URL", "LENSVAULT_TEST_AZURITE")]:
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


@pytest.fixture(params=["s3", "az", "file"])
def remote_url(request, tmp_path):
    """(url, endpoint or None) of an empty remote: a bucket on the S3 server, a container on Azurite,
    or a folder."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_server")
        return f"s3://{request.getfixturevalue('bucket')}/team/vision", endpoint
    if request.param == "az":
        endpoint = request.getfixturevalue("azurite_server")
        return f"az://{request.getfixturevalue('container')}/team/vision", endpoint
    return folder_url(tmp_path / "remote"), None


def folder_url(path: Path) -> str:
    """A file:// remote's URL, its folder made (a remote's folder must exist, as a bucket must)."""
    path.mkdir(parents=True, exist_ok=True)
    return f"file://{path}"


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
