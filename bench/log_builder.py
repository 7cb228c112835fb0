"""Bulk-building a valid audit log fast: a store database and its export (benches 3, 4).

Appending millions of entries through ``AuditStore.append`` at a few thousand per
second would take hours for 10M. This builder produces the *same* database the store
would have written, much faster, using the store's own pieces:

* entries come from ``gateway.audit.entry.EntryEncoder`` (the store's encoder): 512
  varied events are prepared once, and each entry is that template with its own
  ``ts``, ``seq`` and ``prev`` spliced in, exactly as the store's writer does;
* the schema is the store's (``gateway.audit.store._SCHEMA``); Merkle nodes of level
  >= ``STORED_MIN_LEVEL`` are those ``merkle.CompactRange.append`` reports completed;
* a checkpoint is signed every 256 entries with an Ed25519 log key
  (``note.Checkpoint`` + ``note.sign_note``), as the checkpointer would;
* payload rows are not written (as if erased), so the bulk insert stays lean; proofs
  and verification never read them.

Rows go in with ``journal_mode=OFF`` and ``synchronous=OFF`` (nothing to protect while
building a throwaway file), then the file is switched to WAL like the store's. The
result is checked by opening it with ``AuditStore.open`` (which re-derives the head
and checks the last tile and the latest checkpoint) and comparing the root. The export
is then written by ``gateway.audit.export.export`` itself.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.entry import ZERO_PREV, EntryEncoder, PreparedEntry, Pseudonymiser, format_ts
from gateway.audit.events import AuditEvent
from gateway.audit.merkle import CompactRange
from gateway.audit.note import Checkpoint, sign_note, verifier_key
from gateway.audit.store import _SCHEMA, DB_NAME, KEY_NAME, STORED_MIN_LEVEL, subject_tag
from gateway.encoding import b64u_encode
from gateway.keys import log_origin

NODE = "cn-360800"
CHECKPOINT_EVERY = 256
_TEMPLATES = 512
_START_MICROS = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
_BATCH = 20_000


def _events() -> list[AuditEvent]:
    kinds = ("license.verify", "license.fetch", "license.status", "service_request.submit")
    out = []
    for i in range(_TEMPLATES):
        out.append(
            AuditEvent(
                event=kinds[i % 4],
                actor_type=("partner", "staff", "system")[i % 3],
                actor_id=("cn-330800", "cn-360800", "cn-360800")[i % 3],
                actor_sub="staff01" if i % 3 == 1 else None,
                outcome=("ok", "ok", "ok", "rejected")[i % 4],
                code="token_expired" if i % 4 == 3 else None,
                subject=f"1.2.156.3005.2.11100000000013338W032.1136080001423588XW.{i:07d}.001.F",
                request=b'{"license":"%d"}' % i,
                response=b'{"verdict":"valid","n":%d}' % i,
                payload=b'{"license":{"n":%d}}' % i if i % 2 == 0 else None,
                meta={
                    "route": "licenses.verify",
                    "method": "POST",
                    "status": 200,
                    "request_id": f"{i:016x}",
                    "verdict": "valid",
                    "checks": {"signature": "pass", "status": "pass"},
                },
            )
        )
    return out


def _with_ts(prepared: PreparedEntry, ts: bytes) -> tuple[bytes, bytes, bytes]:
    # ``tail`` ends with ``"ts":"<27 characters>","v":1}``: swap in this entry's time.
    tail = prepared.tail
    return prepared.head, prepared.mid, tail[: -(27 + 8)] + ts + tail[-8:]


def entries(count: int, secret: bytes) -> Iterator[tuple[int, bytes, bytes, int | None]]:
    """``(seq, entry bytes, leaf hash, subject tag)`` for ``count`` chained entries."""
    pseudonym = Pseudonymiser(secret)
    encoder = EntryEncoder(NODE, pseudonym)
    templates = [encoder.prepare(e, format_ts(_START_MICROS)) for e in _events()]
    tags = [None if t.subject is None else subject_tag(t.subject) for t in templates]
    prev = ZERO_PREV.encode("ascii")
    sha, join, b64 = hashlib.sha256, b"".join, b64u_encode
    for seq in range(count):
        t = seq % _TEMPLATES
        head, mid, tail = _with_ts(templates[t], format_ts(_START_MICROS + seq * 997).encode())
        data = join((head, prev, mid, b"%d" % seq, tail))
        leaf = sha(b"\x00" + data).digest()
        yield seq, data, leaf, tags[t]
        prev = b64(leaf).encode("ascii")


def build_database(
    data_dir: Path,
    count: int,
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[Path, str, bytes]:
    """Write ``<data_dir>/audit/audit.sqlite3`` with ``count`` entries; (db, vkey, root).

    The log key is written next to it (``log.key.pem``, mode 0600) so a run can reuse
    the cached database.
    """
    audit_dir = data_dir / "audit"
    audit_dir.mkdir(parents=True, exist_ok=True)
    db = audit_dir / DB_NAME
    db.unlink(missing_ok=True)
    secret = os.urandom(32)
    (audit_dir / KEY_NAME).write_bytes(secret)
    (audit_dir / KEY_NAME).chmod(0o600)
    key = Ed25519PrivateKey.generate()
    key_file = data_dir / "log.key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    origin = log_origin(NODE)
    vkey = verifier_key(origin, key.public_key())
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.executescript(_SCHEMA)
    conn.executemany(
        "INSERT INTO meta(key, value) VALUES (?, ?)",
        [("node", NODE), ("schema", "1"), ("log_vkey", vkey)],
    )
    tree = CompactRange()
    rows: list[tuple[int, bytes]] = []
    nodes: list[tuple[int, int, bytes]] = []
    subjects: list[tuple[int, int]] = []
    notes: list[tuple[int, str]] = []
    min_level = STORED_MIN_LEVEL

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO entries(seq, bytes) VALUES (?, ?)", rows)
        conn.executemany("INSERT INTO nodes(level, idx, hash) VALUES (?, ?, ?)", nodes)
        conn.executemany("INSERT INTO subjects(tag, seq) VALUES (?, ?)", subjects)
        conn.executemany("INSERT INTO checkpoints(size, note) VALUES (?, ?)", notes)
        conn.execute("COMMIT")
        rows.clear()
        nodes.clear()
        subjects.clear()
        notes.clear()

    for seq, data, leaf, tag in entries(count, secret):
        rows.append((seq, data))
        for level, idx, digest in tree.append(leaf)[min_level:]:
            nodes.append((level, idx, digest))
        if tag is not None:
            subjects.append((tag, seq))
        size = seq + 1
        if size % CHECKPOINT_EVERY == 0 or size == count:
            body = Checkpoint(origin, size, tree.root()).body()
            notes.append((size, sign_note(body, origin, key).decode("utf-8")))
        if len(rows) >= _BATCH:
            flush()
            if progress is not None:
                progress(size)
    flush()
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return db, vkey, tree.root()


async def check_with_store(data_dir: Path, vkey: str, root: bytes) -> int:
    """Open the built database with the real store (it checks its head) and compare roots."""
    from gateway.audit.store import AuditStore

    store = AuditStore(data_dir, NODE, log_vkey=vkey)
    await store.open()
    try:
        if store.root() != root:
            raise RuntimeError("the store's root of the built database differs")
        return store.size
    finally:
        await store.close()


def cached_log(cache: Path, count: int, say: Callable[[str], None]) -> tuple[Path, str]:
    """A built database of ``count`` entries under ``cache`` (built once); (data dir, vkey)."""
    import asyncio

    data_dir = cache / f"log-{count}"
    done = data_dir / "BUILT"
    if done.is_file():
        return data_dir, done.read_text(encoding="utf-8").split("\n")[0]
    say(f"  building a {count:,}-entry audit database under {data_dir} (cached after) ...")
    t0 = time.perf_counter()
    last = [t0]

    def progress(n: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= 15:
            last[0] = now
            say(f"    {n:,} entries, {n / (now - t0):,.0f}/s")

    _, vkey, root = build_database(data_dir, count, progress=progress)
    size = asyncio.run(check_with_store(data_dir, vkey, root))
    if size != count:
        raise RuntimeError(f"the store sees {size} entries, not {count}")
    say(f"  built and checked by AuditStore.open in {time.perf_counter() - t0:,.0f} s")
    done.write_text(f"{vkey}\n{b64u_encode(root)}\n", encoding="utf-8")
    return data_dir, vkey


def cached_export(cache: Path, count: int, say: Callable[[str], None]) -> Path:
    """The export directory (``gateway.audit.export.export``) of a cached database."""
    from gateway.audit.export import export

    out = cache / f"export-{count}"
    if (out / "DONE").is_file():
        return out
    data_dir, vkey = cached_log(cache, count, say)
    t0 = time.perf_counter()
    summary = export(data_dir, out, vkey=vkey)
    say(f"  exported {summary.entries:,} entries in {time.perf_counter() - t0:,.0f} s")
    (out / "DONE").write_text("ok\n", encoding="utf-8")
    return out
