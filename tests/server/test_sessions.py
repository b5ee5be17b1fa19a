"""Browser sessions: the cookie holds a session id (never the token), the catalog only its hash;
a revoked token, a logout or an expiry ends it in every process; a page without a live session
sends the browser to the login page with the reason, while the API answers JSON 401."""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.server.conftest import bearer, log_in
from tests.server.test_browser import browser  # noqa: F401 (the Chromium fixture)


def _sessions(world) -> list[dict]:
    import sqlalchemy as sa

    import lensvault

    with lensvault.open(world) as vault, vault.catalog.read() as conn:
        return [dict(r) for r in conn.execute(sa.text("SELECT * FROM api_sessions")).mappings()]


def _fresh_token(world, name: str, role: str = "read") -> str:
    import lensvault

    with lensvault.open(world, actor="admin@example.com") as vault:
        return vault.create_token(name, role=role, user=f"{name}@example.com").token


def _revoke(world, name: str) -> None:
    import lensvault

    with lensvault.open(world, actor="admin@example.com") as vault:
        vault.revoke_token(name)


def _sent_to_login(r, path: str, reason: str) -> None:
    assert r.status_code == 303, r.text
    where = urlsplit(r.headers["location"])
    query = parse_qs(where.query)
    assert (where.path, query["next"], query["reason"]) == ("/login", [path], [reason]), r.headers["location"]


