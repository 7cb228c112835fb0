"""What the fault drills share: config edits, signed partner calls, bounded waits, load."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.encoding import b64u_encode
from gateway.errors import UpstreamError
from gateway.http.client import PartnerClient
from gateway.keys import load_token_key
from tests.support.network import Tree

JIAN, QUZHOU = "cn-360800", "cn-330800"


def edit_config(tree: Tree, node_id: str, old: str, new: str) -> None:
    path = tree.config_path(node_id)
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def use_redis(tree: Tree, node_id: str, url: str) -> None:
    edit_config(tree, node_id, "[node]\n", f'[node]\nredis_url = "{url}"\n')


def caller(tree: Tree, *, frm: str = QUZHOU, to: str = JIAN) -> PartnerClient:
    """``frm``'s system calling ``to``, signing each call with ``frm``'s token key."""
    return PartnerClient(
        node_id=frm, partner_id=to, base_url=tree.url(to), key=load_token_key(tree.config(frm))
    )


async def until(check: Callable[[], Awaitable[bool]], seconds: float, step: float = 0.05) -> None:
    """Poll ``check`` until it holds; fail after ``seconds`` (bounded, never a bare sleep)."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / step) + 2):
        if await check():
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(step)
    raise AssertionError(f"the condition did not hold within {seconds} s")


@dataclass(frozen=True)
class Call:
    started: float
    latency: float
    status: int
    code: str | None
    audit: str | None


@dataclass
class Load:
    """Concurrent signed calls in a loop, every answer recorded, until stopped."""

    client: PartnerClient
    method: str = "GET"
    path: str = "/v1/catalog"
    body: Any = None
    workers: int = 8
    calls: list[Call] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def _worker(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                resp = await self.client.call(self.method, self.path, json_body=self.body)
            except UpstreamError as exc:  # the node is down: connection refused or reset
                self.calls.append(Call(t0, time.monotonic() - t0, 0, exc.code, None))
                await asyncio.sleep(0.02)
                continue
            code = None
            if resp.status >= 400:
                code = resp.json().get("code")
            self.calls.append(
                Call(
                    t0, time.monotonic() - t0, resp.status, code, resp.headers.get("Tongban-Audit")
                )
            )

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks), timeout=30)

    def since(self, moment: float) -> list[Call]:
        return [c for c in self.calls if c.started >= moment]


def receipts_in_log(db: Path, receipts: list[str]) -> tuple[int, int]:
    """(missing, wrong leaf) among the acknowledged receipts."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    missing = wrong = 0
    try:
        for header in receipts:
            parts = dict(p.strip().split("=", 1) for p in header.split(";"))
            row = conn.execute(
                "SELECT bytes FROM entries WHERE seq = ?", (int(parts["seq"]),)
            ).fetchone()
            if row is None:
                missing += 1
            elif b64u_encode(hashlib.sha256(b"\0" + bytes(row[0])).digest()) != parts["leaf"]:
                wrong += 1
    finally:
        conn.close()
    return missing, wrong
