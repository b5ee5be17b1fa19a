"""`lensvault status --remote`: what is not pushed and not pulled, the same facts in both outputs,
from listings of the remote's journal and refs (not a request per record)."""

from __future__ import annotations

import shutil
from pathlib import Path

import lensvault

from . import raw
from .conftest import folder_url, lv, lv_json, remote_args
from .test_hints import hint, sh


def _named(st: dict, side: str) -> set[tuple[str, str]]:
    return {(x["kind"], x["name"]) for x in st[side] if x["name"] is not None}


def _status(cwd: Path, *extra: str) -> tuple[dict, str, int]:
    data = lv_json("status", "--remote", *extra, cwd=cwd, ok=(0, 1))
    human = lv("status", "--remote", *extra, cwd=cwd)
    # The human output says what the JSON says: every name (of the first 20), and the verdict.
    for side in ("not_pushed", "not_pulled", "conflicts"):
        for x in data[side][:20]:
            assert (x["name"] or x["kind"]) in human.stdout, (x, human.stdout)
    if not data["in_sync"]:
        assert (f"{len(data['not_pushed'])} not pushed, {len(data['not_pulled'])} not pulled, "
                f"{len(data['conflicts'])} conflict(s)") in human.stdout
    assert (f"Also {data['events_not_pushed']} event batch" in human.stdout) == bool(data["events_not_pushed"])
    assert ("in sync" in human.stdout) == data["in_sync"]
    assert human.returncode == (0 if data["in_sync"] else 1)
    return data, human.stdout, human.returncode


def test_status_after_push_pull_and_a_partial_pull(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    src = tmp_path / "src"
    shutil.copytree(bccd_dir / "BCCD", src)
    a = lensvault.init(tmp_path / "a")
    a.snapshot("bccd", src, version="1.0.0")
    (src / "extra.txt").write_text("more\n")
    a.snapshot("bccd", src, version="1.1.0")
    a.close()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=a.root)

    st, human, code = _status(a.root)
    assert code == 1 and not st["in_sync"]
    assert _named(st, "not_pushed") == {("dataset version", "bccd@1.0.0"), ("dataset version", "bccd@1.1.0")}
    assert st["not_pulled"] == [] and "lensvault push --all --remote origin" in human

    lv_json("push", "bccd@1.0.0", cwd=a.root)
    st, _, _ = _status(a.root, "origin")
    assert _named(st, "not_pushed") == {("dataset version", "bccd@1.1.0")}
    st, human, _ = _status(a.root)
    assert sh(hint(human, "lensvault push --all --remote origin"), a.root).returncode == 0  # as printed
    st, _, code = _status(a.root)
    assert st["in_sync"] and code == 0 and st["not_pushed"] == st["not_pulled"] == []

    b = lensvault.init(tmp_path / "b")
    b.close()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=b.root)
    st, human, _ = _status(b.root)
    assert _named(st, "not_pulled") == {("dataset version", "bccd@1.0.0"), ("dataset version", "bccd@1.1.0")}
    assert "lensvault pull REF --remote origin" in human
    lv_json("pull", "bccd@1.0.0", cwd=b.root)  # a partial pull: the older version only
    st, _, _ = _status(b.root)
    assert _named(st, "not_pulled") == {("dataset version", "bccd@1.1.0")}
    st, human, _ = _status(b.root)
    assert sh(hint(human, "lensvault pull REF --remote origin", {"REF": "bccd@1.1.0"}), b.root).returncode == 0
    st, _, _ = _status(b.root)
    assert st["not_pulled"] == []
    # What b has that the remote lacks: only its own event batches (its pulls), which push --all sends.
    assert st["in_sync"] and st["not_pushed"] == [] and st["events_not_pushed"] >= 1
    lv_json("push", "--all", cwd=b.root)
    assert _status(b.root)[0]["events_not_pushed"] == 0
    assert _status(a.root)[0]["not_pulled"] == []  # b's events are b's history: not a's to pull


