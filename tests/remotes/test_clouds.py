"""Remotes on the clouds' own object stores, against their emulators over HTTP on a random loopback
port: az:// on Azurite (Azure Storage's emulator; tests/remotes/conftest.py starts it). Credentials
reach the client the way they do for users: AZURE_STORAGE_ACCOUNT_NAME/KEY in the environment.

Every test of tests/remotes that takes ``remote_url`` runs on Azurite too (push, pull, clone, packs,
gc, status, verify, kill -9 and Ctrl-C, racing pushes, the alias compare-and-swap, two machines
promoting at once); this file has what is particular to a cloud: its layout read with its own SDK,
uploads in blocks, its credentials and a missing container.

gs:// has no such test: no GCS emulator that installs from the package registries accepts
object_store's uploads (docs/remotes.md says which and why); `remote add gs://…` says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading

import pytest

import lensvault
from lensvault.errors import RemoteConflict, RemoteError
from lensvault.store.remote import RemoteStore

from .conftest import CREDENTIALS, azure_client, lv, lv_json, remote_args


@pytest.fixture(params=["az"])
def cloud_url(request):
    """(url, endpoint) of an empty remote on a cloud's emulator: a container on Azurite."""
    endpoint = request.getfixturevalue("azurite_server")
    return f"az://{request.getfixturevalue('container')}/team/vision", endpoint


def _blobs(url: str, endpoint: str) -> list[str]:
    """The names under the remote's prefix, read with the cloud's own SDK (not LensVault's client)."""
    container, _, prefix = url[len("az://"):].partition("/")
    names = azure_client(endpoint).get_container_client(container).list_blobs(name_starts_with=prefix + "/")
    return [b.name[len(prefix) + 1:] for b in names]


def _tree_digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_push_clone_checkout_status_and_verify_through_the_cloud(tmp_path, cloud_url, bccd_dir, monkeypatch):
    url, endpoint = cloud_url
    monkeypatch.setenv("LENSVAULT_PACK_BYTES", str(256 * 1024))  # several packs out of 47 images
    src = tmp_path / "src"
    shutil.copytree(bccd_dir / "BCCD", src)
    (src / "weights.bin").write_bytes(os.urandom(33 * 1024 * 1024))  # one large object: sent in blocks
    a = lensvault.init(tmp_path / "a")
    a.snapshot("bccd", src, version="1.0.0")
    a.close()
    added = lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=a.root)
    assert added["url"] == url and added["endpoint_url"] == endpoint and added["note"] is None
    pushed = lv_json("push", "--all", cwd=a.root)
    assert pushed["refs_created"] == ["refs/datasets/bccd/1.0.0"] and pushed["objects_sent"] > 47
    names = _blobs(url, endpoint)
    assert "lensvault-remote.json" in names and "refs/datasets/bccd/1.0.0" in names
    assert sum(n.endswith(".pack") for n in names) >= 2 and sum(n.endswith(".idx") for n in names) >= 2
    big = hashlib.sha256((src / "weights.bin").read_bytes()).hexdigest()
    assert f"objects/{big[:2]}/{big[2:]}" in names  # a large file travels alone
    # Nothing is written to the vault's config but where: the key stays in the environment.
    assert CREDENTIALS["AZURE_STORAGE_ACCOUNT_KEY"] not in (a.root / ".lensvault" / "config.toml").read_text()

    b = tmp_path / "b"
    cloned = lv_json("clone", *remote_args(url, endpoint), str(b), cwd=tmp_path)
    assert cloned["restored"]["dataset_versions"] == 1 and not cloned["unproven"]
    r = lv("dataset", "checkout", "bccd@1.0.0", str(tmp_path / "out"), cwd=b)
    assert r.returncode == 0, r.stdout + r.stderr
    out = _tree_digest(tmp_path / "out")
    assert {k: out[k] for k in out if not k.startswith(".lensvault")} == _tree_digest(src)
    for side in (a.root, b):
        st = lv_json("status", "--remote", cwd=side)
        assert st["in_sync"] and st["not_pushed"] == st["not_pulled"] == [], st
        ok = lv_json("verify", "--remote", "--hash", cwd=side)
        assert ok["ok"] and ok["hashed"] and ok["missing"] == ok["corrupt"] == [] and ok["checked"] > 47

    # A second version: only its difference travels, and the other vault sees it is behind.
    (src / "extra.txt").write_text("more\n")
    a = lensvault.open(tmp_path / "a")
    a.snapshot("bccd", src, version="1.0.1")
    a.close()
    second = lv_json("push", "bccd@1.0.1", cwd=a.root)
    assert second["refs_created"] == ["refs/datasets/bccd/1.0.1"] and 0 < second["objects_sent"] < 10
    st = lv_json("status", "--remote", cwd=b, ok=(1,))
    assert [x["name"] for x in st["not_pulled"]] == ["bccd@1.0.1"]
    lv_json("pull", "bccd@1.0.1", cwd=b)
    assert lv_json("status", "--remote", cwd=b)["in_sync"]


