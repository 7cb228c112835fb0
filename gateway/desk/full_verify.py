"""A full verification of this node's audit log for the auditor page, with progress.

It is the auditor's streaming verifier (``gateway.audit.verify.verify_database``) run
on a worker thread against the node's database (read-only, safe while the node
writes), with the log key from ``certs/`` — the published key, not the one recorded
in the database — so the page's answer is the one ``tongban audit verify`` gives.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.audit.verify import verify_database
from gateway.config import NodeConfig
from gateway.desk.chain import log_verifier
from gateway.desk.jobs import Progress


async def verify_whole_log(cfg: NodeConfig, progress: Progress, total: int) -> dict[str, Any]:
    """The ``tongban audit verify --json`` summary of this node's log."""

    def report(done: int, known: int | None) -> None:
        progress(done, known if known is not None else max(total, done))

    vkey = log_verifier(cfg).vkey()
    result = await asyncio.to_thread(verify_database, cfg.data_dir / "audit", vkey, progress=report)
    progress(result.entries, max(total, result.entries))
    return result.to_json()
