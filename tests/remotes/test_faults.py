"""Faults on the way to and from a remote: each a clear error (what, where, fix), nothing lost,
no ref on the remote naming something incomplete, and the same command run again finishes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import lensvault
from lensvault.errors import RemoteConflict
from lensvault.store.remote import RemoteStore

from . import raw
from .conftest import CREDENTIALS, folder_url, lv, lv_json, remote_args, s3_client


def _many_files(root: Path, n: int, size: int = 2048) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        (root / f"img_{i:05d}.bin").write_bytes(os.urandom(size))
    return root


def _remote_keys(url: str, endpoint: str | None, prefix: str) -> list[str]:
    return raw.keys(url, endpoint, prefix)


_PACK = re.compile(r"packs/([0-9a-f]{64})\.(pack|idx)$")


def _packs_on(url: str, endpoint: str | None) -> tuple[set[str], set[str]]:
    """(packs, indexes) on the remote by name; temp files of a killed writer are not either."""
    packs, indexes = set(), set()
    for key in _remote_keys(url, endpoint, "packs/"):
        m = _PACK.search(key)
        if m:
            (packs if m.group(2) == "pack" else indexes).add(m.group(1))
    return packs, indexes


def _packed_objects(url: str, endpoint: str | None) -> set[str]:
    """What a reader finds in packs; and every index it trusts names a whole pack."""
    import hashlib

    import obstore

    rs = RemoteStore(url, endpoint_url=endpoint)
    for index in rs.packs().values():
        body = bytes(obstore.get(rs.client, index.pack_key).bytes())
        assert hashlib.sha256(body).hexdigest() == index.pack and len(body) == index.size
    return set(rs.packed())


def _push_until_packs(v, url, endpoint, n_packs: int, jobs: int, **popen):
    env = {k: val for k, val in os.environ.items() if not k.startswith("LENSVAULT_")} | CREDENTIALS
    env["LENSVAULT_PACK_BYTES"] = "40000"  # ~20 files a pack: many packs, so that one is cut midway
    proc = subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", "push", "--all", "--jobs", str(jobs)],
                            cwd=v.root, env=env, **popen)
    deadline = time.monotonic() + 120
    while len(_packs_on(url, endpoint)[1]) < n_packs:
        assert proc.poll() is None, "the push ended before it could be stopped"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc


def test_killed_push_leaves_no_ref_and_pushing_again_completes(tmp_path, remote_url):
    url, endpoint = remote_url
    src = _many_files(tmp_path / "src", 2500)
    v = lensvault.init(tmp_path / "a")
    v.snapshot("frames", src, version="1.0.0")
    needed = v.dataset("frames@1.0.0").object_ids()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=v.root)
    proc = _push_until_packs(v, url, endpoint, 5, 1, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    packs, indexes = _packs_on(url, endpoint)
    assert indexes <= packs  # no index names a pack that is not whole (a pack may lack its index)
    present = _packed_objects(url, endpoint) & needed
    assert 5 * 15 <= len(present) < len(needed)
    # Nothing names the half-sent version: no ref, no journal entry.
    assert _remote_keys(url, endpoint, "refs/") == [] and _remote_keys(url, endpoint, "journal/") == []
    r = lv("clone", *remote_args(url, endpoint), str(tmp_path / "early"), cwd=tmp_path)
    assert r.returncode == 0 and json.loads(lv("dataset", "list", "--json", cwd=tmp_path / "early").stdout) == []

    again = lv_json("push", "--all", cwd=v.root)
    assert again["listed"] and again["objects_present"] >= len(present)
    assert again["objects_sent"] <= len(needed) - len(present)  # only what was missing
    assert again["refs_created"] == ["refs/datasets/frames/1.0.0"]
    lv_json("clone", *remote_args(url, endpoint), str(tmp_path / "b"), cwd=tmp_path)
    r = lv("verify", cwd=tmp_path / "b")
    assert r.returncode == 0 and "0 missing, 0 corrupt" in r.stdout, r.stdout
    v.close()


def test_ctrl_c_stops_a_push_at_once_and_pushing_again_completes(tmp_path, remote_url):
    url, endpoint = remote_url
    src = _many_files(tmp_path / "src", 1500)
    v = lensvault.init(tmp_path / "a")
    v.snapshot("frames", src, version="1.0.0")
    needed = v.dataset("frames@1.0.0").object_ids()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=v.root)
    proc = _push_until_packs(v, url, endpoint, 3, 2, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Interrupted" in err and "Traceback" not in err, err
    packs, indexes = _packs_on(url, endpoint)
    assert indexes <= packs
    present = _packed_objects(url, endpoint) & needed
    assert len(present) < len(needed)  # queued packs were dropped, not sent after the Ctrl-C
    assert _remote_keys(url, endpoint, "refs/") == [] and _remote_keys(url, endpoint, "journal/") == []
    again = lv_json("push", "--all", cwd=v.root)
    assert again["refs_created"] == ["refs/datasets/frames/1.0.0"]
    assert again["objects_sent"] <= len(needed) - len(present)
    v.close()


def _two_vaults_same_name(tmp_path, bccd_dir, *, same: bool):
    import shutil

    out = []
    for name in ("a", "c"):
        src = tmp_path / f"src-{name}"
        shutil.copytree(bccd_dir / "BCCD", src)
        if not same:
            (src / "whose.txt").write_text(name)
        v = lensvault.init(tmp_path / name)
        v.snapshot("bccd", src, version="1.0.0")
        out.append(v)
    return out


def test_the_same_version_pushed_from_two_vaults(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    a, c = _two_vaults_same_name(tmp_path / "same", bccd_dir, same=True)
    for v in (a, c):
        lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=v.root)
    assert lv_json("push", "--all", cwd=a.root)["refs_created"] == ["refs/datasets/bccd/1.0.0"]
    second = lv_json("push", "--all", cwd=c.root)  # identical content: fine, and said so
    assert second["same_content"] == ["refs/datasets/bccd/1.0.0"] and second["refs_created"] == []

    url2 = url + "-other" if endpoint else folder_url(tmp_path / 'remote-other')
    a2, c2 = _two_vaults_same_name(tmp_path / "diff", bccd_dir, same=False)
    for v in (a2, c2):
        lv_json("remote", "add", "origin", *remote_args(url2, endpoint), cwd=v.root)
    lv_json("push", "--all", cwd=a2.root)
    r = lv("push", "--all", cwd=c2.root)
    theirs, ours = a2.dataset("bccd@1.0.0").record.snapshot_id, c2.dataset("bccd@1.0.0").record.snapshot_id
    assert r.returncode == 4 and "bccd@1.0.0 on the remote is other content" in r.stderr
    assert theirs[:12] in r.stderr and ours[:12] in r.stderr and "fix:" in r.stderr
    for v in (a, c, a2, c2):
        v.close()


def test_racing_pushes_of_different_content_one_wins_the_other_is_told(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    a, c = _two_vaults_same_name(tmp_path, bccd_dir, same=False)
    for v in (a, c):
        lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=v.root)
    env = {k: val for k, val in os.environ.items() if not k.startswith("LENSVAULT_")} | CREDENTIALS
    procs = [subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", "push", "--all"], cwd=v.root, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for v in (a, c)]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 4], results
    loser = next(err for code, err in results if code == 4)
    assert "other content" in loser or "moved on the remote" in loser
    # The remote's ref names the winner's record, whole: a clone reads it back.
    lv_json("clone", *remote_args(url, endpoint), str(tmp_path / "b"), cwd=tmp_path)
    assert lv("verify", cwd=tmp_path / "b").returncode == 0
    for v in (a, c):
        v.close()


def test_alias_compare_and_swap_has_exactly_one_winner(tmp_path, remote_url):
    url, endpoint = remote_url
    rs = RemoteStore(url, endpoint_url=endpoint)
    rs.create()
    rs.swap_ref("refs/aliases/detector/production", b"a" * 64, None)
    _, etag = rs.get_ref_tagged("refs/aliases/detector/production")
    wins, losses = [], []
    barrier = threading.Barrier(8)

    def promote(i: int) -> None:
        barrier.wait()
        try:
            rs.swap_ref("refs/aliases/detector/production", str(i).encode() * 64, etag)
            wins.append(i)
        except RemoteConflict as e:
            losses.append(e)

    threads = [threading.Thread(target=promote, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    assert rs.get_ref("refs/aliases/detector/production") == str(wins[0]).encode() * 64
    assert "read the ref again" in losses[0].fix
    with pytest.raises(RemoteConflict):  # create-if-absent on a ref that exists
        rs.swap_ref("refs/aliases/detector/production", b"b" * 64, None)


def test_unreachable_server_missing_bucket_and_corrupt_objects_are_clear(tmp_path, s3_server, bucket, bccd_dir):
    v = lensvault.init(tmp_path / "a")
    v.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    # Refused when added (tests/remotes/test_config.py); added unchecked, a push says the same.
    r = lv("remote", "add", "down", "s3://b/p", "--endpoint-url", "http://127.0.0.1:9", cwd=v.root)
    assert r.returncode == 9 and "cannot be reached" in r.stderr and "--no-check" in r.stderr
    lv_json("remote", "add", "down", "s3://b/p", "--endpoint-url", "http://127.0.0.1:9", "--no-check", cwd=v.root)
    lv_json("remote", "add", "nobucket", f"s3://no-such-bucket-{bucket}/p", "--endpoint-url", s3_server,
            "--no-check", cwd=v.root)
    lv_json("remote", "add", "origin", f"s3://{bucket}/p", "--endpoint-url", s3_server, "--default", cwd=v.root)
    r = lv("push", "--all", "--remote", "down", cwd=v.root)
    assert r.returncode == 9 and "cannot be reached" in r.stderr and "Traceback" not in r.stderr
    r = lv("push", "--all", "--remote", "nobucket", cwd=v.root)
    assert r.returncode == 9 and "bucket does not exist" in r.stderr and "Traceback" not in r.stderr
    r = lv("clone", f"s3://no-such-bucket-{bucket}/p", str(tmp_path / "x"), "--endpoint-url", s3_server, cwd=tmp_path)
    # (the marker is read with a GET, whose answer names the missing bucket)
    assert r.returncode == 9 and "bucket does not exist" in r.stderr and not (tmp_path / "x").exists()
    r = lv("clone", f"s3://{bucket}/nothing-here", str(tmp_path / "x"), "--endpoint-url", s3_server, cwd=tmp_path)
    assert r.returncode == 3 and "not a LensVault remote" in r.stderr and not (tmp_path / "x").exists()

    big = tmp_path / "big"
    big.mkdir()
    (big / "weights.bin").write_bytes(os.urandom(5 * 1024 * 1024))  # a single object (packs: test_packs.py)
    v.snapshot("weights", big, version="1.0.0")
    lv_json("push", "--all", cwd=v.root)
    victim = v.dataset("weights@1.0.0").files()["sha256"].to_pylist()[0]
    key = f"p/objects/{victim[:2]}/{victim[2:]}"
    s3_client(s3_server).put_object(Bucket=bucket, Key=key, Body=b"rotten bytes")
    r = lv("clone", f"s3://{bucket}/p", str(tmp_path / "b"), "--endpoint-url", s3_server, cwd=tmp_path)
    assert r.returncode == 5 and victim[:12] in r.stderr and "corrupt" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()  # a failed clone leaves nothing
    s3_client(s3_server).delete_object(Bucket=bucket, Key=key)  # a ref now names a missing object
    r = lv("clone", f"s3://{bucket}/p", str(tmp_path / "b"), "--endpoint-url", s3_server, cwd=tmp_path)
    assert r.returncode == 3 and victim[:12] in r.stderr and "missing" in r.stderr and "Traceback" not in r.stderr
    # Pull into an existing vault: the corrupt object is named and never stored.
    s3_client(s3_server).put_object(Bucket=bucket, Key=key, Body=b"rotten bytes")
    c = lensvault.init(tmp_path / "c")
    lv_json("remote", "add", "origin", f"s3://{bucket}/p", "--endpoint-url", s3_server, cwd=c.root)
    r = lv("pull", "weights@1.0.0", cwd=c.root)
    assert r.returncode == 5 and victim[:12] in r.stderr and not c.store.has(victim)
    assert lv_json("dataset", "list", cwd=c.root) == []
    # A pack deleted on the remote: what its index named is missing, and said so.
    rs = RemoteStore(f"s3://{bucket}/p", endpoint_url=s3_server)
    packed = v.dataset("bccd@1.0.0").files()["sha256"].to_pylist()[0]
    s3_client(s3_server).delete_object(Bucket=bucket, Key=f"p/{rs.packed()[packed].pack_key}")
    r = lv("pull", "bccd@1.0.0", cwd=c.root)
    assert r.returncode == 3 and "missing" in r.stderr and "Traceback" not in r.stderr, r.stderr
    v.close()
    c.close()


def test_wrong_credentials_are_named(tmp_path, s3_server, bucket, bccd_dir):
    import urllib.request

    v = lensvault.init(tmp_path / "a")
    v.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    lv_json("remote", "add", "origin", f"s3://{bucket}/p", "--endpoint-url", s3_server, cwd=v.root)
    # From here on the server checks signatures against its IAM users (none has these keys).
    req = urllib.request.Request(f"{s3_server}/moto-api/reset-auth", data=b"0", method="POST",
                                 headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(req).read()
    try:
        r = lv("push", "--all", cwd=v.root, env={"AWS_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG", "AWS_SECRET_ACCESS_KEY": "x"})
    finally:
        req = urllib.request.Request(f"{s3_server}/moto-api/reset-auth", data=b"inf", method="POST",
                                     headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(req).read()
    assert r.returncode == 9 and "refused our credentials" in r.stderr and "AWS_ACCESS_KEY_ID" in r.stderr, r.stderr
    v.close()


def test_uploads_carry_their_sha256_for_the_server_to_check(tmp_path):
    """What goes over the wire, read by a plain socket server: the body's sha256 in x-amz-checksum-sha256
    (a server that checks it refuses bytes damaged in transit) and If-None-Match: * (write-once)."""
    import base64
    import hashlib
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = srv.accept()
        got.append(conn.recv(65536))
        conn.sendall(b'HTTP/1.1 200 OK\r\nETag: "x"\r\nContent-Length: 0\r\n\r\n')
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    rs = RemoteStore("s3://bucket-x/p", endpoint_url=f"http://127.0.0.1:{srv.getsockname()[1]}")
    oid = rs.put_bytes(b"an image's bytes")
    t.join(10)
    srv.close()
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.decode().partition(":") for line in got[0].split(b"\r\n\r\n")[0].split(b"\r\n")[1:])}
    assert got[0].startswith(f"PUT /bucket-x/p/objects/{oid[:2]}/{oid[2:]} ".encode())
    assert headers["x-amz-checksum-sha256"] == base64.b64encode(hashlib.sha256(b"an image's bytes").digest()).decode()
    assert headers["if-none-match"] == "*"


def test_a_refs_age_and_place_come_from_the_remote(tmp_path, remote_url):
    # gc asks the store (not a local path) how old an unfinished write's intent is.
    url, endpoint = remote_url
    rs = RemoteStore(url, endpoint_url=endpoint)
    rs.create()
    assert rs.ref_age("refs/aliases/detector/staging") is None
    rs.swap_ref("refs/aliases/detector/staging", b"b" * 64, None)
    age = rs.ref_age("refs/aliases/detector/staging")
    assert age is not None and 0 <= age < 600
    assert rs.ref_location("refs/aliases/detector/staging").startswith(url.rstrip("/"))
