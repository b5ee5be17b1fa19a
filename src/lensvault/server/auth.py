"""Who a request acts as: a bearer token, or the browser's session cookie, or (with
``--public-read``) an anonymous reader.

The session cookie holds a session id, never the token (``lensvault.auth.sessions``): any
server process finds it in the catalog with its token on every request, so a revoke ends
every session of the token at once and no process keeps sessions. Forms carry a CSRF value
derived from the session id (an HMAC), which every process can check without shared
state; JSON writes authenticated by the cookie need it in ``X-CSRF-Token`` (a bearer token
is not sent by a browser on its own, so it needs none).
"""

from __future__ import annotations

import hashlib
import hmac

from lensvault.auth.tokens import Principal
from lensvault.server.errors import HTTPProblem

__all__ = ["ANONYMOUS", "COOKIE", "csrf_of", "principal_of", "principal_of_async", "require"]

COOKIE = "lensvault_session"
_FIX = ("make a token in the vault's folder with `lensvault token create NAME --role read` and send "
        "'Authorization: Bearer TOKEN', or log in with it at /login")
ANONYMOUS = Principal(user="anonymous", role="read")


def csrf_of(credential: str) -> str:
    """The CSRF value of a session (or token): an HMAC keyed by it, so only a page that was
    served to the holder of the cookie can carry it."""
    return hmac.new(hashlib.sha256(credential.encode()).digest(), b"lensvault-csrf", hashlib.sha256).hexdigest()[:32]


def principal_of(request) -> Principal:
    """The principal of ``request``, stored on ``request.state`` (401 if it needs a token it lacks)."""
    found = getattr(request.state, "principal", None)
    if found is not None:
        return found
    state = request.app.state.lv
    header = request.headers.get("authorization")
    token, via = None, None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise HTTPProblem(401, "the Authorization header is not 'Bearer TOKEN'", where="Authorization",
                              fix=_FIX)
        token, via = value.strip(), "bearer"
    elif request.cookies.get(COOKIE):
        token, via = request.cookies[COOKIE], "cookie"
    if token is not None:
        if via == "cookie":
            principal = state.vault.session_principal(token)
            if principal is None:
                raise HTTPProblem(401, "the session has ended (it expired, was logged out, or its token was revoked)",
                                  where="cookie", fix="log in again at /login")
        else:
            principal = state.vault.authenticate(token)
            if principal is None:
                raise HTTPProblem(401, "the token is not valid (unknown, wrong or revoked)", where=via, fix=_FIX)
        # The credential presented (session id or token): the key of this request's CSRF value.
        request.state.credential, request.state.via = token, via
    elif state.public_read:
        principal = ANONYMOUS
        request.state.credential, request.state.via = None, None
    else:
        raise HTTPProblem(401, "this server needs a token", where="Authorization", fix=_FIX)
    request.state.principal = principal
    return principal


async def principal_of_async(request) -> Principal:
    """``principal_of`` for a route on the event loop: a request that presents a token or a
    session cookie is checked against the catalog as a short read (``turns``), on every
    request; one without (an anonymous reader of a ``--public-read`` server, or a 401) needs
    no read and is decided here."""
    if getattr(request.state, "principal", None) is None and (
            request.headers.get("authorization") is not None or request.cookies.get(COOKIE)):
        return await request.app.state.lv.turns.read(principal_of, request)
    return principal_of(request)


def require(request, role: str) -> Principal:
    """The principal, if its role allows ``role`` (else 403); for cookie sessions on a write,
    the CSRF value must match too."""
    principal = principal_of(request)
    if not principal.may(role):
        raise HTTPProblem(403, f"{principal.user} ({principal.role}) may not do this: it needs the {role} role",
                          where=request.url.path, fix=f"use a token with the {role} role")
    return principal


def check_csrf(request, presented: str | None) -> None:
    session = getattr(request.state, "credential", None)
    if getattr(request.state, "via", None) != "cookie":
        return
    if not presented or not session or not hmac.compare_digest(presented, csrf_of(session)):
        raise HTTPProblem(403, "the form's CSRF value is missing or wrong", where=request.url.path,
                          fix="reload the page and submit the form again")
