"""The REST API against a live server: the CLI's JSON, paging, object bytes, thumbnails, and
refusals that are statuses (401/403/404/422), never a traceback."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from tests.cli.conftest import lv, lv_json
from tests.server.conftest import bearer, log_in


def test_reads_answer_what_the_cli_prints_with_json(server, client, tokens, world, runs):
    """One code path: each route's body is the ``--json`` of the same command."""
    first, second = runs
    pairs = {
        "/api/v1/datasets": ["dataset", "list"],
        "/api/v1/datasets/shapes/versions": ["dataset", "log", "shapes"],
        "/api/v1/datasets/shapes/versions/1.0.1": ["dataset", "show", "shapes@1.0.1"],
        "/api/v1/datasets/shapes/versions/1.0.1?files=true": ["dataset", "show", "shapes@1.0.1", "--files"],
        "/api/v1/datasets/shapes/diff/1.0.0/1.0.1": ["dataset", "diff", "shapes@1.0.0", "shapes@1.0.1"],
        "/api/v1/datasets/files/diff/1.0.0/1.1.0": ["dataset", "diff", "files@1.0.0", "files@1.1.0"],
        "/api/v1/configs/C-01/diff/C-02": ["config", "diff", "C-01", "C-02"],
        f"/api/v1/runs/{first}?points=true": ["runs", "show", first, "--points"],
        f"/api/v1/runs/compare/{first}/{second}": ["runs", "compare", first, second],
        "/api/v1/models/det@1.1.0": ["model", "show", "det@1.1.0"],
        "/api/v1/lineage/det@1.0.0": ["lineage", "det@1.0.0"],
        "/api/v1/evaluations": ["evals"],
    }
    for path, args in pairs.items():
        r = client.get(server + path, headers=bearer(tokens.reader))
        assert r.status_code == 200, (path, r.text)
        printed = lv(*args, "--json", cwd=world)
        assert printed.returncode == 0, printed.stderr
        assert r.json() == json.loads(printed.stdout), path


def test_openapi_document_lists_the_routes(server, client, tokens):
    r = client.get(server + "/api/v1/openapi.json", headers=bearer(tokens.reader))
    assert r.status_code == 200
    paths = r.json()["paths"]
    for p in ("/api/v1/datasets/{name}/versions/{version}/images", "/api/v1/objects/{oid}",
              "/api/v1/datasets/{name}/versions/{version}/files",
              "/api/v1/models/{name}/aliases/{alias}/promote", "/api/v1/lineage/{ref}", "/api/v1/events"):
        assert p in paths
    assert not any(p.startswith("/datasets") for p in paths)  # pages are not API


