"""What the exchange tests share: sample requests, a clock to turn by hand, and a real
HTTP partner that counts what reaches it."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.exchange.catalog import Catalog, load_catalog
from gateway.licenses.identifiers import make_license_identifier, make_resident_id

ROOT = Path(__file__).resolve().parents[2]
JIAN, QUZHOU, LONGYAN, ZHUZHOU, TONGLIAO = (
    "cn-360800", "cn-330800", "cn-350800", "cn-430200", "cn-150500",
)  # fmt: skip

#: Quzhou handles real-estate mortgage deregistration; it reads 不动产权证书 only.
QUZHOU_ITEM = "TB-330800-0501"
REAL_ESTATE = "11100000MB1742030G001"
BUSINESS = "11100000MB0341032Y001"
QUZHOU_ISSUER = "113308000026472540"
APPLICANT_ID = make_resident_id("330802", date(1985, 3, 14), "123")
APPLICANT_NAME = "李秀英"
# 2026-06-01 09:00 Beijing time, a Monday without holidays around it.
T0 = datetime(2026, 6, 1, 1, 0, tzinfo=UTC).timestamp()


def catalog() -> Catalog:
    return load_catalog(ROOT / "config" / "catalog.toml")


def license_id(serial: str = "2026000123", type_code: str = REAL_ESTATE) -> str:
    return make_license_identifier(type_code, QUZHOU_ISSUER, serial)


def new_request_id(last: str = "0") -> str:
    """A fresh UUID whose last hex digit is ``last`` (the demo clerk's rule)."""
    return str(uuid.uuid4())[:-1] + last


def submission(request_id: str | None = None, **over: Any) -> dict[str, Any]:
    """A valid submission for Quzhou's item, as a partner would send it."""
    body: dict[str, Any] = {
        "request_id": request_id or new_request_id(),
        "item_code": QUZHOU_ITEM,
        "applicant": {"name": APPLICANT_NAME, "id_type": "111", "id": APPLICANT_ID},
        "licenses": [license_id()],
        "form": {"mortgagee": "衢州银行", "reason": "贷款已结清"},
        "submitted_at": "2026-06-01T09:00:00+08:00",
    }
    body.update(over)
    return body


def json_document(output: str) -> Any:
    """The JSON document a ``--json`` command printed, among log lines that nodes or
    workers running in the same process may print to stdout too."""
    found = re.search(r"^[{\[]\n.*?^[}\]]\n", output, re.MULTILINE | re.DOTALL)
    assert found is not None, output
    return json.loads(found.group())


class Clock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Receiver:
    """A partner city reduced to what the outbox needs: a real aiohttp server on
    127.0.0.1 answering ``/v1/service-requests`` (and its events) the way a Tongban
    node does — idempotently — and counting every request that reached it."""

    port: int
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    effective: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_with: tuple[int, str] | None = None
    """Answer every call with this status and problem code (after counting it)."""
    hold: asyncio.Event | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    async def _submit(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        return await self._record(request.path, body["request_id"], body)

    async def _event(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        key = f"{request.match_info['rid']}:{body['status']}:{body['at']}"
        return await self._record(request.path, key, body)

    async def _record(self, path: str, key: str, body: dict[str, Any]) -> web.Response:
        self.posts.append((path, body))
        if self.fail_with is not None:
            status, code = self.fail_with
            return web.json_response({"code": code}, status=status)
        if key in self.effective and self.effective[key] != body:
            return web.json_response({"code": "conflict"}, status=409)
        self.effective.setdefault(key, body)
        self.arrived.set()
        if self.hold is not None:  # the partner took it, the answer is still on its way
            await self.hold.wait()
        return web.json_response(
            {"request_id": body["request_id"], "status": "received"}, status=202
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/service-requests", self._submit)
        app.router.add_post("/v1/service-requests/{rid}/events", self._event)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def count(self, path_part: str = "") -> int:
        return sum(1 for path, _ in self.posts if path_part in path)
