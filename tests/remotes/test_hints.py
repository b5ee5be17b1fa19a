"""Every remote hint works as printed: the command is taken out of the error's text, the
placeholders a user fills are filled, it is run with bash, and it does what it promised."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import lensvault
from lensvault.store.remote import RemoteStore
from tests.cli.hints import printed_hints

from .conftest import CREDENTIALS, LAYOUT_KNOBS, folder_url, lv, lv_json, s3_client


def hint(text: str, start: str, fill: dict[str, str] | None = None) -> str:
    found = [h for h in printed_hints(text) if h.startswith(start)]
    assert found, f"no hint starting {start!r} in:\n{text}"
    cmd = found[0]
    for k, v in (fill or {}).items():
        assert k in cmd, (k, cmd)
        cmd = cmd.replace(k, v)
    return cmd


def sh(command: str, cwd: Path) -> subprocess.CompletedProcess:
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_") or k in LAYOUT_KNOBS} | CREDENTIALS
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_remote_config_hints(tmp_path, bccd_dir):
    v = lensvault.init(tmp_path / "a")
    v.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    v.close()
    cwd = tmp_path / "a"
    r = lv("push", "--all", cwd=cwd)  # no remote yet
    cmd = hint(r.stderr, "lensvault remote add origin", {"s3://BUCKET/PREFIX": folder_url(tmp_path / 'r1')})
    assert sh(cmd, cwd).returncode == 0
    assert lv_json("push", "--all", cwd=cwd)["refs_created"] == ["refs/datasets/bccd/1.0.0"]

    r = lv("push", "--all", "--remote", "backup", cwd=cwd)
    cmd = hint(r.stderr, "lensvault remote add backup", {"URL": folder_url(tmp_path / 'r2')})
    assert sh(cmd, cwd).returncode == 0
    assert lv_json("push", "--all", "--remote", "backup", cwd=cwd)["refs_created"] == ["refs/datasets/bccd/1.0.0"]

    r = lv("remote", "add", "backup", folder_url(tmp_path / 'r3'), cwd=cwd)
    assert r.returncode == 4
    assert sh(hint(r.stderr, "lensvault remote remove"), cwd).returncode == 0
    assert lv("remote", "add", "backup", folder_url(tmp_path / 'r3'), cwd=cwd).returncode == 0


def test_clone_of_an_empty_location_says_to_push_first(tmp_path, bccd_dir):
    v = lensvault.init(tmp_path / "a")
    v.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    v.close()
    url = folder_url(tmp_path / 'r')
    lv_json("remote", "add", "origin", url, cwd=tmp_path / "a")
    r = lv("clone", url, str(tmp_path / "b"), cwd=tmp_path)
    assert r.returncode == 3 and not (tmp_path / "b").exists()
    assert sh(hint(r.stderr, "lensvault push --all"), tmp_path / "a").returncode == 0  # where the data is
    assert lv("clone", url, str(tmp_path / "b"), cwd=tmp_path).returncode == 0


def test_damaged_and_lost_remote_objects_are_replaced_by_check_remote(tmp_path, s3_server, bucket, bccd_dir):
    v = lensvault.init(tmp_path / "a")
    v.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    files = v.dataset("bccd@1.0.0").files()["sha256"].to_pylist()
    v.close()
    url = f"s3://{bucket}/p"
    lv_json("remote", "add", "origin", url, "--endpoint-url", s3_server, cwd=tmp_path / "a")
    lv_json("push", "--all", cwd=tmp_path / "a", env={"LENSVAULT_PACK_BYTES": "200000"})  # several packs
    s3 = s3_client(s3_server)
    packed = RemoteStore(url, endpoint_url=s3_server).packed()
    rotten = files[0]
    lost = next(o for o in files if packed[o].pack != packed[rotten].pack)
    # One byte of a packed object flipped; another object's whole pack (and its index) lost.
    key = f"p/{packed[rotten].pack_key}"
    body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[packed[rotten].entries[rotten][0]] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    for key in (packed[lost].pack_key, packed[lost].index_key):
        s3.delete_object(Bucket=bucket, Key=f"p/{key}")
    # A plain push trusts the refs (the version is complete by construction) and sends nothing.
    assert lv_json("push", "--all", cwd=tmp_path / "a")["objects_sent"] == 0
    r = lv("clone", url, str(tmp_path / "b"), "--endpoint-url", s3_server, cwd=tmp_path)
    # The clone meets the damaged object or one of the lost pack's, whichever it fetches first, and names it.
    named = {rotten, *packed[lost].entries}
    assert r.returncode in (3, 5) and any(o[:12] in r.stderr for o in named), r.stderr
    assert not (tmp_path / "b").exists()
    done = sh(hint(r.stderr, "lensvault push --all --check-remote"), tmp_path / "a")
    assert done.returncode == 0, done.stderr
    r = lv("clone", url, str(tmp_path / "b"), "--endpoint-url", s3_server, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert lv("verify", cwd=tmp_path / "b").returncode == 0
    again = lv_json("push", "--all", "--check-remote", cwd=tmp_path / "a")
    assert again["listed"] and again["objects_sent"] == 0 and again["objects_replaced"] == 0


def test_fetch_and_automatic_fetch_hints(tmp_path, bccd_dir):
    """The hints of a version fetched without its data: each runs as printed and does what it says."""
    import shutil

    src = tmp_path / "src"
    shutil.copytree(bccd_dir / "BCCD", src)
    v = lensvault.init(tmp_path / "a")
    v.snapshot("bccd", src, version="1.0.0")
    v.close()
    url = folder_url(tmp_path / 'r')
    lv_json("remote", "add", "origin", url, cwd=tmp_path / "a")
    lv_json("push", "--all", cwd=tmp_path / "a")
    image = "JPEGImages/BloodImage_00000.jpg"
    for name in ("b", "c"):
        lensvault.init(tmp_path / name).close()
        lv_json("remote", "add", "origin", url, cwd=tmp_path / name)
    b, c = tmp_path / "b", tmp_path / "c"

    # fetch, then verify: the data is only on the remote; `lensvault pull REF` brings it.
    fetched = lv("fetch", cwd=b)
    assert fetched.returncode == 0 and "lensvault pull REF" in fetched.stdout, fetched.stdout
    r = lv("verify", cwd=b)
    assert r.returncode == 0 and "only on remote origin" in r.stdout
    assert sh(hint(r.stdout, "lensvault pull REF", {"REF": "bccd@1.0.0"}), b).returncode == 0
    assert lv_json("verify", cwd=b)["remote_only"] == []

    lv_json("fetch", cwd=c)
    # A --path that selects nothing: the hint lists the version's files.
    r = lv("dataset", "checkout", "bccd@1.0.0", str(tmp_path / "o1"), "--path", "JPEGImages/BloodImage_0000.jpg",
           cwd=c)
    assert r.returncode == 3
    shown = sh(hint(r.stderr, "lensvault dataset show bccd@1.0.0 --files"), c)
    assert shown.returncode == 0 and image in shown.stdout
    # No default remote: the hint adds one, and the checkout then fetches what it needs.
    lv_json("remote", "remove", "origin", cwd=c)
    r = lv("dataset", "checkout", "bccd@1.0.0", str(tmp_path / "o2"), "--path", image, cwd=c)
    assert r.returncode == 3
    assert sh(hint(r.stderr, f"lensvault remote add origin {url} --default"), c).returncode == 0
    assert lv("dataset", "checkout", "bccd@1.0.0", str(tmp_path / "o2"), "--path", image, cwd=c).returncode == 0
    # --no-fetch: the hint pulls the version, after which the checkout needs no network.
    r = lv("dataset", "checkout", "bccd@1.0.0", str(tmp_path / "o3"), "--no-fetch", cwd=c)
    assert r.returncode == 3
    assert sh(hint(r.stderr, "lensvault pull bccd@1.0.0"), c).returncode == 0
    assert lv("dataset", "checkout", "bccd@1.0.0", str(tmp_path / "o3"), "--no-fetch", cwd=c).returncode == 0


def test_push_to_another_remote_of_what_was_fetched_names_where_it_is(tmp_path, remote_url, bccd_dir):
    """A vault that fetched from remote A (records, not data) pushes to remote B: before anything
    is sent, it names what is missing here, that A has it, and the pull that brings it."""
    url, endpoint = remote_url
    a = lensvault.init(tmp_path / "a")
    a.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "x.txt").write_text("x")
    a.snapshot("more", tmp_path / "more", version="1.0.0")
    a.close()
    lv_json("remote", "add", "A", *([url, "--endpoint-url", endpoint] if endpoint else [url]), cwd=a.root)
    lv_json("push", "--all", cwd=a.root)

    b = lensvault.init(tmp_path / "b")
    b.close()
    lv_json("remote", "add", "A", *([url, "--endpoint-url", endpoint] if endpoint else [url]), cwd=b.root)
    lv_json("fetch", cwd=b.root)
    target = folder_url(tmp_path / "B")
    lv_json("remote", "add", "B", target, cwd=b.root)
    r = lv("push", "--all", "--remote", "B", cwd=b.root)
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
    assert "not in this vault, nor on remote B (they are on remote A: fetched there without their data)" in r.stderr
    assert "and the same for" in r.stderr  # both versions need objects from A
    assert not (tmp_path / "B" / "refs").exists() and not (tmp_path / "B" / "packs").exists()  # nothing sent
    as_json = json.loads(lv("push", "--all", "--remote", "B", "--json", cwd=b.root).stdout)
    assert as_json["error"] == "ObjectMissing" and as_json["remotes"] == ["A"]

    first = hint(r.stderr, "lensvault pull ")
    assert first.endswith("--remote A") and first.split()[2] in ("bccd@1.0.0", "more@1.0.0")
    assert sh(first, b.root).returncode == 0
    other = "more@1.0.0" if first.split()[2] == "bccd@1.0.0" else "bccd@1.0.0"
    assert sh(first.replace(first.split()[2], other), b.root).returncode == 0  # "the same for" the other
    pushed = lv_json("push", "--all", "--remote", "B", cwd=b.root)
    assert {"refs/datasets/bccd/1.0.0", "refs/datasets/more/1.0.0"} <= set(pushed["refs_created"])
    assert lv("verify", "--remote", "B", cwd=b.root).returncode == 0
