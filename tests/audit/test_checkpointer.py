"""Checkpoints: at least every 256 entries and within a second, never a fork."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpointer import Checkpointer, CheckpointRefused
from gateway.audit.note import parse_checkpoint_body, parse_note, verify_checkpoint
from gateway.audit.note import parse_verifier_key as parse_vkey
from gateway.audit.store import DB_NAME, AuditStore
from gateway.keys import log_origin

from .conftest import NODE, event, fill


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``condition`` (timing under a loaded CI machine varies)."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def stored_sizes(store: AuditStore) -> list[int]:
    conn = sqlite3.connect(store.db_path)
    try:
        return [r[0] for r in conn.execute("SELECT size FROM checkpoints ORDER BY size")]
    finally:
        conn.close()


async def test_checkpoint_at_every_256_entries_even_inside_one_commit(
    store: AuditStore, log_key: Ed25519PrivateKey, vkey: str
) -> None:
    await fill(store, 1000)  # one or a few group commits
    note = await Checkpointer(store, log_key).checkpoint_now()
    assert note is not None
    assert stored_sizes(store) == [256, 512, 768, 1000]
    checkpoint, _ = verify_checkpoint(note, parse_vkey(vkey), origin=log_origin(NODE))
    assert checkpoint.size == 1000 and checkpoint.root == store.root()
    assert await Checkpointer(store, log_key).checkpoint_now() is None  # nothing new


async def test_background_checkpointer_keeps_up(
    store: AuditStore, log_key: Ed25519PrivateKey
) -> None:
    seen: list[bytes] = []

    async def hook(note: bytes) -> None:
        seen.append(note)

    checkpointer = Checkpointer(store, log_key, max_delay=0.05, on_checkpoint=hook)
    checkpointer.start()
    try:
        await fill(store, 5)
        await eventually(lambda: store.latest_checkpoint_size == 5)  # time, not 256
        for burst in range(4):
            await fill(store, 300, start=5 + burst * 300)
            await asyncio.sleep(0.02)
        await eventually(lambda: store.latest_checkpoint_size == 1205)
    finally:
        await checkpointer.stop()
    sizes = stored_sizes(store)
    assert all(b - a <= 256 for a, b in zip([0, *sizes], sizes, strict=False))
    assert seen and parse_checkpoint_body(parse_note(seen[-1]).body).size == 1205


async def test_stop_signs_what_is_left(store: AuditStore, log_key: Ed25519PrivateKey) -> None:
    checkpointer = Checkpointer(store, log_key, max_delay=30)
    checkpointer.start()
    await fill(store, 7)
    await checkpointer.stop()
    assert store.latest_checkpoint_size == 7


async def test_never_signs_an_inconsistent_tree(
    store: AuditStore, log_key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(store, 40)
    checkpointer = Checkpointer(store, log_key)
    await checkpointer.checkpoint_now()
    await store.append(event(41))

    async def forged_proof(old: int, new: int) -> list[bytes]:
        return [bytes(32)] * 3

    monkeypatch.setattr(store, "consistency_proof", forged_proof)
    with pytest.raises(CheckpointRefused):
        await checkpointer.checkpoint_now()
    assert stored_sizes(store) == [40]
    # The background loop stops with the same error instead of signing.
    with pytest.raises(CheckpointRefused):
        await asyncio.wait_for(Checkpointer(store, log_key).run(), 5)


async def test_the_key_file_and_origin(store: AuditStore, log_key: Ed25519PrivateKey) -> None:
    checkpointer = Checkpointer(store, log_key)
    assert checkpointer.origin == "tongban/cn-360800/audit"
    await fill(store, 3)
    note = await checkpointer.checkpoint_now()
    assert note is not None and note.startswith(b"tongban/cn-360800/audit\n3\n")
    assert (store.db_path.parent / DB_NAME).is_file()
