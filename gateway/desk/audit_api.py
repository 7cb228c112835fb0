"""The auditor pages' APIs under ``/desk/api/audit/`` (auditor and admin sessions only).

Looking up the uses of a license, running a full verification and checking a usage
record are audit entries themselves (``audit.search``, ``audit.verify``,
``audit.receipt_check``), so the chain also shows who looked at what.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway.desk.access import require
from gateway.desk.chain import chain_status, check_receipt, reader_of, uses_of
from gateway.desk.full_verify import verify_whole_log
from gateway.desk.jobs import DESK_JOBS, Job, Progress
from gateway.desk.journal import body_bytes, record
from gateway.desk.receipts import parse_receipt_ref
from gateway.desk.requests import json_body, text_field
from gateway.encoding import b64u_encode
from gateway.errors import NotFound
from gateway.http.context import AUDIT, CONFIG
from gateway.http.problem import json_response

routes = web.RouteTableDef()
MAX_SMALL_BODY = 4096


@routes.get("/desk/api/audit/status", name="desk:audit_status")
async def status(request: web.Request) -> web.Response:
    await require(request, "auditor")
    log = reader_of(request.app[AUDIT])
    result = await chain_status(request.app[CONFIG], log, now=time.time())
    return json_response(result.to_json())


@routes.post("/desk/api/audit/search", name="desk:audit_search")
async def search(request: web.Request) -> web.Response:
    """Every use of one license (or holder), found through the log's keyed pseudonym."""
    caller = await require(request, "auditor")
    data = json_body(request, MAX_SMALL_BODY)
    identifier = text_field(data, "identifier", max_len=200).strip()
    log = reader_of(request.app[AUDIT])
    entries, more = await uses_of(log, identifier)
    answer = {"entries": entries, "more": more}
    receipt = await record(
        request.app,
        "audit.search",
        staff=caller.user,
        subject=identifier,
        response=body_bytes(answer),
        meta={"found": len(entries), "more": more},
    )
    answer["audit"] = {"seq": receipt.seq, "leaf": b64u_encode(receipt.leaf)}
    return json_response(answer)


@routes.post("/desk/api/audit/verify-jobs", name="desk:audit_verify_start")
async def start_full_verification(request: web.Request) -> web.Response:
    """Start (or join) a full verification of this node's log; the page polls it."""
    caller = await require(request, "auditor")
    app = request.app
    jobs = app[DESK_JOBS]
    running = jobs.running()
    if running is not None:
        return json_response(running.to_json(), status=202)
    cfg = app[CONFIG]
    size = reader_of(app[AUDIT]).size

    async def work(progress: Progress) -> dict[str, Any]:
        return await verify_whole_log(cfg, progress, size)

    async def finish(job: Job) -> None:
        result = job.result or {}
        first_bad = result.get("first_bad") or {}
        await record(
            app,
            "audit.verify",
            staff=job.started_by,
            outcome="ok" if job.state == "done" else "error",
            code=None if job.state == "done" else "internal",
            meta={
                "phase": "end",
                "ok": bool(result.get("ok")),
                "entries": int(result.get("entries") or 0),
                "first_bad_seq": first_bad.get("seq"),
            },
        )

    await record(app, "audit.verify", staff=caller.user, meta={"phase": "start", "size": size})
    job = jobs.start(caller.user, size, work, finish)
    return json_response(job.to_json(), status=202)


@routes.get("/desk/api/audit/verify-jobs/{job}", name="desk:audit_verify_progress")
async def full_verification_progress(request: web.Request) -> web.Response:
    await require(request, "auditor")
    job = request.app[DESK_JOBS].get(request.match_info["job"])
    if job is None:
        raise NotFound("no such verification job (the node may have restarted)")
    response = json_response(job.to_json())
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.post("/desk/api/audit/receipt-check", name="desk:audit_receipt_check")
async def receipt_check(request: web.Request) -> web.Response:
    """Check a usage record (``TBR1:...``) against the latest signed checkpoint."""
    caller = await require(request, "auditor")
    data = json_body(request, MAX_SMALL_BODY)
    ref = parse_receipt_ref(text_field(data, "ref", max_len=200))
    app = request.app
    result = await check_receipt(app[CONFIG], reader_of(app[AUDIT]), ref)
    answer = result.to_json()
    await record(
        app,
        "audit.receipt_check",
        staff=caller.user,
        outcome="ok" if result.state != "mismatch" else "rejected",
        response=body_bytes(answer),
        meta={"seq": ref.seq, "state": result.state},
    )
    return json_response(answer)
