"""The SQLite audit store: group commit, proofs, restart checks, write failures."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpointer import Checkpointer
from gateway.audit.entry import ZERO_PREV, EntryInvalid, parse_entry
from gateway.audit.events import AuditEvent
from gateway.audit.merkle import (
    CompactRange,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from gateway.audit.note import verifier_key
from gateway.audit.store import DB_NAME, KEY_NAME, AuditStore, StoreCorrupt
from gateway.audit.verify import verify_database
from gateway.encoding import b64u_encode
from gateway.errors import NotFound, ServiceUnavailable, ValidationFailed
from gateway.keys import log_origin

from .conftest import NODE, event, fill, fill_and_sign, make_clock


async def all_entries(store: AuditStore) -> list[bytes]:
    return [data async for _, data in store.iter_entries(0)]


def reference_root(entries: list[bytes], size: int) -> bytes:
    tree = CompactRange()
    tree.extend(leaf_hash(e) for e in entries[:size])
    return tree.root()


async def test_group_commit_gives_consecutive_seqs_and_true_receipts(store: AuditStore) -> None:
    receipts = await asyncio.gather(*(store.append(event(i)) for i in range(3000)))
    assert sorted(r.seq for r in receipts) == list(range(3000))
    assert store.size == 3000
    # Group commit: far fewer transactions than entries.
    assert store.commits < 300
    entries = await all_entries(store)
    for r in receipts:
        assert leaf_hash(entries[r.seq]) == r.leaf
        assert r.header() == f"seq={r.seq}; leaf={b64u_encode(r.leaf)}"
    # The chain: every entry parses, has its seq and links to the previous leaf.
    prev = ZERO_PREV
    for seq, data in enumerate(entries):
        entry = parse_entry(data)
        assert entry.seq == seq and entry.prev == prev and entry.node == NODE
        prev = b64u_encode(leaf_hash(data))
    assert store.root() == reference_root(entries, 3000)


async def test_proofs_verify_for_many_positions(store: AuditStore) -> None:
    await fill(store, 777)
    entries = await all_entries(store)
    sizes = [1, 2, 3, 15, 16, 17, 31, 32, 33, 255, 256, 257, 500, 776, 777]
    for size in sizes:
        root = await store.root_at(size)
        assert root == reference_root(entries, size)
        for index in {0, size // 2, size - 1, max(0, size - 17)}:
            proof = await store.inclusion_proof(index, size)
            verify_inclusion(leaf_hash(entries[index]), index, size, proof, root)
    for old in [0, 1, 5, 16, 100, 256, 300]:
        for new in [s for s in sizes if s >= old]:
            proof = await store.consistency_proof(old, new)
            verify_consistency(old, new, await store.root_at(old), await store.root_at(new), proof)


async def test_bad_proof_arguments(store: AuditStore) -> None:
    await fill(store, 10)
    with pytest.raises(ValidationFailed):
        await store.inclusion_proof(10, 10)
    with pytest.raises(NotFound):
        await store.inclusion_proof(3, 11)
    with pytest.raises(ValidationFailed):
        await store.consistency_proof(5, 4)
    with pytest.raises(NotFound):
        await store.entry(10)
    with pytest.raises(NotFound):
        await store.root_at(11)


async def test_reopen_keeps_everything_and_continues_the_chain(
    data_dir: Path, vkey: str, log_key: Ed25519PrivateKey
) -> None:
    store = AuditStore(data_dir, NODE, log_vkey=vkey, clock=make_clock())
    await store.open()
    await fill_and_sign(store, log_key, 300)
    pseudonym = store.pseudonym("1.2.156.3005.2.1")
    root, entries = store.root(), await all_entries(store)
    await store.close()

    again = AuditStore(data_dir, NODE, log_vkey=vkey, clock=make_clock())
    await again.open()
    try:
        assert again.size == 300 and again.root() == root
        assert await all_entries(again) == entries
        assert again.pseudonym("1.2.156.3005.2.1") == pseudonym
        assert again.latest_checkpoint_size == 300
        receipt = await again.append(event(300))
        assert receipt.seq == 300
        assert parse_entry(await again.entry(300)).prev == b64u_encode(leaf_hash(entries[-1]))
        await Checkpointer(again, log_key).checkpoint_now()
    finally:
        await again.close()
    assert verify_database(data_dir, vkey).ok


async def test_pseudonym_key_file(store: AuditStore, data_dir: Path) -> None:
    key_file = data_dir / "audit" / KEY_NAME
    assert len(key_file.read_bytes()) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert store.pseudonym("x") != store.pseudonym("y")


def _tamper(data_dir: Path, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(data_dir / "audit" / DB_NAME)
    with conn:
        conn.execute(sql, params)
    conn.close()


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        pytest.param(
            "UPDATE entries SET bytes = replace(bytes, 'license', 'lizense') WHERE seq = ?",
            (39,),
            id="last-entry-changed",
        ),
        pytest.param(
            "UPDATE entries SET bytes = replace(bytes, 'license', 'lizense') WHERE seq = ?",
            (30,),
            id="entry-in-last-tile-changed",
        ),
        pytest.param("DELETE FROM entries WHERE seq = ?", (39,), id="truncated-below-checkpoint"),
        pytest.param("DELETE FROM entries WHERE seq = ?", (35,), id="gap"),
        pytest.param("UPDATE nodes SET hash = zeroblob(32) WHERE level = ?", (4,), id="node"),
        pytest.param(
            "UPDATE checkpoints SET note = replace(note, 'audit', 'audix') WHERE size = ?",
            (40,),
            id="checkpoint",
        ),
    ],
)
async def test_open_refuses_an_inconsistent_head(
    data_dir: Path, vkey: str, log_key: Ed25519PrivateKey, sql: str, params: tuple[Any, ...]
) -> None:
    store = AuditStore(data_dir, NODE, log_vkey=vkey)
    await store.open()
    await fill_and_sign(store, log_key, 40)
    await store.close()
    _tamper(data_dir, sql, *params)
    broken = AuditStore(data_dir, NODE, log_vkey=vkey)
    with pytest.raises(StoreCorrupt):
        await broken.open()
    await broken.close()


async def test_open_refuses_another_node_or_log_key(data_dir: Path, vkey: str) -> None:
    store = AuditStore(data_dir, NODE, log_vkey=vkey)
    await store.open()
    await fill(store, 3)
    await store.close()
    for other in (
        AuditStore(data_dir, "cn-330800", log_vkey=vkey),
        AuditStore(
            data_dir,
            NODE,
            log_vkey=verifier_key(log_origin(NODE), Ed25519PrivateKey.generate().public_key()),
        ),
    ):
        with pytest.raises(StoreCorrupt):
            await other.open()
        await other.close()


async def test_a_bad_event_fails_alone(store: AuditStore) -> None:
    bad = AuditEvent(event="Not An Event", actor_type="system", actor_id=NODE)
    results = await asyncio.gather(
        store.append(event(0)), store.append(bad), store.append(event(1)), return_exceptions=True
    )
    assert isinstance(results[1], EntryInvalid)
    assert store.size == 2


async def test_subject_index(store: AuditStore) -> None:
    license_id = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"
    await fill(store, 50)
    for i in (3, 17, 40):
        await store.append(event(i, subject=license_id))
    rows = await store.entries_for_subject(store.pseudonym(license_id))
    assert [seq for seq, _ in rows] == [50, 51, 52]
    assert all(parse_entry(d).subject == store.pseudonym(license_id) for _, d in rows)
    assert await store.entries_for_subject(store.pseudonym("never used")) == []
    assert await store.entries_for_subject("not a pseudonym!") == []


async def test_iter_entries_and_growth(store: AuditStore) -> None:
    await fill(store, 2500)
    seqs = [seq async for seq, _ in store.iter_entries(1200)]
    assert seqs == list(range(1200, 2500))
    waiter = asyncio.create_task(store.wait_for_growth(2500, 5))
    await asyncio.sleep(0)
    await store.append(event(1))
    assert await waiter == 2501
    assert await store.wait_for_growth(2501, 0.01) == 2501


class FlakyConnection(sqlite3.Connection):
    """A real connection whose COMMIT can be made to fail, like a full disk would."""

    fail_commits = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        if sql == "COMMIT" and FlakyConnection.fail_commits:
            FlakyConnection.fail_commits -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, *args)


def flaky_connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, factory=FlakyConnection
    )


async def test_write_failure_fails_pending_appends_and_recovers(
    data_dir: Path, vkey: str, log_key: Ed25519PrivateKey
) -> None:
    store = AuditStore(data_dir, NODE, log_vkey=vkey, connect=flaky_connect)
    await store.open()
    try:
        await fill(store, 100)
        root, size = store.root(), store.size
        FlakyConnection.fail_commits = 1
        results = await asyncio.gather(
            *(store.append(event(i)) for i in range(100, 400)), return_exceptions=True
        )
        # Every append waiting when the commit failed is refused, none half-written.
        assert all(isinstance(r, ServiceUnavailable) for r in results)
        assert store.size == size and store.root() == root  # nothing half-written
        assert len([d async for _, d in store.iter_entries(0)]) == size

        with pytest.raises(ServiceUnavailable):
            await store.ping()  # not ready until a write succeeds again
        # Recovered: the chain continues from what is on disk.
        receipt = await store.append(event(7))
        await store.ping()
        assert receipt.seq == size
        entries = await all_entries(store)
        assert parse_entry(entries[-1]).prev == b64u_encode(leaf_hash(entries[-2]))
        await fill(store, 50, start=500)
        await Checkpointer(store, log_key).checkpoint_now()
    finally:
        FlakyConnection.fail_commits = 0
        await store.close()
    report = verify_database(data_dir, vkey)
    assert report.ok and report.entries == size + 51


async def test_connection_closed_under_the_store(
    data_dir: Path, vkey: str, log_key: Ed25519PrivateKey
) -> None:
    store = AuditStore(data_dir, NODE, log_vkey=vkey)
    await store.open()
    try:
        await fill(store, 20)
        assert store._wconn is not None
        store._wconn.close()  # the connection dies under the writer
        with pytest.raises(ServiceUnavailable):
            await store.append(event(20))
        receipt = await store.append(event(21))  # reopened; continues the chain
        assert receipt.seq == 20
        await Checkpointer(store, log_key).checkpoint_now()
    finally:
        await store.close()
    assert verify_database(data_dir, vkey).ok


async def test_append_after_close_is_refused(data_dir: Path, vkey: str) -> None:
    store = AuditStore(data_dir, NODE, log_vkey=vkey)
    await store.open()
    await store.close()
    with pytest.raises(ServiceUnavailable):
        await store.append(event(1))


async def test_close_writes_everything_queued(data_dir: Path, vkey: str) -> None:
    store = AuditStore(data_dir, NODE, log_vkey=vkey)
    await store.open()
    tasks = [asyncio.create_task(store.append(event(i))) for i in range(500)]
    await asyncio.sleep(0)
    await store.close()
    assert all(t.done() and not t.exception() for t in tasks)
    conn = sqlite3.connect(data_dir / "audit" / DB_NAME)
    assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 500
    conn.close()


async def test_database_is_wal_with_full_sync(store: AuditStore, data_dir: Path) -> None:
    await fill(store, 3)
    conn = store._wconn
    assert conn is not None
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert (data_dir / "audit" / DB_NAME).is_file()


async def test_two_processes_append_to_one_log(
    data_dir: Path, vkey: str, log_key: Ed25519PrivateKey
) -> None:
    # A node and a `tongban` command share the database: each batch checks, under the
    # write lock, that the log still ends where it was built, and rebuilds if not.
    node = AuditStore(data_dir, NODE, log_vkey=vkey, clock=make_clock())
    await node.open()
    command = AuditStore(data_dir, NODE, log_vkey=vkey, clock=make_clock())
    try:
        await fill(node, 50)
        await command.open()
        assert command.pseudonym("x") == node.pseudonym("x")
        await fill(command, 10, start=50)
        receipts = await asyncio.gather(*(node.append(event(i)) for i in range(60, 65)))
        assert sorted(r.seq for r in receipts) == list(range(60, 65))
        entries = await all_entries(node)
        assert [leaf_hash(entries[r.seq]) for r in receipts] == [r.leaf for r in receipts]
        assert node.size == 65 and command.size == 60
        assert await command.refresh() == 65 and command.root() == node.root()
        await Checkpointer(node, log_key).checkpoint_now()
    finally:
        await command.close()
        await node.close()
    assert verify_database(data_dir, vkey).ok


async def test_proof_queries_search_the_primary_key(store: AuditStore) -> None:
    # A full scan of nodes per proof would make checkpoints and proofs O(n).
    from gateway.audit.store import _nodes_sql

    await fill(store, 40)
    conn = store._rconn
    assert conn is not None
    plan = conn.execute("EXPLAIN QUERY PLAN " + _nodes_sql(3), [4, 0, 4, 1, 5, 0]).fetchall()
    details = " ".join(str(row[-1]) for row in plan)
    assert "SEARCH n USING PRIMARY KEY" in details and "SCAN n" not in details


def few_variables_connect(path: str) -> sqlite3.Connection:
    """A connection whose SQLite allows only 10 bound variables per statement."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)
    return conn


