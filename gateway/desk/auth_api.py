"""``/desk/api/session``, ``sign-in`` and ``sign-out``: who is at the desk.

Every sign-in attempt and sign-out is an audit entry (``desk.sign_in``,
``desk.sign_out``). A failed attempt names the account as ``actor.sub`` only when the
account exists: a user name field sometimes receives a password by mistake, and the
chain keeps what it is given for good.
"""

from __future__ import annotations

from aiohttp import web

from gateway.desk.access import (
    DESK_AUTH,
    PRE_COOKIE,
    SESSION_COOKIE,
    check_pre_csrf,
    clear_cookie,
    current_caller,
    new_pre_cookie,
    pre_cookie,
    require,
    session_cookie,
    set_cookie,
)
from gateway.desk.errors import SignInFailed, SignInLocked
from gateway.desk.journal import record
from gateway.desk.requests import json_body, text_field
from gateway.desk.sessions import csrf_token
from gateway.http.context import CONFIG
from gateway.http.problem import json_response

routes = web.RouteTableDef()
MAX_SIGN_IN_BODY = 4096


def _no_store(response: web.Response) -> web.Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.get("/desk/api/session", name="desk:session")
async def session_info(request: web.Request) -> web.Response:
    """Who is signed in, with the CSRF token the page sends back on every change."""
    cfg = request.app[CONFIG]
    node = {"id": cfg.id, "name": cfg.name, "demo": cfg.demo}
    caller = await current_caller(request)
    if caller is not None:
        s = caller.session
        return _no_store(
            json_response(
                {
                    "signed_in": True,
                    "user": s.user,
                    "role": s.role,
                    "csrf": s.csrf,
                    "expires": s.expires,
                    "node": node,
                }
            )
        )
    pre = pre_cookie(request)
    fresh = pre is None
    if pre is None:
        pre = new_pre_cookie()
    secret = request.app[DESK_AUTH].sessions.secret
    response = json_response(
        {"signed_in": False, "csrf": csrf_token(secret, "pre", pre), "node": node}
    )
    if fresh:
        set_cookie(response, request, PRE_COOKIE, pre)
    return _no_store(response)


@routes.post("/desk/api/sign-in", name="desk:sign_in")
async def sign_in(request: web.Request) -> web.Response:
    check_pre_csrf(request)
    data = json_body(request, MAX_SIGN_IN_BODY)
    user_id = text_field(data, "user", max_len=64)
    password = text_field(data, "password", max_len=1024)
    auth = request.app[DESK_AUTH]
    try:
        signed_in = await auth.sign_in(user_id, password, request.remote or "-")
    except (SignInFailed, SignInLocked) as exc:
        await record(
            request.app,
            "desk.sign_in",
            staff=auth.known_user(user_id),
            outcome="rejected",
            code=exc.code,
        )
        raise
    user = signed_in.user
    await record(request.app, "desk.sign_in", staff=user.id, meta={"role": user.role})
    response = json_response(
        {
            "signed_in": True,
            "user": user.id,
            "role": user.role,
            "csrf": signed_in.session.csrf,
            "expires": signed_in.session.session.expires,
        }
    )
    # A new cookie value at every sign-in: a planted session id is never promoted.
    set_cookie(response, request, SESSION_COOKIE, signed_in.session.cookie)
    clear_cookie(response, request, PRE_COOKIE)
    return _no_store(response)


@routes.post("/desk/api/sign-out", name="desk:sign_out")
async def sign_out(request: web.Request) -> web.Response:
    caller = await require(request, None)
    await request.app[DESK_AUTH].sessions.end(session_cookie(request))
    await record(request.app, "desk.sign_out", staff=caller.user)
    response = json_response({"signed_in": False})
    clear_cookie(response, request, SESSION_COOKIE)
    return _no_store(response)
