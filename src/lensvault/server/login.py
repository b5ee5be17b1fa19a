"""Logging in and out of the web UI, and where a page sends a browser that is not (or no
longer) logged in.

The login form trades a token for a session (``lensvault.auth.sessions``): the cookie holds
the session id, HttpOnly, SameSite=Strict, Secure when the page was served over https
(behind a TLS proxy on this host, uvicorn takes the scheme from ``X-Forwarded-Proto``).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from lensvault.server.auth import COOKIE, check_csrf, principal_of
from lensvault.server.errors import HTTPProblem
from lensvault.server.pages import _form, _page

__all__ = ["REASONS", "login_redirect", "router"]

router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "lensvault_login"
# Why the login page was shown, as it says it (the URL carries only the key: nothing a link
# elsewhere could make the page say).
REASONS = {
    "ended": "Your session has ended: it expired, you logged out elsewhere, or its token was revoked. "
             "Log in again.",
    "required": "This server needs a token: log in to see the page.",
    "logged-out": "You are logged out.",
}


def login_redirect(request: Request) -> RedirectResponse:
    """A page that needs a login, for a browser that has none (or one that ended): to /login,
    back here afterwards; a cookie that no longer works is removed."""
    ended = bool(request.cookies.get(COOKIE))
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/login?next={quote(target, safe='')}&reason={'ended' if ended else 'required'}",
                                status_code=303)
    if ended:
        response.delete_cookie(COOKIE, path="/")
    return response


def _local(target: str) -> str:
    """Only paths on this server ('/x', not '//host' or 'http://…'): no open redirect."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.get("/login")
def login_form(request: Request, next: str = "/", reason: str | None = None):
    """The form carries a random value also set as a cookie (double submit): a page elsewhere
    cannot log a browser in with a token of its choosing."""
    import secrets

    value = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = _page(request, "login.html", next=_local(next), failed=False, login_csrf=value,
                     reason=REASONS.get(reason or ""))
    response.set_cookie(LOGIN_COOKIE, value, httponly=True, samesite="strict", path="/login",
                        secure=request.url.scheme == "https")
    return response


@router.post("/login")
async def login(request: Request):
    import hmac

    form = await _form(request)
    token, target = form.get("token", "").strip(), _local(form.get("next", "/"))
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, form.get("csrf", "")):
        raise HTTPProblem(403, "the login form's CSRF value is missing or wrong", where="/login",
                          fix="open /login and submit the form from there")
    session = await run_in_threadpool(request.app.state.lv.vault.start_session, token)
    if session is None:
        return _page(request, "login.html", http_status=401, next=target, failed=True, login_csrf=expected)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, session.value, max_age=session.max_age, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
async def logout(request: Request):
    form = await _form(request)
    await run_in_threadpool(principal_of, request)
    check_csrf(request, form.get("csrf"))
    if getattr(request.state, "via", None) == "cookie":
        await run_in_threadpool(request.app.state.lv.vault.end_session, request.state.credential)
    response = RedirectResponse("/login?reason=logged-out", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