async def test_batches_split_to_the_variable_limit(
    data_dir: Path, vkey: str, log_key: Ed25519PrivateKey
) -> None:
    # A batch goes in as one INSERT per table when SQLite allows; with fewer bound
    # variables it is split, and every row still lands in the same transaction.
    store = AuditStore(data_dir, NODE, log_vkey=vkey, connect=few_variables_connect)
    await store.open()
    try:
        await fill(store, 300, payload=True)
        assert store.commits < 30
        entries = await all_entries(store)
        assert len(entries) == 300 and store.root() == reference_root(entries, 300)
        assert await store.payload(299) == event(299, payload=True).payload
        found = await store.entries_for_subject(store.pseudonym("1.2.156.3005.2.1"))
        assert [seq for seq, _ in found] == list(range(1, 300, 14))  # odd i, i % 7 == 1
        await Checkpointer(store, log_key).checkpoint_now()
    finally:
        await store.close()
    assert verify_database(data_dir, vkey).ok


async def test_a_cancelled_caller_does_not_stop_the_batch(store: AuditStore) -> None:
    tasks = [asyncio.create_task(store.append(event(i))) for i in range(200)]
    await asyncio.sleep(0)  # every append is queued
    for task in tasks[::3]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    receipts = [r for r in results if not isinstance(r, BaseException)]
    assert len(receipts) == len(tasks) - len(tasks[::3])
    # Durable whether or not its caller still waited: the log holds all 200.
    assert store.size == 200
    receipt = await store.append(event(200))
    assert receipt.seq == 200