def test_the_cookie_holds_a_session_never_the_token(server, client, tokens, world):
    form = client.get(server + "/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    r = client.post(server + "/login", data={"token": tokens.reader, "next": "/", "csrf": csrf})
    assert r.status_code == 303
    value = r.cookies["lensvault_session"]
    secret = tokens.reader.rsplit("_", 1)[1]
    assert value.startswith("lvs_") and tokens.reader not in value and secret not in value
    header = r.headers["set-cookie"]
    assert "HttpOnly" in header and "samesite=strict" in header.lower() and "Max-Age=43200" in header
    assert "Secure" not in header  # served over http here (see the https test below)
    # The catalog keeps the session's hash, never the value the browser holds.
    rows = [s for s in _sessions(world) if s["session_sha256"] == hashlib.sha256(value.encode()).hexdigest()]
    assert len(rows) == 1 and rows[0]["token_id"] == tokens.reader.split("_")[1]
    assert value not in json.dumps(_sessions(world))
    assert client.get(server + "/api/v1/whoami").json()["user"] == "viewer@example.com"
    # What the cookie held before (the token itself) is no session: refused.
    client.cookies.clear()
    old = {"Cookie": f"lensvault_session={tokens.reader}"}
    assert client.get(server + "/api/v1/whoami", headers=old).status_code == 401


def test_revoking_the_token_ends_its_sessions(server, client, world):
    token = _fresh_token(world, "to-revoke")
    first, second = log_in(server, token), log_in(server, token)  # two browsers
    for value in (first, second):
        page = client.get(server + "/datasets/shapes/1.0.1", headers={"Cookie": f"lensvault_session={value}"})
        assert page.status_code == 200
    _revoke(world, "to-revoke")
    for value in (first, second):
        cookie = {"Cookie": f"lensvault_session={value}"}
        api = client.get(server + "/api/v1/whoami", headers=cookie)
        assert api.status_code == 401 and api.headers["content-type"] == "application/json"
        assert "session has ended" in api.json()["what"]
        page = client.get(server + "/datasets/shapes/1.0.1?split=train", headers=cookie)
        _sent_to_login(page, "/datasets/shapes/1.0.1?split=train", "ended")
        assert 'lensvault_session=""' in page.headers["set-cookie"]  # the dead cookie is removed
    # The session rows went with the token; a new login with it is refused.
    assert not [s for s in _sessions(world) if s["token_id"] == token.split("_")[1]]
    form = client.get(server + "/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    assert client.post(server + "/login", data={"token": token, "csrf": csrf}).status_code == 401


def test_logging_out_ends_the_session_for_every_copy_of_the_cookie(server, client, tokens):
    value = log_in(server, tokens.reader)
    cookie = {"Cookie": f"lensvault_session={value}", "Accept": "text/html"}
    home = client.get(server + "/", headers=cookie)
    csrf = re.search(r'action="/logout"><input type="hidden" name="csrf" value="([^"]+)"', home.text).group(1)
    out = client.post(server + "/logout", data={"csrf": csrf}, headers=cookie)
    assert out.status_code == 303 and out.headers["location"] == "/login?reason=logged-out"
    # A copy of the cookie kept elsewhere (another tab, a stolen copy) no longer works.
    assert client.get(server + "/api/v1/whoami", headers={"Cookie": f"lensvault_session={value}"}).status_code == 401
    assert "You are logged out." in client.get(server + out.headers["location"]).text


def test_an_expired_session_is_refused(server, client, world):
    import sqlalchemy as sa

    import lensvault

    token = _fresh_token(world, "expiring")
    value = log_in(server, token)
    cookie = {"Cookie": f"lensvault_session={value}"}
    assert client.get(server + "/api/v1/whoami", headers=cookie).status_code == 200
    with lensvault.open(world) as vault, vault.catalog.begin() as conn:
        conn.execute(sa.text("UPDATE api_sessions SET expires_at = '2000-01-01T00:00:00.000000Z' "
                             "WHERE session_sha256 = :h"), {"h": hashlib.sha256(value.encode()).hexdigest()})
    assert client.get(server + "/api/v1/whoami", headers=cookie).status_code == 401
    _sent_to_login(client.get(server + "/runs", headers=cookie), "/runs", "ended")
    # The next login removes expired sessions.
    log_in(server, token)
    assert hashlib.sha256(value.encode()).hexdigest() not in {s["session_sha256"] for s in _sessions(world)}


def test_a_page_without_a_login_goes_to_the_login_page_whatever_it_accepts(server, client, tokens):
    for accept in ("text/html", "application/json", "*/*"):
        r = client.get(server + "/models/det", headers={"Accept": accept})
        _sent_to_login(r, "/models/det", "required")
        assert client.get(server + "/api/v1/models", headers={"Accept": accept}).status_code == 401
    # A form posted without a session is sent there too (not a JSON body the browser would show).
    _sent_to_login(client.post(server + "/models/det/rollback", data={"alias": "production"}),
                   "/models/det/rollback", "required")
    page = client.get(server + "/login?next=%2Fmodels%2Fdet&reason=required")
    assert "This server needs a token" in page.text
    # Only the server's own messages are shown: the reason is a key, not text from the URL.
    forged = client.get(server + "/login?reason=%3Cb%3Ecall+this+number%3C%2Fb%3E")
    assert "call this number" not in forged.text and 'id="login-reason"' not in forged.text
    assert client.get(server + "/api/v1/whoami", headers=bearer(tokens.reader)).status_code == 200


@pytest.mark.parametrize("scheme, secure", [("https", True), ("http", False)])
def test_the_session_cookie_is_secure_over_https(world, tokens, scheme, secure):
    from starlette.testclient import TestClient

    from lensvault.server import create_app

    with TestClient(create_app(world), base_url=f"{scheme}://lensvault.test") as c:
        form = c.get("/login")
        assert ("Secure" in form.headers["set-cookie"]) is secure  # the login form's own cookie too
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        r = c.post("/login", data={"token": tokens.reader, "csrf": csrf}, follow_redirects=False)
        assert r.status_code == 303
        assert ("Secure" in r.headers["set-cookie"]) is secure
        assert "HttpOnly" in r.headers["set-cookie"]


def test_a_browser_whose_token_is_revoked_is_sent_to_log_in_and_back(browser, server, world, tmp_path):  # noqa: F811
    """In Chromium: the page it reloads after the revoke is the login page saying why; logging in
    again (with another token) brings it back to the page it was on."""
    from tests.server.test_browser import _login

    page = _login(browser, server, _fresh_token(world, "laptop"))
    page.goto(f"{server}/datasets/shapes/1.0.1?split=train")
    assert page.locator("#image-grid").count() == 1
    _revoke(world, "laptop")
    page.reload()
    page.screenshot(path=str(tmp_path / "session-ended.png"), full_page=True)
    assert urlsplit(page.url).path == "/login"
    assert "session has ended" in page.locator("#login-reason").inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == "lensvault_session"]
    page.fill("input[name=token]", _fresh_token(world, "laptop-2"))
    page.click("button[type=submit]")
    page.wait_for_url("**/datasets/shapes/1.0.1?split=train")
    assert page.locator("#who").inner_text().startswith("laptop-2@example.com")
