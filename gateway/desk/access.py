"""Who is at the desk: session cookies, role checks and CSRF checks for every desk route.

Cookies are ``HttpOnly`` (no script reads them), ``SameSite=Strict`` (no other site's
page sends them), limited to this node, and ``Secure`` whenever the desk is reached
over TLS. Every request that changes state must carry the session's synchronizer
token in the ``X-CSRF-Token`` header and, when the browser sends an ``Origin``, come
from this very origin; otherwise it is refused with 403 ``forbidden``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.desk.accounts import Role
from gateway.desk.auth import DeskAuth, may
from gateway.desk.errors import SessionRequired
from gateway.desk.sessions import Session, check_csrf, new_cookie_value, valid_cookie_value
from gateway.errors import Forbidden
from gateway.http.context import CONFIG

SESSION_COOKIE = "tb_desk"
PRE_COOKIE = "tb_desk_pre"
CSRF_HEADER = "X-CSRF-Token"
COOKIE_PATH = "/"
"""The whole node: the auditor's session also opens ``/v1/audit/...`` (``AUDITOR_CHECK``)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

DESK_AUTH = web.AppKey("desk_auth", DeskAuth)


@dataclass(frozen=True)
class DeskCaller:
    """The signed-in user of one desk request."""

    session: Session

    @property
    def user(self) -> str:
        return self.session.user

    @property
    def role(self) -> Role:
        return self.session.role


def is_tls(request: web.Request) -> bool:
    """Served over TLS, directly or as the node's public URL says (behind a proxy)."""
    return request.secure or request.app[CONFIG].public_url.startswith("https://")


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        httponly=True,
        secure=is_tls(request),
        samesite="Strict",
    )


def clear_cookie(response: web.StreamResponse, request: web.Request, name: str) -> None:
    response.del_cookie(
        name, path=COOKIE_PATH, secure=is_tls(request), httponly=True, samesite="Strict"
    )


def session_cookie(request: web.Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE)
    return value if valid_cookie_value(value) else None


def pre_cookie(request: web.Request) -> str | None:
    value = request.cookies.get(PRE_COOKIE)
    return value if valid_cookie_value(value) else None


def new_pre_cookie() -> str:
    return new_cookie_value()


def check_origin(request: web.Request) -> None:
    """A state-changing request whose ``Origin`` is another site is refused."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    expected = f"{request.scheme}://{request.host}"
    public = request.app[CONFIG].public_url
    if origin not in (expected, public):
        raise Forbidden("this request comes from another site")


def check_pre_csrf(request: web.Request) -> str:
    """The sign-in form's CSRF check (pre-session token); returns the pre-session cookie."""
    check_origin(request)
    cookie = pre_cookie(request)
    auth = request.app[DESK_AUTH]
    check_csrf(auth.sessions.secret, "pre", cookie, request.headers.get(CSRF_HEADER))
    assert cookie is not None  # check_csrf refuses a missing cookie
    return cookie


async def current_caller(request: web.Request) -> DeskCaller | None:
    """The signed-in user, or ``None``; no role or CSRF check."""
    session = await request.app[DESK_AUTH].session(session_cookie(request))
    return DeskCaller(session) if session is not None else None


async def require(request: web.Request, role: Role | None) -> DeskCaller:
    """The signed-in user allowed to act in ``role`` (``None``: any role); checks CSRF
    on unsafe methods.

    Raises ``SessionRequired`` (401) without a live session, ``Forbidden`` (403) for
    another role or a missing/wrong CSRF token.
    """
    caller = await current_caller(request)
    if caller is None:
        raise SessionRequired("sign in at the desk first (the session may have expired)")
    if request.method not in SAFE_METHODS:
        check_origin(request)
        check_csrf(
            request.app[DESK_AUTH].sessions.secret,
            "csrf",
            session_cookie(request),
            request.headers.get(CSRF_HEADER),
        )
    if role is not None and not may(caller.role, role):
        raise Forbidden(f"this page is for the {role} role")
    return caller


async def auditor_of(request: web.Request) -> str | None:
    """For ``AUDITOR_CHECK``: the auditor signed in on this request's desk session."""
    caller = await current_caller(request)
    return caller.user if caller is not None and may(caller.role, "auditor") else None
