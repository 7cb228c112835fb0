"""``tongban requests``: accept cross-provincial requests and follow them and the outbox.

The commands work on the node's stores directly (the exchange database, Redis when
configured, the audit log), which several processes may use at once, so they work the
same whether the node is running or not: a request accepted while the node is down is
delivered by its worker when it starts.

    tongban requests submit --node cn-360800 --item TB-330800-0501 --file req.json --wait 30
    tongban requests list --node cn-360800
    tongban requests show --node cn-360800 <request id>
    tongban requests retry --node cn-360800 <request id>
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.audit.events import AuditEvent, AuditLog
from gateway.cli.common import (
    add_json_option,
    add_node_options,
    fail,
    is_terminal,
    node_config,
    print_json,
)
from gateway.config import NodeConfig
from gateway.errors import GatewayError, ValidationFailed
from gateway.exchange.auditing import append_event
from gateway.exchange.catalog import Catalog, load_catalog
from gateway.exchange.db import exchange_db_path
from gateway.exchange.deadlines import WorkCalendar
from gateway.exchange.outbox import OutboundDelivery
from gateway.exchange.requests import ServiceRequest
from gateway.exchange.runtime import ExchangeStores, open_stores
from gateway.exchange.service import ExchangeService
from gateway.exchange.validation import format_rfc3339, load_json_object, parse_request_id
from gateway.exchange.views import request_deadline, request_view
from gateway.privacy import mask_id, mask_name

MAX_FILE_BYTES = 1 << 20
WAIT_POLL_SECONDS = 0.2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser(
        "requests",
        help="cross-provincial service requests (异地受理) and the outbox",
        description="Accept requests for other cities' items and follow them and the outbox.",
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    submit = actions.add_parser(
        "submit",
        help="accept a request at a node for the item's handling city",
        description="Record the request and queue its delivery; the node's worker delivers "
        "it (now if the node runs, when it starts otherwise). The file holds applicant, "
        "licenses and form; request_id and submitted_at are filled in when missing.",
    )
    add_node_options(submit)
    submit.add_argument("--item", required=True, help="service item code, e.g. TB-330800-0501")
    submit.add_argument("--file", required=True, type=Path, help="the request (JSON)")
    submit.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="wait up to SECONDS until it is delivered or its status changes",
    )
    submit.add_argument("--staff", default="cli", help="who accepted it (for the audit log)")
    add_json_option(submit)
    submit.set_defaults(func=run_submit)

    listing = actions.add_parser("list", help="requests, deadlines, escalations and the outbox")
    add_node_options(listing)
    listing.add_argument("--all", action="store_true", help="include completed and rejected")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    add_json_option(listing)
    listing.set_defaults(func=run_list)

    show = actions.add_parser("show", help="one request: history, escalations, deliveries")
    add_node_options(show)
    show.add_argument("request_id")
    add_json_option(show)
    show.set_defaults(func=run_show)

    retry = actions.add_parser(
        "retry",
        help="retry a request's undelivered deliveries now",
        description="Reset the backoff of the request's pending (and refused) deliveries and "
        "let an open circuit breaker probe the partner at once.",
    )
    add_node_options(retry)
    retry.add_argument("request_id")
    retry.add_argument("--staff", default="cli", help="who asked (for the audit log)")
    add_json_option(retry)
    retry.set_defaults(func=run_retry)


# ---------------------------------------------------------------- shared


@contextlib.asynccontextmanager
async def _stores(cfg: NodeConfig) -> AsyncIterator[ExchangeStores]:
    stores = open_stores(cfg)
    try:
        yield stores
    finally:
        await stores.close()


@contextlib.asynccontextmanager
async def _audit(cfg: NodeConfig) -> AsyncIterator[AuditLog]:
    from gateway.audit.service import open_audit_store  # the node's log, shared safely

    async with open_audit_store(cfg) as log:
        yield log


def _time(epoch: float | None) -> str | None:
    return None if epoch is None else format_rfc3339(datetime.fromtimestamp(epoch, UTC))


def _request_id(text: str) -> str:
    try:
        return parse_request_id(text, "request id")
    except ValidationFailed:
        fail(f"{text!r} is not a request id (a UUID)")


def _fields(exc: ValidationFailed) -> str:
    parts = [f"{field}: {reason}" for field, reason in sorted(exc.fields.items())]
    return "; ".join(parts) or exc.detail


def _delivery_json(d: OutboundDelivery) -> dict[str, Any]:
    out = d.to_json()
    for key in ("created_at", "next_attempt_at", "last_attempt_at", "delivered_at"):
        out[key] = _time(out[key])
    if d.kind == "event":
        out["status"] = d.event().status
    return out


def _summary(cfg: NodeConfig, catalog: Catalog, record: ServiceRequest) -> dict[str, Any]:
    deadline = request_deadline(record, catalog, WorkCalendar.of(cfg.holidays))
    last = record.escalations[-1].level if record.escalations else None
    return {
        "request_id": record.request_id,
        "item_code": record.item_code,
        "role": record.role,
        "partner": record.partner,
        "status": record.status,
        "submitted_at": record.submission.submitted_at,
        "due_at": deadline.due_at.isoformat() if deadline else None,
        "escalation": last,
    }


def _service(cfg: NodeConfig, stores: ExchangeStores, audit: AuditLog) -> ExchangeService:
    return ExchangeService(
        cfg=cfg, catalog=load_catalog(cfg.catalog_path), store=stores.requests, audit=audit
    )


# ---------------------------------------------------------------- submit


def _read_request(path: Path, item: str) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    try:
        data = load_json_object(raw, limit=MAX_FILE_BYTES)
    except GatewayError as exc:
        fail(f"{path}: {exc.detail}")
    if data.get("item_code", item) != item:
        fail(f"{path} names item {data['item_code']!r} but --item is {item!r}")
    data["item_code"] = item
    data.setdefault("request_id", str(uuid.uuid4()))
    data.setdefault("submitted_at", format_rfc3339(datetime.now(UTC)))
    return data


@contextlib.contextmanager
def _spinner(message: str, enabled: bool) -> Iterator[Callable[[str], None]]:
    """A spinner on a terminal (stderr); yields a function that updates its text."""
    if not enabled:
        yield lambda _: None
        return
    from rich.console import Console

    with Console(stderr=True).status(message) as status:
        yield lambda text: status.update(text)


async def _wait(
    stores: ExchangeStores, record: ServiceRequest, seconds: float, show: bool
) -> tuple[ServiceRequest, OutboundDelivery | None, bool]:
    """Poll the local store until the submission is delivered (or refused) or the status
    moved; returns the latest record, its delivery and whether the wait succeeded."""
    key = f"submit:{record.request_id}"
    deadline = time.monotonic() + max(0.0, seconds)
    with _spinner(f"delivering to {record.handling_node} ...", show) as update:
        while True:
            latest = await stores.requests.get(record.request_id) or record
            delivery = await stores.queue.ledger.get(key)
            if latest.status != "received" or (delivery and delivery.state == "delivered"):
                return latest, delivery, True
            if delivery is not None and delivery.state == "refused":
                return latest, delivery, False
            if time.monotonic() >= deadline:
                return latest, delivery, False
            if delivery is not None and delivery.attempts:
                update(
                    f"delivering to {record.handling_node}: attempt {delivery.attempts} failed "
                    f"({delivery.last_error}); retrying ..."
                )
            await asyncio.sleep(WAIT_POLL_SECONDS)


async def _submit(cfg: NodeConfig, args: argparse.Namespace) -> int:
    data = _read_request(args.file, args.item)
    async with _stores(cfg) as stores, _audit(cfg) as audit:
        service = _service(cfg, stores, audit)
        try:
            record, created = await service.accept_local(data, staff=args.staff)
        except ValidationFailed as exc:
            fail(f"the request is not valid: {_fields(exc)}")
        delivery = await stores.queue.ledger.get(f"submit:{record.request_id}")
        ok = True
        if args.wait is not None:
            show = is_terminal() and not args.json
            record, delivery, ok = await _wait(stores, record, args.wait, show)
        out = _summary(cfg, service.catalog, record) | {
            "handling_node": record.handling_node,
            "created": created,
            "delivery": _delivery_json(delivery) if delivery else None,
        }
    if args.json:
        print_json(out)
    else:
        state = out["delivery"]["state"] if out["delivery"] else "-"
        print(f"{record.request_id}  {record.item_code} -> {record.handling_node}")
        print(f"  status {record.status}, delivery {state}, due {out['due_at']}")
    if not ok:
        why = delivery.last_error if delivery and delivery.last_error else "no answer yet"
        fail(
            f"not delivered within {args.wait:g} s ({why}); it stays queued and the node "
            "keeps trying",
            exit_code=1,
        )
    return 0


def run_submit(args: argparse.Namespace) -> int:
    return asyncio.run(_submit(node_config(args), args))


# ---------------------------------------------------------------- list / show


async def _list(cfg: NodeConfig, args: argparse.Namespace) -> dict[str, Any]:
    if not exchange_db_path(cfg.data_dir).exists():
        return {"node": cfg.id, "requests": [], "partners": []}
    catalog = load_catalog(cfg.catalog_path)
    async with _stores(cfg) as stores:
        records = await stores.requests.recent(open_only=not args.all, limit=args.limit)
        queues = {q.partner: q for q in await stores.queue.ledger.by_partner()}
        circuits = {c.partner: c for c in await stores.breakers.states()}
    partners = []
    for pid in sorted(set(queues) | set(circuits)):
        q, c = queues.get(pid), circuits.get(pid)
        partners.append(
            {
                "partner": pid,
                "circuit": c.status if c else "closed",
                "failures": c.failures if c else 0,
                "pending": q.pending if q else 0,
                "refused": q.refused if q else 0,
                "delivered": q.delivered if q else 0,
                "oldest_pending_at": _time(q.oldest_pending_at) if q else None,
            }
        )
    return {
        "node": cfg.id,
        "requests": [_summary(cfg, catalog, r) for r in records],
        "partners": partners,
    }


def run_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        fail("--limit must be at least 1")
    cfg = node_config(args)
    out = asyncio.run(_list(cfg, args))
    if args.json:
        print_json(out)
        return 0
    if not out["requests"]:
        print("no open requests" if not args.all else "no requests")
    for r in out["requests"]:
        print(
            f"{r['request_id']}  {r['item_code']:<15} {r['role']:<9} {r['partner']}  "
            f"{r['status']:<16} due {r['due_at'] or '-'}  {r['escalation'] or ''}"
        )
    if out["partners"]:
        print("\noutbox by partner:")
    for p in out["partners"]:
        print(
            f"  {p['partner']}  circuit {p['circuit']:<9} pending {p['pending']:<4} "
            f"refused {p['refused']:<4} delivered {p['delivered']}"
        )
    return 0


def _applicant(record: ServiceRequest) -> dict[str, Any]:
    """The applicant as staff may see them: masked (SPEC 3, gateway.privacy)."""
    applicant = record.submission.applicant
    return {
        "name": mask_name(str(applicant.get("name", ""))),
        "id_type": applicant.get("id_type"),
        "id": mask_id(str(applicant.get("id", ""))),
    }


async def _show(cfg: NodeConfig, request_id: str) -> dict[str, Any]:
    if not exchange_db_path(cfg.data_dir).exists():
        fail(f"{cfg.id} has no request {request_id}", exit_code=1)
    catalog = load_catalog(cfg.catalog_path)
    async with _stores(cfg) as stores:
        record = await stores.requests.get(request_id)
        if record is None:
            fail(f"{cfg.id} has no request {request_id}", exit_code=1)
        deliveries = await stores.queue.ledger.for_request(request_id)
    return request_view(record, catalog, WorkCalendar.of(cfg.holidays)) | {
        "role": record.role,
        "applicant": _applicant(record),
        "licenses": list(record.submission.licenses),
        "deliveries": [_delivery_json(d) for d in deliveries],
    }


def run_show(args: argparse.Namespace) -> int:
    cfg = node_config(args)
    out = asyncio.run(_show(cfg, _request_id(args.request_id)))
    if args.json:
        print_json(out)
        return 0
    print(f"{out['request_id']}  {out['item_code']} {out['item_name'] or ''}")
    print(
        f"  {out['role']}: accepted by {out['accepting_node']}, handled by {out['handling_node']}"
    )
    print(f"  applicant {out['applicant']['name']} {out['applicant']['id']}")
    print(f"  status {out['status']}; due {out['deadline']['due_at'] if out['deadline'] else '-'}")
    for h in out["history"]:
        print(f"    {h['at']}  {h['status']:<16} {h['note']}")
    for e in out["escalations"]:
        print(f"  escalation {e['level']:<9} due {e['due_at']}, fired {e['fired_at']}")
    for d in out["deliveries"]:
        print(
            f"  delivery {d['kind']:<6} to {d['partner']}: {d['state']}, {d['attempts']} "
            f"attempt(s){', ' + d['last_error'] if d['last_error'] else ''}"
        )
    return 0


# ---------------------------------------------------------------- retry


async def _retry(cfg: NodeConfig, request_id: str, staff: str) -> dict[str, Any]:
    if not exchange_db_path(cfg.data_dir).exists():
        fail(f"{cfg.id} has no request {request_id}", exit_code=1)
    async with _stores(cfg) as stores:
        record = await stores.requests.get(request_id)
        if record is None:
            fail(f"{cfg.id} has no request {request_id}", exit_code=1)
        now = time.time()
        count = await stores.queue.retry_now(request_id, now)
        if count:
            await stores.breakers.probe_now(record.partner, now)
            async with _audit(cfg) as audit:
                await append_event(
                    audit,
                    AuditEvent(
                        event="request.retry",
                        actor_type="staff",
                        actor_id=cfg.id,
                        actor_sub=staff,
                        subject=record.applicant_id,
                        meta={
                            "request_id": request_id,
                            "item": record.item_code,
                            "partner": record.partner,
                            "deliveries": count,
                        },
                    ),
                )
    return {"request_id": request_id, "partner": record.partner, "rescheduled": count}


def run_retry(args: argparse.Namespace) -> int:
    cfg = node_config(args)
    out = asyncio.run(_retry(cfg, _request_id(args.request_id), args.staff))
    if args.json:
        print_json(out)
    elif out["rescheduled"]:
        print(f"{out['rescheduled']} delivery(ies) to {out['partner']} will be retried now")
    else:
        print("nothing to retry: every delivery of this request is done")
    return 0
