"""Fixtures for the audit store tests: real SQLite files in tmp_path, real Ed25519 keys."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpointer import Checkpointer
from gateway.audit.events import AuditEvent
from gateway.audit.note import verifier_key
from gateway.audit.store import AuditStore
from gateway.keys import log_origin

NODE = "cn-360800"
PARTNER = "cn-330800"
START_MICROS = 1_795_910_341_000_000  # 2026-11-22T23:59:01Z


def make_clock(start: int = START_MICROS) -> Callable[[], int]:
    """A clock that moves one millisecond per reading: deterministic, strictly increasing."""
    ticks = itertools.count(start, 1000)
    return lambda: next(ticks)


def event(i: int, *, payload: bool = False, subject: str | None = None) -> AuditEvent:
    """A realistic, varied event (digests, pseudonym, meta, sometimes a payload)."""
    return AuditEvent(
        event=("license.verify", "license.fetch", "service_request.submit")[i % 3],
        actor_type=("partner", "staff", "system")[i % 3],  # type: ignore[arg-type]
        actor_id=(PARTNER, "staff01", NODE)[i % 3],
        actor_sub="窗口-07" if i % 5 == 0 else None,
        outcome=("ok", "ok", "rejected", "error")[i % 4],  # type: ignore[arg-type]
        code=None if i % 4 < 2 else "token_expired",
        subject=subject if subject is not None else (f"1.2.156.3005.2.{i % 7}" if i % 2 else None),
        request=b'{"license": "..."}' if i % 2 == 0 else None,
        response=f'{{"verdict": "valid", "n": {i}}}'.encode(),
        payload=f'{{"name": "张三", "i": {i}}}'.encode() if payload else None,
        meta={"request_id": f"req-{i // 2}", "status": 200 + i % 3, "path": "/v1/licenses/verify"},
    )


@pytest.fixture
def log_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def vkey(log_key: Ed25519PrivateKey) -> str:
    return verifier_key(log_origin(NODE), log_key.public_key())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "node"


@pytest.fixture
async def store(data_dir: Path, vkey: str) -> AsyncIterator[AuditStore]:
    s = AuditStore(data_dir, NODE, log_vkey=vkey, clock=make_clock())
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def fill(store: AuditStore, n: int, *, start: int = 0, payload: bool = False) -> None:
    """Append ``n`` events concurrently (so they group-commit)."""
    events = [event(i, payload=payload) for i in range(start, start + n)]
    await asyncio.gather(*(store.append(e) for e in events))


async def fill_and_sign(
    store: AuditStore, key: Ed25519PrivateKey, n: int, *, every: int = 256
) -> Checkpointer:
    """Append ``n`` events and sign checkpoints (each multiple of ``every`` and the end)."""
    await fill(store, n)
    cp = Checkpointer(store, key, every=every)
    await cp.checkpoint_now()
    return cp
