"""Small objects travel in packs: many objects per remote object, an index per pack, ranged reads.

Requests are counted on the server's side: the S3 server of these tests runs in this process and
logs one line per HTTP request (werkzeug's request log), whichever process sent it."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from pathlib import Path

import pytest

import lensvault
from lensvault.store.remote import RemoteStore

from . import raw
from .conftest import lv, lv_json, remote_args

_LINE = re.compile(r'"(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP/1\.\d" (\d{3})')


class RequestLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[str, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        m = _LINE.search(re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage()))
        if m:
            self.lines.append((m.group(1), m.group(2), m.group(3)))

    def since(self, start: int) -> list[tuple[str, str, str]]:
        return self.lines[start:]


@pytest.fixture
def requests_log(s3_server):
    log = logging.getLogger("werkzeug")
    handler = RequestLog()
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield handler
    log.removeHandler(handler)
    log.setLevel(level)


def _files(root: Path, n: int, size: int = 3000, seed: int = 0) -> Path:
    import random

    rnd = random.Random(seed)
    root.mkdir(parents=True)
    for i in range(n):
        (root / f"img_{i:05d}.jpg").write_bytes(rnd.randbytes(size))
    return root


def _small_packs(monkeypatch, size: int) -> dict:
    monkeypatch.setenv("LENSVAULT_PACK_BYTES", str(size))
    return {"LENSVAULT_PACK_BYTES": str(size)}


def test_packed_push_and_clone_round_trip(tmp_path, remote_url, monkeypatch):
    import obstore

    url, endpoint = remote_url
    env = _small_packs(monkeypatch, 200_000)
    src = _files(tmp_path / "src", 400)
    (src / "weights.bin").write_bytes(os.urandom(5 * 1024 * 1024))  # above the pack threshold: a single object
    v = lensvault.init(tmp_path / "a")
    v.snapshot("frames", src, version="1.0.0")
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=v.root)
    pushed = lv_json("push", "--all", cwd=v.root, env=env)
    needed = v.dataset("frames@1.0.0").object_ids()
    assert pushed["objects_sent"] == len(needed) and pushed["packs_sent"] >= 6

    rs = RemoteStore(url, endpoint_url=endpoint)
    weights = hashlib.sha256((src / "weights.bin").read_bytes()).hexdigest()
    assert set(rs.listing_single()) == {weights}  # every small object and record is in a pack
    packed = rs.packed()
    assert needed - {weights} <= set(packed) and len(rs.packs()) == pushed["packs_sent"]
    assert rs.remote_format() == "lensvault.remote/2"
    # Every index names a pack that is whole: the pack's bytes hash to its name.
    for index in rs.packs().values():
        body = bytes(obstore.get(rs.client, index.pack_key).bytes())
        assert hashlib.sha256(body).hexdigest() == index.pack and len(body) == index.size

    lv_json("clone", *remote_args(url, endpoint), str(tmp_path / "b"), cwd=tmp_path)
    r = lv("verify", cwd=tmp_path / "b")
    assert r.returncode == 0 and "0 missing, 0 corrupt" in r.stdout, r.stdout + r.stderr
    out = tmp_path / "out"
    assert lv("dataset", "checkout", "frames@1.0.0", str(out), cwd=tmp_path / "b").returncode == 0
    for p in src.iterdir():
        assert (out / p.name).read_bytes() == p.read_bytes()

    # A second version pushed, then pulled into the clone: only its new objects come, by ranges.
    for p in sorted(src.iterdir())[:3]:
        p.write_bytes(p.read_bytes() + b"changed")
    v.snapshot("frames", src, version="1.0.1")
    second = lv_json("push", "--all", cwd=v.root, env=env)
    new = v.dataset("frames@1.0.1").object_ids() - needed
    assert second["objects_sent"] == len(new) and second["packs_sent"] == 1 and not second["listed"]
    pulled = lv_json("pull", "frames@1.0.1", cwd=tmp_path / "b")
    assert pulled["objects_fetched"] == len(new) and pulled["bytes_fetched"] == sum(
        v.store.stat(o).size for o in new)
    assert lv("verify", cwd=tmp_path / "b").returncode == 0
    v.close()


def test_request_counts_of_a_packed_push_and_read(tmp_path, s3_server, bucket, requests_log, monkeypatch):
    url = f"s3://{bucket}/vision"
    env = _small_packs(monkeypatch, 500_000)
    src = _files(tmp_path / "src", 1000)  # 3 MB: 6 or 7 packs
    v = lensvault.init(tmp_path / "a")
    v.snapshot("frames", src, version="1.0.0")
    lv_json("remote", "add", "origin", url, "--endpoint-url", s3_server, cwd=v.root)

    start = len(requests_log.lines)
    first = lv_json("push", "--all", cwd=v.root, env=env)
    reqs = requests_log.since(start)
    packs = first["packs_sent"]
    assert first["objects_sent"] == len(v.dataset("frames@1.0.0").object_ids()) > 1000
    assert 6 <= packs <= 8
    # Two PUTs a pack (pack, index); besides: the marker, the journal listing, the listings of
    # objects and packs (more than 64 objects of unknown state), the version's ref (GET, PUT) and
    # journal entries — no request per file.
    assert sum(1 for m, p, _ in reqs if m == "PUT" and "/packs/" in p) == 2 * packs
    assert len(reqs) <= 2 * packs + 12, reqs

    start = len(requests_log.lines)
    again = lv_json("push", "--all", cwd=v.root, env=env)
    assert again["objects_sent"] == 0 and len(requests_log.since(start)) <= 3, requests_log.since(start)

    img = src / "img_00000.jpg"
    img.write_bytes(img.read_bytes() + b"changed")
    v.snapshot("frames", src, version="1.0.1")
    start = len(requests_log.lines)
    one = lv_json("push", "--all", cwd=v.root, env=env)
    reqs = requests_log.since(start)
    assert one["refs_created"] == ["refs/datasets/frames/1.0.1"] and one["packs_sent"] == 1
    assert len(reqs) <= 8, reqs

    # One object from a pack: one ranged GET once the indexes are known.
    rs = RemoteStore(url, endpoint_url=s3_server)
    rs.packs()
    oid = hashlib.sha256((src / "img_00500.jpg").read_bytes()).hexdigest()
    start = len(requests_log.lines)
    data = rs.get_raw(oid)
    assert hashlib.sha256(data).hexdigest() == oid
    assert [m for m, _, _ in requests_log.since(start)] == ["GET"]

    # A clone reads whole packs (it wants all of them): requests in the tens, not per file.
    start = len(requests_log.lines)
    lv_json("clone", url, str(tmp_path / "b"), "--endpoint-url", s3_server, cwd=tmp_path)
    assert len(requests_log.since(start)) <= 4 * packs + 20, requests_log.since(start)
    # The clone kept the indexes (.lensvault/remote-packs/): its next command reads none again.
    assert len(list((tmp_path / "b" / ".lensvault" / "remote-packs").rglob("*.idx"))) == packs + 1
    start = len(requests_log.lines)
    assert lv_json("pull", "frames@1.0.1", cwd=tmp_path / "b")["objects_fetched"] == 0
    reqs = requests_log.since(start)
    assert any("/packs/" in p for _, p, _ in reqs) and not any(p.endswith(".idx") for _, p, _ in reqs), reqs
    v.close()


def _corrupt_range(url: str, endpoint: str | None, key: str, offset: int) -> None:
    """Flip one byte of the remote object ``key`` in place (same size, same name)."""
    data = bytearray(raw.get_key(url, endpoint, key))
    data[offset] ^= 0xFF
    raw.put_key(url, endpoint, key, bytes(data))


def test_a_corrupt_pack_range_is_named_and_not_stored(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    v = lensvault.init(tmp_path / "a")
    v.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=v.root)
    lv_json("push", "--all", cwd=v.root)
    victim = v.dataset("bccd@1.0.0").files()["sha256"].to_pylist()[0]
    index = RemoteStore(url, endpoint_url=endpoint).packed()[victim]
    _corrupt_range(url, endpoint, index.pack_key, index.entries[victim][0] + 10)

    r = lv("clone", *remote_args(url, endpoint), str(tmp_path / "b"), cwd=tmp_path)
    assert r.returncode == 5 and victim[:12] in r.stderr and "corrupt" in r.stderr, r.stderr
    assert index.pack_key in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()
    c = lensvault.init(tmp_path / "c")
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=c.root)
    r = lv("pull", "bccd@1.0.0", cwd=c.root)
    assert r.returncode == 5 and victim[:12] in r.stderr and not c.store.has(victim)
    assert lv_json("dataset", "list", cwd=c.root) == []

    # The printed fix works: --check-remote reads the packed copies back and sends the damaged one singly.
    fixed = lv_json("push", "--all", "--check-remote", cwd=v.root)
    assert fixed["objects_replaced"] == 1
    pulled = lv_json("pull", "bccd@1.0.0", cwd=c.root)
    assert pulled["added"]["dataset_versions"] == 1 and c.store.check(victim) == "ok"
    v.close()
    c.close()


def test_repack_writes_new_packs_first_and_a_reader_with_old_indexes_still_reads(tmp_path, remote_url, monkeypatch):
    url, endpoint = remote_url
    monkeypatch.setenv("LENSVAULT_PACK_BYTES", "60000")
    rs = RemoteStore(url, endpoint_url=endpoint)
    rs.create()
    blobs = [os.urandom(2000 + i) for i in range(120)]
    oids = [hashlib.sha256(b).hexdigest() for b in blobs]
    for start in range(0, 120, 30):
        rs.put_pack(list(zip(oids[start:start + 30], blobs[start:start + 30], strict=True)))
    reader, bulk = RemoteStore(url, endpoint_url=endpoint), RemoteStore(url, endpoint_url=endpoint)
    before = reader.packs()
    bulk.packs()
    assert len(before) == 4
    keep = set(oids[::2])

    assert rs.repack(keep.__contains__, grace_seconds=3600) == {
        "packs_removed": 0, "packs_written": 0, "objects_dropped": 0, "objects_kept": 0, "bytes_freed": 0}
    stats = rs.repack(keep.__contains__, grace_seconds=0)
    assert stats["packs_removed"] == 4 and stats["objects_dropped"] == 60 and stats["objects_kept"] == 60
    after = RemoteStore(url, endpoint_url=endpoint).packs()
    assert not set(after) & set(before)
    assert set(RemoteStore(url, endpoint_url=endpoint).listing()) == keep
    # Readers that listed the packs before the repack: their packs are gone, they find the new ones.
    for oid, blob in zip(oids, blobs, strict=True):
        if oid in keep:
            assert reader.get_raw(oid) == blob
    got: dict[str, bytes] = {}
    bulk.read_packed(sorted(keep), lambda ix, items: got.update((o, bytes(d)) for o, d in items))
    assert got == {o: b for o, b in zip(oids, blobs, strict=True) if o in keep}


def test_a_format_1_remote_is_read_and_an_unknown_format_refused(tmp_path, remote_url, bccd_dir, monkeypatch):
    import obstore

    import lensvault.store.remote as remote_mod
    from lensvault.remotes.config import add_remote
    from lensvault.remotes.push import push

    url, endpoint = remote_url
    v = lensvault.init(tmp_path / "a")
    src = tmp_path / "src"
    shutil.copytree(bccd_dir / "BCCD", src)
    v.snapshot("bccd", src, version="1.0.0")
    add_remote(v, "origin", url, endpoint_url=endpoint)
    with monkeypatch.context() as m:  # a remote as format 1 wrote it: one object per file, no packs
        m.setattr(remote_mod, "PACK_BELOW", 0)
        push(v, [], everything=True)
    rs = RemoteStore(url, endpoint_url=endpoint)
    obstore.put(rs.client, "lensvault-remote.json", b'{"format": "lensvault.remote/1"}\n')
    assert rs.packs() == {} and len(rs.listing_single()) > 40

    lv_json("clone", *remote_args(url, endpoint), str(tmp_path / "b"), cwd=tmp_path)
    assert lv("verify", cwd=tmp_path / "b").returncode == 0
    (src / "more.txt").write_text("more")
    v.snapshot("bccd", src, version="1.0.1")
    assert lv_json("push", "--all", cwd=v.root)["packs_sent"] == 1
    assert RemoteStore(url, endpoint_url=endpoint).remote_format() == "lensvault.remote/2"
    pulled = lv_json("pull", "bccd@1.0.1", cwd=tmp_path / "b")
    assert pulled["added"]["dataset_versions"] == 1

    obstore.put(rs.client, "lensvault-remote.json", b'{"format": "lensvault.remote/9"}\n')
    r = lv("clone", *remote_args(url, endpoint), str(tmp_path / "c"), cwd=tmp_path)
    assert r.returncode == 9 and "lensvault.remote/9" in r.stderr and "upgrade LensVault" in r.stderr, r.stderr
    r = lv("push", "--all", cwd=v.root)
    assert r.returncode == 9 and "lensvault.remote/9" in r.stderr
    v.close()


def test_reads_of_a_pack_are_the_fewest_requests_for_not_many_more_bytes():
    from lensvault.store.packs import PackIndex, plan_reads

    mb = 1024 * 1024
    index = PackIndex("p" * 64, 40 * mb, {"a" * 64: (0, 1000), "b" * 64: (mb // 2, 1000),
                                         "c" * 64: (20 * mb, 1000), "d" * 64: (30 * mb, 10 * mb)})
    # Near ranges merge into one request; far ones stay apart (the gap would cost more than a request).
    assert plan_reads(index, ["a" * 64, "b" * 64]) == [(0, mb // 2 + 1000)]
    assert plan_reads(index, ["a" * 64, "c" * 64]) == [(0, 1000), (20 * mb, 20 * mb + 1000)]
    # One wanted object is one range, however large; half the pack or more in ranges: the whole pack.
    assert plan_reads(index, ["d" * 64]) == [(30 * mb, 40 * mb)]
    assert plan_reads(index, ["a" * 64, "d" * 64]) == [(0, 1000), (30 * mb, 40 * mb)]
    n = 6 * mb // 5  # five 1.2 MB objects, 1.2 MB apart: five ranges, or the whole pack
    step = 2 * n
    many = PackIndex("q" * 64, 10 * n, {f"{i:064x}": (i * step, n) for i in range(5)})
    assert plan_reads(many, list(many.entries)) == [(0, 10 * n)]
    assert plan_reads(many, list(many.entries)[:2]) == [(0, n), (step, step + n)]


def test_a_large_object_streams_in_parts_and_is_not_sent_twice(tmp_path, s3_server, bucket, requests_log,
                                                                monkeypatch):
    """An object above LARGE goes up as a multipart upload (bounded memory: a conditional put would
    hold the whole body), after one HEAD says it is absent; a second vault with the same bytes
    sends nothing for it. The bytes come back whole and hash-checked."""
    import lensvault.store.remote as remote_mod

    monkeypatch.setattr(remote_mod, "LARGE", 1 << 20)
    monkeypatch.setattr(remote_mod, "PART_BYTES", 5 << 20)  # S3's smallest part
    url = f"s3://{bucket}/big"
    src = tmp_path / "src"
    src.mkdir()
    (src / "clip.bin").write_bytes(os.urandom(12 << 20))  # three parts
    (src / "a.jpg").write_bytes(b"a small one")
    big = hashlib.sha256((src / "clip.bin").read_bytes()).hexdigest()
    v = lensvault.init(tmp_path / "a")
    v.snapshot("clips", src, version="1.0.0")
    v.add_remote("origin", url, endpoint_url=s3_server)
    start = len(requests_log.lines)
    v.push(all=True)
    key = f"objects/{big[:2]}/{big[2:]}"
    on_big = [(m, p) for m, p, _ in requests_log.since(start) if key in p]
    assert on_big[0][0] == "HEAD"
    assert sum(1 for m, p in on_big if m == "PUT" and "partNumber=" in p) == 3
    assert not any(m == "PUT" and "partNumber=" not in p for m, p in on_big)  # never one PUT of the whole
    v.close()

    w = lensvault.init(tmp_path / "b")
    shutil.copytree(src, tmp_path / "src2")
    w.snapshot("clips", tmp_path / "src2", version="1.0.0")
    w.add_remote("origin", url, endpoint_url=s3_server)
    start = len(requests_log.lines)
    w.push(all=True)
    assert [m for m, p, _ in requests_log.since(start) if key in p] == ["HEAD"]
    w.close()

    lv_json("clone", url, str(tmp_path / "c"), "--endpoint-url", s3_server, cwd=tmp_path)
    out = tmp_path / "out"
    assert lv("dataset", "checkout", "clips@1.0.0", str(out), cwd=tmp_path / "c").returncode == 0
    assert hashlib.sha256((out / "clip.bin").read_bytes()).hexdigest() == big


def test_pieces_of_a_pack_read_hold_every_wanted_object_whole_and_stay_small():
    """The rule of bounded pack reads, on random packs: every wanted object is in exactly one piece,
    inside that piece's ranges; a piece above the limit holds a single object; nothing outside the pack."""
    import random

    from lensvault.store.packs import PackIndex, plan_reads
    from lensvault.store.remote import _pieces

    rnd = random.Random(7)
    for _ in range(2000):
        entries, off = {}, 0
        for j in range(rnd.randint(1, 50)):
            n = rnd.choice([0, rnd.randint(1, 3000), rnd.randint(1, 30000)])
            entries[f"{j:064x}"] = (off, n)
            off += n
        index = PackIndex(pack="0" * 64, size=off, entries=entries)
        wanted = rnd.sample(sorted(entries), rnd.randint(1, len(entries)))
        limit = rnd.choice([1000, 5000, 20000])
        pieces = _pieces(index, wanted, plan_reads(index, [o for o in wanted if entries[o][1]]), limit)
        got = [o for _, objects in pieces for o in objects]
        assert sorted(got) == sorted(wanted)
        for ranges, objects in pieces:
            assert all(0 <= s < e <= off for s, e in ranges)
            for o in objects:
                s0, n = entries[o]
                assert n == 0 or any(s <= s0 and s0 + n <= e for s, e in ranges)
            if sum(e - s for s, e in ranges) > limit:
                assert len([o for o in objects if entries[o][1]]) == 1