@pytest.mark.parametrize("ref", ["files/versions/1.1.0", "shapes/versions/1.0.1"])
def test_file_pages_are_the_file_list_a_page_at_a_time(server, client, tokens, ref):
    """Pages of 7 (the last one short) are ``?files=true``'s list, which is sent as it is read."""
    whole = client.get(f"{server}/api/v1/datasets/{ref}", params={"files": "true"}, headers=bearer(tokens.reader))
    assert whole.status_code == 200 and whole.headers["content-type"] == "application/json"
    every = whole.json()["file_list"]
    seen, after, pages = [], 0, 0
    while after is not None:
        r = client.get(f"{server}/api/v1/datasets/{ref}/files", params={"limit": 7, "after": after},
                       headers=bearer(tokens.reader))
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["files"] == len(every) and page["after"] == after and len(page["file_list"]) <= 7
        seen += page["file_list"]
        after, pages = page["next"], pages + 1
    assert seen == every and pages == -(-len(every) // 7)
    past = client.get(f"{server}/api/v1/datasets/{ref}/files", params={"after": len(every)},
                      headers=bearer(tokens.reader)).json()
    assert past["file_list"] == [] and past["next"] is None
    for bad in ({"limit": 0}, {"limit": 1001}, {"after": -1}):
        assert client.get(f"{server}/api/v1/datasets/{ref}/files", params=bad,
                          headers=bearer(tokens.reader)).status_code == 422
    assert client.get(f"{server}/api/v1/datasets/{ref}/files").status_code == 401


def test_image_pages_cover_every_image_once_and_filter(server, client, tokens, world):
    import lensvault

    url = server + "/api/v1/datasets/shapes/versions/1.0.1/images"
    seen, after = [], 0
    while True:
        page = client.get(url, params={"limit": 5, "after": after}, headers=bearer(tokens.reader)).json()
        seen += [i["image_id"] for i in page["items"]]
        assert len(page["items"]) <= 5
        if page["next"] is None:
            assert page["truncated"] is False
            break
        assert page["truncated"] is True
        after = page["next"]
    with lensvault.open(world) as vault:
        images = vault.dataset("shapes@1.0.1").images()
        annotations = vault.dataset("shapes@1.0.1").annotations()
    assert sorted(seen) == seen == sorted(images["image_id"].to_pylist())
    assert page["total"] == images.num_rows

    full = client.get(url, params={"limit": 500}, headers=bearer(tokens.reader)).json()
    assert sum(len(i["annotations"]) for i in full["items"]) == annotations.num_rows

    by_class = client.get(url, params={"class": "circle", "limit": 500}, headers=bearer(tokens.reader)).json()
    assert by_class["items"] and by_class["filters"] == {"class": "circle"}
    assert all(any(a["class"] == "circle" for a in i["annotations"]) for i in by_class["items"])
    assert by_class["total"] == sum(1 for i in full["items"] if any(a["class"] == "circle" for a in i["annotations"]))

    train = client.get(url, params={"split": "train", "limit": 500}, headers=bearer(tokens.reader)).json()
    assert train["total"] == images["split"].to_pylist().count("train")
    assert {i["split"] for i in train["items"]} == {"train"}

    tagged = client.get(url, params={"tag": "time_of_day=night", "limit": 500}, headers=bearer(tokens.reader)).json()
    assert all(i["tags"]["time_of_day"] == "night" for i in tagged["items"])
    assert tagged["total"] == sum(1 for i in full["items"] if i["tags"].get("time_of_day") == "night")

    one = full["items"][0]
    detail = client.get(f"{url}/{one['image_id']}", headers=bearer(tokens.reader)).json()
    assert detail["path"] == one["path"] and len(detail["annotations"]) == len(one["annotations"])
    assert all("attributes" in a and "difficult" in a for a in detail["annotations"])


def _an_image(client, server, tokens) -> dict:
    page = client.get(server + "/api/v1/datasets/shapes/versions/1.0.1/images", params={"limit": 1},
                      headers=bearer(tokens.reader)).json()
    return page["items"][0]


def test_object_bytes_are_immutable_with_ranges(server, client, tokens):
    img = _an_image(client, server, tokens)
    url = f"{server}/api/v1/objects/{img['sha256']}"
    r = client.get(url, headers=bearer(tokens.reader))
    assert r.status_code == 200
    body = r.content
    assert hashlib.sha256(body).hexdigest() == img["sha256"]
    assert r.headers["etag"] == f'"{img["sha256"]}"'
    assert "immutable" in r.headers["cache-control"] and "max-age=31536000" in r.headers["cache-control"]
    assert r.headers["content-type"] == "image/png" and r.headers["accept-ranges"] == "bytes"

    for spec, want, first, last in (("bytes=0-9", body[:10], 0, 9), ("bytes=10-", body[10:], 10, len(body) - 1),
                                    ("bytes=-7", body[-7:], len(body) - 7, len(body) - 1),
                                    (f"bytes=5-{len(body) + 50}", body[5:], 5, len(body) - 1)):
        part = client.get(url, headers={**bearer(tokens.reader), "Range": spec})
        assert part.status_code == 206, spec
        assert part.content == want, spec
        assert part.headers["content-range"] == f"bytes {first}-{last}/{len(body)}"
    for bad in (f"bytes={len(body)}-", "bytes=9-3", "bytes=abc", "items=0-1"):
        refused = client.get(url, headers={**bearer(tokens.reader), "Range": bad})
        assert refused.status_code == 416, bad
        assert refused.headers["content-range"] == f"bytes */{len(body)}"
    again = client.get(url, headers={**bearer(tokens.reader), "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_thumbnails_are_made_once(server, client, tokens, world):
    from PIL import Image

    img = _an_image(client, server, tokens)
    url = f"{server}/api/v1/objects/{img['sha256']}/thumbnail"
    cached = world / ".lensvault" / "cache" / "thumbnails" / img["sha256"][:2] / f"{img['sha256']}-128.jpg"
    cached.unlink(missing_ok=True)
    r = client.get(url, params={"size": 128}, headers=bearer(tokens.reader))
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(r.content)) as im:
        assert max(im.size) <= 128 and im.size[0] / im.size[1] == pytest.approx(img["width"] / img["height"], rel=0.05)
    made = cached.stat()
    r2 = client.get(url, params={"size": 128}, headers=bearer(tokens.reader))
    assert r2.content == r.content
    assert cached.stat().st_mtime_ns == made.st_mtime_ns and cached.stat().st_ino == made.st_ino
    assert client.get(url, params={"size": 99}, headers=bearer(tokens.reader)).status_code == 422


@pytest.mark.parametrize("path, status", [
    ("/api/v1/objects/not-a-hash", 422),
    ("/api/v1/objects/" + "A" * 64, 422),                   # upper case is not how oids are written
    ("/api/v1/objects/" + "0" * 63, 422),
    ("/api/v1/objects/" + "0" * 64, 404),
    ("/api/v1/objects/" + "0" * 64 + "/thumbnail", 404),
    ("/api/v1/objects/..%2F..%2F..%2Fetc%2Fpasswd", 404),   # an encoded slash makes another path: no route
    ("/api/v1/objects/%2E%2E", 422),
    ("/api/v1/objects/../../etc/passwd", 404),
    ("/api/v1/datasets/..%2Fshapes/versions", 404),
    ("/api/v1/datasets/shapes/versions/..%2F..%2Fconfig.toml", 404),
    ("/api/v1/datasets/shapes/versions/9.9.9", 404),
    ("/api/v1/datasets/shapes/versions/not-a-version", 404),  # read as an alias datasets lack
    ("/api/v1/datasets/shapes/versions/1.0.1/images/999999", 404),
    ("/api/v1/datasets/shapes/versions/1.0.1/images/abc", 422),
    ("/api/v1/datasets/shapes/versions/1.0.1/images?class=unicorn", 404),
    ("/api/v1/datasets/shapes/versions/1.0.1/images?limit=100000", 422),
    ("/api/v1/datasets/files/versions/1.0.0/images", 422),  # no annotations: a usage error, said so
    ("/api/v1/models/det@9.9.9", 404),
    ("/api/v1/runs/no-such-run", 404),
    ("/api/v1/lineage/nothing@1.0.0", 404),
    ("/api/v1/nowhere", 404),
])
def test_bad_paths_are_statuses_not_tracebacks(server, client, tokens, path, status):
    r = client.get(server + path, headers=bearer(tokens.reader))
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] and body["what"] and "Traceback" not in r.text
    assert "root:" not in r.text  # never bytes from outside the store


def test_tokens_and_roles(server, client, tokens, world):
    url = server + "/api/v1/datasets"
    assert client.get(url).status_code == 401
    assert client.get(url).headers["www-authenticate"] == "Bearer"
    for header in (bearer(tokens.revoked), bearer(tokens.reader[:-1] + ("A" if tokens.reader[-1] != "A" else "B")),
                   bearer("lvt_0000000000000000_" + "x" * 43), bearer("nonsense"), {"Authorization": "Basic abc"},
                   {"Authorization": "Bearer"}):
        r = client.get(url, headers=header)
        assert r.status_code == 401, header
        assert r.json()["error"] == "Unauthorized"
    assert client.get(url, headers=bearer(tokens.reader)).status_code == 200
    # The fix every 401 gives works as printed, and its token opens the door.
    from tests.cli.conftest import sh
    from tests.cli.hints import printed_hints

    hint = printed_hints(client.get(url).json()["fix"])[0]
    made = sh(hint.replace("NAME", "from-hint") + " --json", world)
    assert made.returncode == 0, made.stderr
    assert client.get(url, headers=bearer(json.loads(made.stdout)["token"])).status_code == 200
    assert client.get(server + "/api/v1/whoami", headers=bearer(tokens.writer)).json() == {
        "user": "writer@example.com", "role": "write", "token_id": tokens.writer.split("_")[1],
        "token_name": "ci-writer"}

    promote = server + "/api/v1/models/det/aliases/production/promote"
    # A reader may not write, a writer may not collect garbage: 403, and nothing moved.
    r = client.post(promote, json={"version": "1.0.0"}, headers=bearer(tokens.reader))
    assert r.status_code == 403 and "write role" in r.json()["what"]
    assert client.post(server + "/api/v1/gc", json={}, headers=bearer(tokens.writer)).status_code == 403
    assert client.post(server + "/api/v1/gc", json={}, headers=bearer(tokens.revoked)).status_code == 401
    plan = client.post(server + "/api/v1/gc", json={}, headers=bearer(tokens.admin))
    assert plan.status_code == 200 and "objects" in json.dumps(plan.json())
    assert client.post(promote, json={"version": "1.0.0"}).status_code == 401


def test_promote_and_rollback_are_recorded_as_the_tokens_user(server, client, tokens):
    promote = server + "/api/v1/models/det/aliases/production/promote"
    before = client.get(server + "/api/v1/models/det@production", headers=bearer(tokens.reader)).json()["version"]
    target = "1.0.0" if before != "1.0.0" else "1.1.0"
    r = client.post(promote, json={"version": target, "reason": "api test"}, headers=bearer(tokens.writer))
    assert r.status_code == 200, r.text
    move = r.json()
    assert (move["from"], move["to"], move["who"], move["why"]) == (before, target, "writer@example.com", "api test")
    assert client.get(server + "/api/v1/models/det@production", headers=bearer(tokens.reader)).json()["version"] == target
    back = client.post(server + "/api/v1/models/det/aliases/production/rollback", json={"reason": "undo"},
                       headers=bearer(tokens.writer))
    assert back.status_code == 200 and back.json()["to"] == before and back.json()["who"] == "writer@example.com"
    events = client.get(server + "/api/v1/events", params={"subject": "det", "limit": 2},
                        headers=bearer(tokens.reader)).json()
    assert [e["actor"] for e in events] == ["writer@example.com", "writer@example.com"]
    history = client.get(server + "/api/v1/models/det/history", headers=bearer(tokens.reader)).json()
    assert history[-1]["who"] == "writer@example.com" and history[-1]["action"] == "rollback"

    # Refusals of the library are statuses too: an alias the model never had needs `new`.
    r = client.post(server + "/api/v1/models/det/aliases/prodution/promote", json={"version": "1.0.0"},
                    headers=bearer(tokens.writer))
    assert r.status_code in (404, 422) and r.json()["fix"]
    assert '"new": true' in r.json()["fix"] and "--new" not in r.json()["fix"], r.json()  # the API's words
    r = client.post(promote, json={}, headers=bearer(tokens.writer))
    assert r.status_code == 422 and r.json()["error"] == "UsageError"


def test_public_read_opens_reads_only(public_server, client, tokens):
    assert client.get(public_server + "/api/v1/datasets").status_code == 200
    assert client.get(public_server + "/api/v1/whoami").json()["user"] == "anonymous"
    r = client.post(public_server + "/api/v1/models/det/aliases/production/promote", json={"version": "1.0.0"})
    assert r.status_code == 403
    # A token that is presented is still checked.
    assert client.get(public_server + "/api/v1/datasets", headers=bearer(tokens.revoked)).status_code == 401


def test_browser_session_cookie_and_csrf(server, client, tokens):
    import re

    from lensvault.server.auth import csrf_of

    forged = client.post(server + "/login", data={"token": tokens.writer, "next": "/"})
    assert forged.status_code == 403 and "set-cookie" not in forged.headers  # not from our form
    form = client.get(server + "/login")
    login_csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    assert "HttpOnly" in form.headers["set-cookie"]
    wrong = client.post(server + "/login", data={"token": tokens.writer, "csrf": login_csrf + "x"})
    assert wrong.status_code == 403
    refused = client.post(server + "/login", data={"token": tokens.revoked, "next": "/", "csrf": login_csrf})
    assert refused.status_code == 401 and "set-cookie" not in refused.headers
    r = client.post(server + "/login", data={"token": tokens.writer, "next": "https://evil.example/",
                                             "csrf": login_csrf})
    assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    session = {"Cookie": f"lensvault_session={r.cookies['lensvault_session']}"}
    form = server + "/models/det/promote"
    no_csrf = client.post(form, data={"version": "1.0.0", "alias": "production"}, headers=session)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["what"]
    wrong = client.post(form, data={"version": "1.0.0", "alias": "production", "csrf": csrf_of(tokens.reader)},
                        headers=session)
    assert wrong.status_code == 403
    # JSON writes with only the cookie need the header too; a bearer token needs none.
    api = server + "/api/v1/models/det/aliases/production/rollback"
    assert client.post(api, json={}, headers=session).status_code == 403
    # The client kept the cookie of the login above: the session works; without it, the
    # browser is sent to log in.
    assert client.get(server + "/datasets/shapes/1.0.1", headers={"Accept": "text/html"}).status_code == 200
    client.cookies.clear()
    page = client.get(server + "/datasets/shapes/1.0.1", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")


def test_every_page_renders_for_every_kind_of_subject(server, client, tokens, runs):
    """Each page once, on versions with and without annotations, runs, models, configs: HTML, 200."""
    first, second = runs
    session = {"Cookie": f"lensvault_session={log_in(server, tokens.reader)}", "Accept": "text/html"}
    pages = {
        "/": "Recent events", "/datasets/shapes": "diff with 1.0.0", "/datasets/files/1.1.0": "files only",
        "/datasets/shapes/1.0.1?split=train&class_name=circle": "image-grid",
        "/datasets/shapes/1.0.1/images/1": "annotations", "/datasets/files/diff/1.0.0/1.1.0": "renamed-020.txt",
        "/datasets/shapes/diff/1.0.0/1.0.1?page=1": "Images with changed boxes", "/runs": "compare-form",
        "/runs?status=succeeded&dataset=shapes@1.0.1": second, f"/runs/{first}": "Metric curves",
        f"/runs/compare?run={first}&run={second}": "Config differences", "/models/det": "History",
        "/models/det/1.1.0": "Release notes", "/lineage/C-01": "Lineage of C-01",
        f"/lineage/{first}?direction=down": "det@1.0.0", "/why/det@1.0.0/det@1.1.0": "Likeliest causes first",
    }
    for path, expected in pages.items():
        r = client.get(server + path, headers=session)
        assert r.status_code == 200, (path, r.text[-2000:])
        assert r.headers["content-type"].startswith("text/html") and expected in r.text, path
    for path, status in (("/runs/compare?run=" + first, 422), ("/models/nothing", 404),
                         ("/datasets/shapes/9.9.9", 404), ("/datasets/shapes/1.0.1/images/999999", 404)):
        r = client.get(server + path, headers=session)
        assert r.status_code == status and "Traceback" not in r.text and 'id="error-what"' in r.text, path


def test_a_busy_node_is_drawn_a_page_at_a_time(sqlite_vault, client):
    """The lineage page and API page the runs below a node as `lensvault lineage` does: the newest
    50, a line with how many more and a link that draws them all; the API's JSON with ``limit`` is
    that of ``--limit N --json``, and without it every run."""
    from tests.lineage.test_lineage_paging import HOT, N, _fill
    from tests.server.conftest import Server

    ids = _fill(sqlite_vault)  # N = 57 runs on HOT, oldest first
    s = Server(sqlite_vault.root, "--public-read")
    try:
        page = client.get(s.url + f"/lineage/{HOT}", params={"direction": "down"}, headers={"Accept": "text/html"})
        every = client.get(s.url + f"/lineage/{HOT}", params={"direction": "down", "all": 1},
                           headers={"Accept": "text/html"})
        api = client.get(s.url + f"/api/v1/lineage/{HOT}", params={"direction": "down", "limit": 5}).json()
        whole = client.get(s.url + f"/api/v1/lineage/{HOT}", params={"direction": "down"}).json()
        bad = [client.get(s.url + f"/api/v1/lineage/{HOT}", params={"limit": v}).status_code for v in (0, "x")]
    finally:
        log = s.stop()
    assert "Traceback" not in log
    assert page.status_code == 200 and f"the newest 50 of {N} runs drawn, … and {N - 50} more" in page.text
    assert "all=1" in page.text
    assert [r for r in ids if r in page.text] == ids[-50:]  # the newest 50
    assert every.status_code == 200 and all(r in every.text for r in ids) and "more ·" not in every.text
    assert api == lv_json("lineage", HOT, "--down", "--limit", "5", cwd=sqlite_vault.root)
    assert [(o["type"], o["shown"], o["total"]) for o in api["omitted"]] == [("run", 5, N), ("evaluation", 5, N)]
    assert whole["omitted"] == [] and sum(n["type"] == "run" for n in whole["nodes"]) == N
    assert bad == [422, 422]


def test_check_page_shows_duplicates_side_by_side(sqlite_vault, tmp_path, client):
    import shutil

    from tests.registry._helpers import make_coco
    from tests.server.conftest import Server

    images, ann = make_coco(tmp_path / "src", 6)
    shutil.copy(images / "im000.png", images / "im000-copy.png")
    coco = json.loads(ann.read_text())
    coco["images"].append({"id": 7, "file_name": "im000-copy.png", "width": 32, "height": 32})
    coco["annotations"].append({"id": 7, "image_id": 7, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100,
                                "iscrowd": 0})
    ann.write_text(json.dumps(coco))
    sqlite_vault.snapshot("dup", images, version="1.0.0", format="coco", annotations=ann)
    s = Server(sqlite_vault.root, "--public-read")
    try:
        page = client.get(s.url + "/datasets/dup/1.0.0/check", headers={"Accept": "text/html"})
        api = client.get(s.url + "/api/v1/datasets/dup/versions/1.0.0/check").json()
    finally:
        log = s.stop()
    assert "Traceback" not in log
    assert api["counts"]["exact_groups"] == 1 and sorted(api["exact"][0]["paths"]) == ["im000-copy.png", "im000.png"]
    assert page.status_code == 200 and api["summary"] in page.text
    sha = api["exact"][0]["sha256"]
    exact = page.text[page.text.index('id="exact"'):page.text.index('id="near"')]
    assert exact.count(f"/api/v1/objects/{sha}/thumbnail?size=128") == 2  # side by side
