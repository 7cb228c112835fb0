"""The audit log inside a running node: open the store first, close it last.

``setup_audit`` puts the store on ``app[AUDIT]`` before any other resource opens, runs
the checkpointer beside it, and registers the audit and witness routes.
``open_audit_store`` gives commands (``tongban license ...``, ``tongban audit ...``) the
same store outside a running node; the store is safe with several processes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from gateway.audit.checkpointer import Checkpointer
from gateway.audit.store import AuditStore
from gateway.config import NodeConfig
from gateway.http.context import AUDIT, CONFIG, READINESS
from gateway.keys import load_log_key

STORE = web.AppKey("audit_store", AuditStore)
CHECKPOINTER = web.AppKey("audit_checkpointer", Checkpointer)


@asynccontextmanager
async def open_audit_store(cfg: NodeConfig) -> AsyncIterator[AuditStore]:
    """The node's audit store, opened and head-checked, closed (flushed) on exit."""
    store = AuditStore.from_config(cfg)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _audit_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    async with open_audit_store(cfg) as store:
        app[STORE] = store
        app[AUDIT] = store

        app[READINESS]["audit_database"] = store.ping
        checkpointer = Checkpointer(store, load_log_key(cfg))
        app[CHECKPOINTER] = checkpointer
        async with checkpointer:
            yield


def setup_audit(app: web.Application) -> None:
    """Register the audit log's lifecycle (first in, last out) and its routes."""
    app.cleanup_ctx.append(_audit_ctx)
