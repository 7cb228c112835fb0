"""Erasure: the payload and its salt are gone for good; the chain and every proof still hold."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpointer import Checkpointer
from gateway.audit.entry import commitment, parse_entry
from gateway.audit.events import AuditEvent
from gateway.audit.export import export
from gateway.audit.merkle import leaf_hash, verify_inclusion
from gateway.audit.receipt import prove, verify_receipt
from gateway.audit.store import DB_NAME, AuditStore, StoreCorrupt
from gateway.audit.verify import verify_database, verify_export
from gateway.errors import Conflict, NotFound, ValidationFailed

from .conftest import event, fill

MARKER = "身份证号11010519491231002X-姓名张三丰".encode()


def personal(i: int) -> AuditEvent:
    return AuditEvent(
        event="license.fetch",
        actor_type="partner",
        actor_id="cn-330800",
        subject="11010519491231002X",
        payload=MARKER + str(i).encode(),
        meta={"request_id": f"r{i}"},
    )


def files_hold(directory: Path, needle: bytes) -> bool:
    return any(needle in p.read_bytes() for p in directory.rglob("*") if p.is_file())


async def test_erase_removes_payload_and_keeps_the_log_verifiable(
    store: AuditStore, log_key: Ed25519PrivateKey, vkey: str, data_dir: Path, tmp_path: Path
) -> None:
    await fill(store, 30)
    receipt = await store.append(personal(1))
    other = await store.append(personal(2))
    await fill(store, 30, start=40)
    await Checkpointer(store, log_key).checkpoint_now()
    assert await store.payload(receipt.seq) == MARKER + b"1"
    before = await prove(store, receipt.seq)
    assert files_hold(data_dir / "audit", MARKER)

    erased = await store.erase(receipt.seq, "holder_request", "staff01")
    assert erased.seq == store.size - 1
    entry = parse_entry(await store.entry(erased.seq))
    assert entry.event == "audit.erase" and entry.actor.id == "staff01"
    assert entry.meta == {"erased_seq": receipt.seq, "reason_code": "holder_request"}
    assert entry.commit is None and entry.subject is None

    with pytest.raises(NotFound):
        await store.payload(receipt.seq)
    assert await store.payload(other.seq) == MARKER + b"2"  # only that one is gone
    await Checkpointer(store, log_key).checkpoint_now()

    # The erased entry is unchanged: its commitment stays, its proofs still verify.
    assert leaf_hash(await store.entry(receipt.seq)) == receipt.leaf
    proof = await store.inclusion_proof(receipt.seq, store.size)
    verify_inclusion(receipt.leaf, receipt.seq, store.size, proof, store.root())
    assert verify_receipt(before, vkey).seq == receipt.seq
    assert verify_receipt(await prove(store, receipt.seq), vkey).seq == receipt.seq
    assert verify_database(data_dir, vkey).ok
    export(store, tmp_path / "export")
    assert verify_export(tmp_path / "export", vkey=vkey).ok

    # No copy of the erased bytes is left in the database files (secure_delete + WAL reset).
    await store.erase(other.seq, "retention_expired", "system-retention", actor_type="system")
    await store.close()
    assert not files_hold(data_dir / "audit", MARKER)


async def test_erase_refusals(store: AuditStore) -> None:
    await fill(store, 5)
    with_payload = await store.append(personal(9))
    with pytest.raises(NotFound):
        await store.erase(99, "holder_request", "staff01")
    with pytest.raises(Conflict):
        await store.erase(0, "holder_request", "staff01")  # no payload recorded
    for reason in ("Holder request", "张三要求删除", "", "x" * 41, "holder-request"):
        with pytest.raises(ValidationFailed):
            await store.erase(with_payload.seq, reason, "staff01")
    first, second = await asyncio.gather(
        store.erase(with_payload.seq, "holder_request", "staff01"),
        store.erase(with_payload.seq, "holder_request", "staff02"),
        return_exceptions=True,
    )
    assert isinstance(second, Conflict) != isinstance(first, Conflict)
    with pytest.raises(Conflict):
        await store.erase(with_payload.seq, "holder_request", "staff01")
    erase_entries = [
        parse_entry(d) async for _, d in store.iter_entries(0) if b'"audit.erase"' in d
    ]
    assert len(erase_entries) == 1


async def test_payload_is_checked_against_its_commitment(store: AuditStore, data_dir: Path) -> None:
    receipt = await store.append(personal(3))
    entry = parse_entry(await store.entry(receipt.seq))
    conn = sqlite3.connect(data_dir / "audit" / DB_NAME)
    salt, data = conn.execute(
        "SELECT salt, data FROM payloads WHERE seq = ?", (receipt.seq,)
    ).fetchone()
    assert commitment(salt, data) == entry.commit
    with conn:
        conn.execute("UPDATE payloads SET data = ? WHERE seq = ?", (b"other", receipt.seq))
    conn.close()
    with pytest.raises(StoreCorrupt):
        await store.payload(receipt.seq)
    with pytest.raises(NotFound):
        await store.payload((await store.append(event(4))).seq)