def test_write_once_refs_and_objects_are_never_overwritten(tmp_path, cloud_url):
    url, endpoint = cloud_url
    rs = RemoteStore(url, endpoint_url=endpoint)
    rs.create()
    assert rs.put_ref("refs/datasets/bccd/1.0.0", b"a" * 64, exclusive=True)
    assert not rs.put_ref("refs/datasets/bccd/1.0.0", b"b" * 64, exclusive=True)  # If-None-Match: *
    assert rs.get_ref("refs/datasets/bccd/1.0.0") == b"a" * 64
    body = os.urandom(40 * 1024 * 1024)  # large enough to go up in blocks: the condition holds there too
    oid = hashlib.sha256(body).hexdigest()
    path = tmp_path / "big"
    path.write_bytes(body)
    assert rs.put_object(oid, str(path))
    path.write_bytes(b"other bytes under the same name")
    assert not rs.put_object(oid, str(path))
    assert hashlib.sha256(rs.get_raw(oid)).hexdigest() == oid


def test_bad_credentials_and_a_missing_container_say_what_where_and_how(tmp_path, azurite_server, container,
                                                                       bccd_dir):
    v = lensvault.init(tmp_path / "a")
    v.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    v.close()
    url = f"az://{container}/p"
    lv_json("remote", "add", "origin", url, "--endpoint-url", azurite_server, cwd=v.root)
    wrong = "A" * 4 + CREDENTIALS["AZURE_STORAGE_ACCOUNT_KEY"][4:]
    r = lv("push", "--all", cwd=v.root, env={"AZURE_STORAGE_ACCOUNT_KEY": wrong})
    assert r.returncode == 9 and "refused our credentials" in r.stderr, r.stderr
    assert url in r.stderr and "AZURE_STORAGE_ACCOUNT_KEY" in r.stderr and "Traceback" not in r.stderr
    assert _blobs(url, azurite_server) == []  # nothing was written

    env = {k: val for k, val in os.environ.items() if not k.startswith(("LENSVAULT_", "AZURE_"))}
    r = subprocess.run([sys.executable, "-m", "lensvault.cli.main", "push", "--all"], cwd=v.root, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 9 and "no Azure storage account is named" in r.stderr, r.stderr
    assert "AZURE_STORAGE_ACCOUNT_NAME" in r.stderr and "Traceback" not in r.stderr

    missing = f"az://no-such-{container}/p"
    r = lv("remote", "add", "gone", missing, "--endpoint-url", azurite_server, cwd=v.root)  # refused when added
    assert r.returncode == 9 and "the container does not exist" in r.stderr and "create the container" in r.stderr
    lv_json("remote", "add", "gone", missing, "--endpoint-url", azurite_server, "--no-check", cwd=v.root)
    r = lv("push", "--all", "--remote", "gone", cwd=v.root)
    assert r.returncode == 9 and "the container does not exist" in r.stderr and missing in r.stderr, r.stderr
    assert "create the container" in r.stderr and "Traceback" not in r.stderr
    r = lv("clone", missing, str(tmp_path / "x"), "--endpoint-url", azurite_server, cwd=tmp_path)
    assert r.returncode == 9 and "the container does not exist" in r.stderr and not (tmp_path / "x").exists()
    with pytest.raises(RemoteError, match="container does not exist"):
        RemoteStore(missing, endpoint_url=azurite_server).open_for_push()


def test_adding_a_gs_remote_says_it_is_untested(tmp_path):
    lensvault.init(tmp_path / "v").close()
    # (--no-check: no GCS server here; tests/remotes/test_config.py has the check)
    added = lv_json("remote", "add", "gcs", "gs://bucket/vision", "--no-check", cwd=tmp_path / "v")
    assert "not run them against a GCS server" in added["note"]
    human = lv("remote", "add", "gcs2", "gs://bucket/other", "--no-check", cwd=tmp_path / "v")
    assert human.returncode == 0 and "Note: gs:// remotes" in human.stdout and "verify --remote --hash" in human.stdout
    for url in ("s3://bucket/p", "az://container/p", "file:///mnt/share/lv"):
        assert lv_json("remote", "add", url.split(":")[0] + "x", url, "--no-check", cwd=tmp_path / "v")["note"] is None
    assert "note" not in (tmp_path / "v" / ".lensvault" / "config.toml").read_text()


class _GcsWire:
    """A plain HTTP server that answers a few GCS XML-API requests for one ref and records every
    request's headers: what LensVault's client sends to a gs:// remote, read off the wire. (No GCS
    emulator installs from the package registries and accepts object_store's uploads; see docs.)"""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.generation = 7
        wire = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("ETag", f'"e{wire.generation}"')
                self.send_header("x-goog-generation", str(wire.generation))
                self.send_header("Last-Modified", "Mon, 30 Nov 2026 06:00:00 GMT")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                wire.requests.append(("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
                self._answer(200, b"a" * 64)

            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                wire.requests.append(("PUT", self.path, headers))
                if headers.get("x-goog-if-generation-match") != str(wire.generation):
                    self._answer(412)  # the object exists (create-if-absent), or moved since it was read
                    return
                wire.generation += 1
                self._answer(200)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_gs_ref_writes_are_conditional_on_the_generation(tmp_path, monkeypatch):
    """On gs://, create-if-absent sends x-goog-if-generation-match: 0 and a compare-and-swap the
    generation it read (object_store refuses a GCS conditional update named by its ETag alone)."""
    import json
    from urllib.parse import unquote

    wire = _GcsWire()
    account = tmp_path / "service-account.json"  # object_store's documented emulator account: no OAuth
    account.write_text(json.dumps({"gcs_base_url": wire.url, "disable_oauth": True, "client_email": "",
                                   "private_key": "", "private_key_id": ""}))
    monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT", str(account))
    try:
        rs = RemoteStore("gs://bucket-x/team", endpoint_url=wire.url)  # --endpoint-url is GCS's base URL
        with pytest.raises(RemoteConflict):
            rs.swap_ref("refs/aliases/detector/production", b"b" * 64, None)
        assert wire.requests[-1][2]["x-goog-if-generation-match"] == "0"
        data, tag = rs.get_ref_tagged("refs/aliases/detector/production")
        assert data == b"a" * 64
        rs.swap_ref("refs/aliases/detector/production", b"c" * 64, tag)
        method, path, headers = wire.requests[-1]
        assert method == "PUT" and headers["x-goog-if-generation-match"] == "7"
        assert unquote(path) == "/bucket-x/team/refs/aliases/detector/production"
        with pytest.raises(RemoteConflict):  # the generation moved on: the stale tag loses
            rs.swap_ref("refs/aliases/detector/production", b"d" * 64, tag)
    finally:
        wire.server.shutdown()