def test_a_clone_reads_a_big_pack_a_piece_at_a_time(tmp_path, s3_server, bucket, requests_log, monkeypatch):
    import lensvault.store.remote as remote_mod
    from lensvault.vault import clone_vault

    env = _small_packs(monkeypatch, 2_000_000)
    monkeypatch.setattr(remote_mod, "READ_BYTES", 300_000)
    src = _files(tmp_path / "src", 400, size=4000)  # 1.6 MB: one pack
    v = lensvault.init(tmp_path / "a")
    v.snapshot("frames", src, version="1.0.0")
    lv_json("remote", "add", "origin", f"s3://{bucket}/pieces", "--endpoint-url", s3_server, cwd=v.root)
    assert lv_json("push", "--all", cwd=v.root, env=env)["packs_sent"] == 1
    v.close()
    start = len(requests_log.lines)
    clone_vault(f"s3://{bucket}/pieces", tmp_path / "b", endpoint_url=s3_server)
    pack_gets = [p for m, p, _ in requests_log.since(start) if m == "GET" and p.endswith(".pack")]
    assert len(pack_gets) >= 1_600_000 // 300_000  # a piece at a time, not the whole pack in one body
    out = tmp_path / "out"
    assert lv("dataset", "checkout", "frames@1.0.0", str(out), cwd=tmp_path / "b").returncode == 0
    assert all((out / p.name).read_bytes() == p.read_bytes() for p in src.iterdir())