def test_status_reads_no_record_of_the_remote(tmp_path, remote_url, bccd_dir):
    """Listings of journal/ and refs/ only: with every object gone from the remote, status still
    answers (and still sees what is pushed) — it never asked for a record."""
    url, endpoint = remote_url
    a = lensvault.init(tmp_path / "a")
    a.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    a.close()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=a.root)
    lv_json("push", "--all", cwd=a.root)
    for oid in raw.oids(url, endpoint):
        raw.delete(url, endpoint, oid)
    st, _, code = _status(a.root)
    assert st["in_sync"] and code == 0


def test_status_of_runs_models_configs_and_aliases(tmp_path, remote_url):
    from lineage.conftest import git

    from .test_share import _story

    url, endpoint = remote_url
    story = _story(tmp_path / "a")
    a, b = story.root, tmp_path / "b"
    story.vault.close()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=a)
    st, _, _ = _status(a)
    kinds = {x["kind"] for x in st["not_pushed"]}
    assert {"dataset version", "model version", "config", "run", "evaluation", "alias"} <= kinds
    assert ("alias", "detector@production") in _named(st, "not_pushed")
    assert next(x for x in st["not_pushed"] if x["kind"] == "alias")["to"] == "1.2.0"
    assert {x["name"] for x in st["not_pushed"] if x["kind"] == "run"} == {story.ids[r] for r in ("run1", "run2", "run3")}
    lv_json("push", "--all", cwd=a)
    assert _status(a)[0]["in_sync"]

    git("clone", "-q", str(a), str(b), cwd=tmp_path)
    lv_json("clone", *remote_args(url, endpoint), str(b), cwd=tmp_path)
    assert _status(b)[0]["in_sync"]
    # a moves the alias back and pushes; b has not seen that move.
    lv_json("model", "rollback", "detector", "production", "--reason", "hotfix regressed", cwd=a)
    st, _, _ = _status(a)
    assert [(x["kind"], x["name"], x["to"]) for x in st["not_pushed"] if x["kind"] == "alias"] == \
        [("alias", "detector@production", "1.1.0")]
    lv_json("push", "--all", cwd=a)
    st, _, _ = _status(b)
    assert _named(st, "not_pulled") == {("alias", "detector@production")}
    assert st["not_pushed"] == []
    lv_json("pull", "detector@production", cwd=b)
    st, _, _ = _status(b)  # b's alias now points where the remote's does (by a move of b's own)
    assert st["not_pulled"] == [] and not any(x["kind"] == "alias" for x in st["not_pushed"])

    # Both move it since they agreed (a pushes first): for b it is one conflict, with both targets,
    # in neither list — a push would lose the race and a pull would undo b's decision.
    lv_json("model", "promote", "detector@1.2.0", "production", "--reason", "a: hotfix fixed", cwd=a)
    lv_json("push", "--all", cwd=a)
    lv_json("model", "promote", "detector@1.0.0", "production", "--reason", "b: back to the first", cwd=b)
    st, human, code = _status(b)
    assert st["conflicts"] == [{"kind": "alias", "name": "detector@production", "here": "1.0.0", "remote": "1.2.0"}]
    assert not any(x["kind"] == "alias" for x in st["not_pushed"] + st["not_pulled"]) and code == 1
    assert "0 not pushed, 0 not pulled, 1 conflict(s)" in human
    assert "alias  detector@production: 1.0.0 here, 1.2.0 on the remote" in human
    assert lv("push", "--all", cwd=b).returncode == 4  # (what the conflict says: the push loses)
    assert _status(a)[0]["in_sync"]  # a's move is on the remote; b's is b's own until pushed
    assert sh(hint(human, "lensvault pull detector@production --remote"), b).returncode == 0
    assert _status(b)[0]["in_sync"]
    assert lv_json("model", "show", "detector@production", cwd=b)["version"] == "1.2.0"
    # b decides again, after seeing a's move: now it is only not pushed, with where it points.
    lv_json("model", "promote", "detector@1.0.0", "production", "--reason", "b: decided again", cwd=b)
    st, _, _ = _status(b)
    assert st["conflicts"] == [] and [(x["name"], x["to"]) for x in st["not_pushed"]] == [("detector@production", "1.0.0")]
    # … and a, which has not seen b's move once b pushed it, has it not pulled, with the remote's target.
    lv_json("push", "--all", cwd=b)
    st, _, _ = _status(a)
    assert st["conflicts"] == [] and [(x["name"], x["to"]) for x in st["not_pulled"]] == [("detector@production", "1.0.0")]


