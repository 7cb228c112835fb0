"""Mount the hall desk (窗口) on a node: stores, routes, static files, headers.

``setup_desk`` is the one line ``gateway.http.app.default_setups`` lists. The desk's
stores open in a cleanup context after the audit log (which the app opens first) and
close before it, so every desk entry is written while the log is open.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway.desk import audit_api, auth_api, pages, verify_api
from gateway.desk.access import DESK_AUTH, auditor_of
from gateway.desk.accounts import AccountBook
from gateway.desk.auth import DeskAuth
from gateway.desk.database import DeskDatabase
from gateway.desk.jobs import DESK_JOBS, VerifyJobs
from gateway.desk.lockout import Lockout
from gateway.desk.sessions import SessionStore
from gateway.http.context import AUDITOR_CHECK, CONFIG

#: Tests set this before start-up to drive session expiry and lockout without sleeping.
DESK_CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("desk_clock")

DB_NAME = "desk.db"


async def _desk_stores(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    clock = app.get(DESK_CLOCK, time.time)
    db = DeskDatabase(cfg.data_dir / DB_NAME)
    try:
        secret = await db.secret("desk")
        book = AccountBook(cfg.desk_users_file, demo_node=cfg.demo)
        app[DESK_AUTH] = DeskAuth(
            book,
            SessionStore(db, secret, clock=clock),
            Lockout(db, secret, clock=clock),
        )
        app[DESK_JOBS] = VerifyJobs()
        yield
    finally:
        jobs = app.get(DESK_JOBS)
        if jobs is not None:
            await jobs.close()
        await db.close()


def setup_desk(app: web.Application) -> None:
    """Add the desk to a node application (before it starts)."""
    app.cleanup_ctx.append(_desk_stores)
    app[AUDITOR_CHECK] = auditor_of
    for module in (pages, auth_api, verify_api, audit_api):
        app.router.add_routes(module.routes)
    app.on_response_prepare.append(pages.security_headers)