def test_a_version_made_here_and_there_with_other_content_is_a_conflict(tmp_path, remote_url, vault, bccd_dir):
    url, endpoint = remote_url
    a = lensvault.init(tmp_path / "a")
    a.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=a.root)
    lv_json("push", "--all", cwd=a.root)
    a.close()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "x.txt").write_text("made here\n")
    vault.snapshot("bccd", mine, version="1.0.0")
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=vault.root)
    st, human, code = _status(vault.root)
    ours = vault.dataset("bccd@1.0.0")
    assert [(c["kind"], c["name"], c["remote"] != c["here"]) for c in st["conflicts"]] == \
        [("dataset version", "bccd@1.0.0", True)] and code == 1
    assert st["not_pushed"] == [] and "0 not pushed, 0 not pulled, 1 conflict(s)" in human
    assert "dataset version  bccd@1.0.0: record" in human and ours.ref == "bccd@1.0.0"


def test_long_lists_say_how_many_more(tmp_path):
    url = folder_url(tmp_path / 'r')
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    v = lensvault.init(tmp_path / "a")
    for i in range(23):
        v.snapshot(f"set{i:02d}", src, version="1.0.0")
    v.close()
    lv_json("remote", "add", "origin", url, cwd=v.root)
    st, human, _ = _status(v.root)
    assert len(st["not_pushed"]) == 23
    shown = [ln for ln in human.splitlines() if ln.startswith("  dataset version")]
    assert len(shown) == 20 and "… and 3 more (all of them: --json)" in human


def test_status_remote_takes_no_folder(tmp_path):
    v = lensvault.init(tmp_path / "a")
    v.close()
    r = lv("status", "--remote", "origin", "some/folder", cwd=v.root)
    assert r.returncode == 2 and "takes no REF or DIRECTORY" in r.stderr
    r = lv("status", "--remote", cwd=v.root)
    assert r.returncode == 3 and "no default remote" in r.stderr and "lensvault remote add" in r.stderr


class _CountingProxy:
    """An HTTP proxy in front of the S3 server that counts the requests going through it."""

    def __init__(self, upstream: str) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlparse

        up = urlparse(upstream)
        self.requests: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                proxy.requests.append((self.command, self.path))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
                conn.request(self.command, self.path, body=body or None, headers=dict(self.headers))
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_status_costs_the_same_requests_however_long_the_history(tmp_path, s3_server, bucket):
    """Two listings (journal/, refs/) whatever the number of records: 2 versions or 25, the same count."""
    proxy = _CountingProxy(s3_server)
    try:
        url = f"s3://{bucket}/p"
        src = tmp_path / "src"
        src.mkdir()
        v = lensvault.init(tmp_path / "a")
        v.add_remote("origin", url, endpoint_url=proxy.url)
        counts = []
        for n in (2, 25):
            while len(v.datasets()) < n:
                (src / f"f{len(v.datasets())}.txt").write_text("x\n")
                v.snapshot(f"set{len(v.datasets()):02d}", src, version="1.0.0")
            v.push(all=True)
            proxy.requests.clear()
            assert v.remote_status().in_sync
            counts.append(list(proxy.requests))
        assert len(counts[0]) == len(counts[1]) == 2, counts
        assert all(method == "GET" and "list-type=2" in path for method, path in counts[1])
        v.close()
    finally:
        proxy.close()
