"""The durable audit store (审计存储): SQLite, group commit, one writer (SPEC 6).

Write path. ``append`` validates and encodes the event at once (so a bad event fails
only its caller), queues it and waits. One writer task drains the queue in batches
(everything waiting, up to ``max_batch``), gives each entry its ``seq`` and ``prev``,
hashes it into the Merkle accumulator, and hands the rows to a dedicated SQLite thread
that writes entries, Merkle nodes, payloads and the subject index in ONE transaction
(WAL, ``synchronous=FULL``: durable at COMMIT). Only then are the receipts handed out,
so a response naming an entry is never sent before the entry is on disk. While one
batch is being committed the next is already being encoded: the fsync and the Python
work overlap.

Failure. If a write fails (disk full, I/O error, a connection gone) the transaction is
rolled back, every append that was waiting gets ``ServiceUnavailable``, and the
in-memory head (next seq, last leaf, accumulator) goes back to the last commit. Before
the next write the head is re-read from the database, so the chain continues from
what is really on disk, even after a commit whose outcome was unknown.

What is stored::

    entries(seq, bytes)                exactly the hashed bytes
    nodes(level, idx, hash)            perfect Merkle subtrees of level >= 4 (WITHOUT ROWID)
    payloads(seq, salt, data)          personal data behind ``commit``, erasable
    subjects(tag, seq)                 pseudonym index: first 8 bytes of the HMAC
    checkpoints(size, note, cosignatures)
    witness_state(origin, size, root, note, updated)   what we cosigned for partners
    meta(key, value)                   node id, log verifier key, schema version

Subtrees below level 4 (16 leaves) are not stored: a proof recomputes them from at most
two runs of 16 entries, which costs far less than writing ~1 extra row per entry.

Start. ``open`` re-derives the head from the stored nodes and the last entries, parses
the last entry, checks the last links of the chain and the last stored 16-leaf node,
and checks that the latest stored checkpoint (its signature when the log key is known)
matches the tree at its size. Any mismatch raises ``StoreCorrupt`` and the node does
not start.

Reads (entries, proofs, checkpoints) use a second connection on a second thread, so
they never wait behind a commit.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import functools
import hashlib
import os
import re
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, Final, TypeVar

from gateway.audit.entry import (
    ZERO_PREV,
    EntryEncoder,
    EntryInvalid,
    PreparedEntry,
    Pseudonymiser,
    commitment,
    format_ts,
    parse_entry,
    subject_tag,
)
from gateway.audit.events import ActorType, AuditEvent, AuditReceipt
from gateway.audit.merkle import (
    CompactRange,
    NodeId,
    consistency_proof_from_nodes,
    inclusion_proof_from_nodes,
    nodes_for_consistency,
    nodes_for_inclusion,
    nodes_for_root,
    root_from_nodes,
)
from gateway.audit.note import (
    NoteError,
    parse_checkpoint_body,
    parse_note,
    parse_signature_lines,
    parse_verifier_key,
    verify_checkpoint,
)
from gateway.config import NodeConfig
from gateway.encoding import b64u_encode
from gateway.errors import Conflict, GatewayError, NotFound, ServiceUnavailable, ValidationFailed
from gateway.keys import log_origin

__all__ = [
    "DB_NAME",
    "KEY_NAME",
    "STORED_MIN_LEVEL",
    "AuditStore",
    "Clock",
    "StoreCorrupt",
    "as_blob",
    "subject_tag",
    "system_clock",
]

Clock = Callable[[], int]
"""Returns the current time as microseconds since the Unix epoch (UTC)."""

DB_NAME: Final = "audit.sqlite3"
KEY_NAME: Final = "pseudonym.key"
SCHEMA_VERSION: Final = "1"
STORED_MIN_LEVEL: Final = 4
"""Lowest level of Merkle node written to ``nodes``; lower ones come from entries."""
TILE: Final = 1 << STORED_MIN_LEVEL
_READ_PAGE: Final = 1000
_REASON_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entries(seq INTEGER PRIMARY KEY, bytes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS nodes(
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY(level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS payloads(
    seq INTEGER PRIMARY KEY, salt BLOB NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS subjects(
    tag INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY(tag, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints(
    size INTEGER PRIMARY KEY, note TEXT NOT NULL, cosignatures TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS witness_state(
    origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL,
    updated INTEGER NOT NULL) WITHOUT ROWID;
"""

_T = TypeVar("_T")
_sha256 = hashlib.sha256
_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
_LEAF_STATE: Final = hashlib.sha256(b"\x00")
"""SHA-256 state after the RFC 9162 leaf prefix; ``_build`` copies it per entry."""
_NODE_STATE: Final = hashlib.sha256(b"\x01")
"""SHA-256 state after the RFC 9162 interior-node prefix."""


def system_clock() -> int:
    """Wall-clock time in epoch microseconds."""
    return time.time_ns() // 1000


class StoreCorrupt(GatewayError):
    """The audit database does not agree with itself; the node refuses to start on it."""

    code = "storage_corrupt"
    status = 500
    title = "Audit store is inconsistent"


# ---------------------------------------------------------------- writer internals


_Op = tuple[PreparedEntry, "asyncio.Future[AuditReceipt]", int | None]
"""One queued append: the entry, its caller's future, and the seq whose payload it
erases in the same transaction (or None). A plain tuple: one is made per append, on
the event loop."""


@dataclass(slots=True)
class _Head:
    """The order-dependent state of the log: next seq, b64u leaf of the last entry, tree."""

    size: int
    prev: bytes
    tree: CompactRange

    def copy(self) -> _Head:
        return _Head(self.size, self.prev, self.tree.copy())


@dataclass(slots=True)
class _Rows:
    """What ``_build`` made of a batch: the rows to insert and, per op, its receipt."""

    entries: list[tuple[int, bytes]] = field(default_factory=list)
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)
    payloads: list[tuple[int, bytes | None, bytes]] = field(default_factory=list)
    subjects: list[tuple[int, int]] = field(default_factory=list)
    erase: list[tuple[int]] = field(default_factory=list)
    receipts: list[AuditReceipt] = field(default_factory=list)


@dataclass(slots=True)
class _Batch:
    ops: list[_Op]
    before: _Head
    after: _Head
    future: asyncio.Future[tuple[_Head, _Rows]]


# ---------------------------------------------------------------- sync helpers (threads)


def _connect_default(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)


def _perfect_hash(leaves: Sequence[bytes]) -> bytes:
    tree = CompactRange()
    tree.extend(leaves)
    return tree.root()


@functools.lru_cache(maxsize=64)
def _nodes_sql(count: int) -> str:
    """Fetch ``count`` nodes by primary key in one statement.

    A join with a VALUES list, because SQLite answers ``(level, idx) IN (VALUES ...)``
    with a full scan of ``nodes``; the join searches the primary key once per node.
    """
    values = ",".join(["(?,?)"] * count)
    return (
        f"SELECT n.level, n.idx, n.hash FROM (VALUES {values}) AS v "  # noqa: S608
        "JOIN nodes AS n ON n.level = v.column1 AND n.idx = v.column2"
    )


def fetch_nodes(conn: sqlite3.Connection, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """Stored and recomputed Merkle nodes for ``ids``: one query for the stored ones.

    Levels below ``STORED_MIN_LEVEL`` are hashed from the entries they cover; every
    range of entries is read in one query as well. Raises ``StoreCorrupt`` if a node
    or an entry that must exist is missing.
    """
    wanted = list(dict.fromkeys(ids))
    out: dict[NodeId, bytes] = {}
    stored = [n for n in wanted if n[0] >= STORED_MIN_LEVEL]
    for start in range(0, len(stored), 400):
        chunk = stored[start : start + 400]
        params = [v for node in chunk for v in node]
        for level, idx, digest in conn.execute(_nodes_sql(len(chunk)), params):
            out[(level, idx)] = as_blob(digest)
    computed = [n for n in wanted if n[0] < STORED_MIN_LEVEL]
    if computed:
        # Each low node lies inside one 16-leaf tile; read the tiles involved at once.
        tiles = sorted({(idx << level) // TILE for level, idx in computed})
        leaves: dict[int, bytes] = {}
        clauses = " OR ".join("(seq >= ? AND seq < ?)" for _ in tiles)
        params = [v for t in tiles for v in (t * TILE, (t + 1) * TILE)]
        sql = f"SELECT seq, bytes FROM entries WHERE {clauses}"  # noqa: S608
        for seq, data in conn.execute(sql, params):
            leaves[seq] = _sha256(b"\x00" + as_blob(data)).digest()
        for level, idx in computed:
            lo = idx << level
            try:
                run = [leaves[i] for i in range(lo, lo + (1 << level))]
            except KeyError as exc:
                raise StoreCorrupt(f"audit entry {exc.args[0]} is missing") from None
            out[(level, idx)] = _perfect_hash(run)
    missing = [n for n in wanted if n not in out]
    if missing:
        level, idx = missing[0]
        raise StoreCorrupt(f"Merkle node (level {level}, index {idx}) is missing")
    return out


_INSERT_CHUNK: Final = 4096
"""Most rows in one INSERT (fewer when SQLite allows fewer bound variables)."""


@functools.lru_cache(maxsize=256)
def _insert_sql(target: str, columns: int, count: int) -> str:
    row = "(" + ",".join("?" * columns) + ")"
    return f"INSERT INTO {target} VALUES " + ",".join([row] * count)  # noqa: S608


def _insert(conn: sqlite3.Connection, target: str, columns: int, rows: Sequence[Any]) -> None:
    """Insert many rows with one multi-row statement per chunk.

    ``executemany`` steps SQLite once per row and so releases and re-takes the GIL once
    per row. Under load the event loop holds the GIL, and every re-take by this thread
    waits up to a whole switch interval (5 ms) while the loop runs: a statement costs
    its two GIL hand-overs whatever its size. So a batch goes in as one statement per
    table (up to ``_INSERT_CHUNK`` rows and SQLite's bound-variable limit); with the
    default ``max_batch`` a commit then takes 7 statements, not 11.
    """
    per = min(_INSERT_CHUNK, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // columns)
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        conn.execute(_insert_sql(target, columns, len(chunk)), list(chain.from_iterable(chunk)))


def as_blob(value: object) -> bytes:
    """A column read back as bytes, whatever SQLite type it holds.

    Entries are written as BLOBs, but a tampered database may hold TEXT (``replace()``
    returns text) or numbers; reading them as bytes lets the hashes decide, instead of
    a type error hiding the tampering.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return b"" if value is None else str(value).encode("ascii")


def _leaf(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def _prev_of(data: bytes) -> bytes:
    """The ``prev`` value of canonical entry bytes (the last top-level ``"prev"`` key)."""
    at = data.rfind(b',"prev":"')
    if at < 0:
        raise StoreCorrupt("an audit entry has no prev field")
    return data[at + 9 : at + 9 + 43]


def _load_head(conn: sqlite3.Connection, node: str) -> _Head:
    """Re-derive the head from disk and check the end of the chain (see module docs)."""
    row = conn.execute("SELECT max(seq), min(seq) FROM entries").fetchone()
    if row[0] is None:
        return _Head(0, ZERO_PREV.encode("ascii"), CompactRange())
    size = int(row[0]) + 1
    if row[1] != 0:
        raise StoreCorrupt(f"the first audit entry is {row[1]}, not 0")
    # The last full 16-leaf tile and the partial one after it, plus one entry before.
    start = max(0, (size // TILE - 1) * TILE - 1)
    rows = [
        (seq, as_blob(data))
        for seq, data in conn.execute(
            "SELECT seq, bytes FROM entries WHERE seq >= ? ORDER BY seq", (start,)
        )
    ]
    if [r[0] for r in rows] != list(range(start, size)):
        raise StoreCorrupt(f"audit entries between {start} and {size - 1} have a gap")
    try:
        last = parse_entry(rows[-1][1])
    except EntryInvalid as exc:
        raise StoreCorrupt(f"the last audit entry ({size - 1}) is invalid: {exc.detail}") from None
    if last.seq != size - 1:
        raise StoreCorrupt(f"the last audit entry is stored at {size - 1} but says seq {last.seq}")
    if last.node != node:
        raise StoreCorrupt(f"the audit log belongs to {last.node}, not {node}")
    leaves = [_leaf(r[1]) for r in rows]
    zero = ZERO_PREV.encode("ascii")
    for i, (seq, data) in enumerate(rows):
        if seq == 0 and _prev_of(data) != zero:
            raise StoreCorrupt("audit entry 0 does not start the chain")
        if i > 0 and _prev_of(data) != b64u_encode(leaves[i - 1]).encode("ascii"):
            raise StoreCorrupt(f"audit entry {seq} does not link to entry {seq - 1}")
    ids = nodes_for_root(size)
    full_tiles = size // TILE
    if full_tiles:
        ids.append((STORED_MIN_LEVEL, full_tiles - 1))
    nodes = fetch_nodes(conn, ids)
    if full_tiles:
        base = (full_tiles - 1) * TILE - start
        if nodes[(STORED_MIN_LEVEL, full_tiles - 1)] != _perfect_hash(leaves[base : base + TILE]):
            raise StoreCorrupt("the stored Merkle node over the last 16 entries does not match")
    peaks = [nodes[i] for i in nodes_for_root(size)]
    tree = CompactRange.from_state(size, peaks)
    return _Head(size, b64u_encode(leaves[-1]).encode("ascii"), tree)


def _ends_at(conn: sqlite3.Connection, head: _Head) -> bool:
    """Whether the stored log ends exactly at ``head`` (size and last leaf)."""
    row = conn.execute("SELECT seq, bytes FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return head.size == 0
    last = b64u_encode(_leaf(as_blob(row[1]))).encode("ascii")
    return bool(row[0] == head.size - 1 and last == head.prev)


def _check_checkpoint(conn: sqlite3.Connection, head: _Head, vkey: str | None, node: str) -> None:
    row = conn.execute("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
    if row is None:
        return
    size, note = int(row[0]), str(row[1])
    try:
        if vkey is not None:
            checkpoint, _ = verify_checkpoint(
                note, parse_verifier_key(vkey), origin=log_origin(node)
            )
        else:
            checkpoint = parse_checkpoint_body(parse_note(note).body)
    except NoteError as exc:
        raise StoreCorrupt(f"the latest checkpoint (size {size}) is invalid: {exc}") from None
    if checkpoint.size != size:
        raise StoreCorrupt(f"the checkpoint stored under size {size} is for {checkpoint.size}")
    if size > head.size:
        raise StoreCorrupt(
            f"a checkpoint was signed at size {size} but only {head.size} entries are stored"
        )
    root = root_from_nodes(size, fetch_nodes(conn, nodes_for_root(size)))
    if root != checkpoint.root:
        raise StoreCorrupt(f"the tree at size {size} does not match its signed checkpoint")


def _full_note(note: str, cosignatures: str) -> bytes:
    return (note + cosignatures).encode("utf-8")


def _merge_cosignatures(existing: str, new_lines: str) -> str:
    """Add cosignature lines; a newer line from the same witness key replaces the old one."""
    merged: dict[tuple[str, bytes], str] = {}
    for block in (existing, new_lines):
        if not block:
            continue
        for sig in parse_signature_lines(block.encode("utf-8")):
            merged[(sig.name, sig.key_id)] = sig.line()
    return "".join(merged.values())


# ---------------------------------------------------------------- the store


class AuditStore:
    """The node's audit log on SQLite; implements ``AuditLog`` (see module docs)."""

    def __init__(
        self,
        data_dir: str | Path,
        node_id: str,
        *,
        log_vkey: str | None = None,
        clock: Clock = system_clock,
        max_batch: int = 1024,
        connect: Callable[[str], sqlite3.Connection] = _connect_default,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.node_id = node_id
        self.dir = Path(data_dir) / "audit"
        self.db_path = self.dir / DB_NAME
        self._vkey_arg = log_vkey
        self.log_vkey: str | None = log_vkey
        self._clock = clock
        self._max_batch = max_batch
        self._connect = connect
        self._writer_exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-writer")
        self._reader_exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-reader")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._pseudonym: Pseudonymiser | None = None
        self._encoder: EntryEncoder | None = None
        self._queue: deque[_Op] = deque()
        self._wakeup = asyncio.Event()
        self._grown = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._head: _Head | None = None  # what the writer has built (may run ahead)
        self._committed: _Head | None = None  # what is on disk
        self._root_cache: tuple[int, bytes] | None = None
        self._reload = False
        self._idle = False
        self._closing = False
        self._closed = False
        self._erasing: set[int] = set()
        self._latest_checkpoint: tuple[int, bytes] | None = None
        self.commits = 0
        """Batches committed since open (appends / commits is the group-commit factor)."""

    @classmethod
    def from_config(cls, cfg: NodeConfig, **kwargs: Any) -> AuditStore:
        """The store under ``<data_dir>/audit`` with the node's log key from ``certs/``."""
        vkey_file = cfg.node_certs / "log.vkey"
        vkey = vkey_file.read_text(encoding="utf-8").strip() if vkey_file.is_file() else None
        return cls(cfg.data_dir, cfg.id, log_vkey=vkey, **kwargs)

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        """Open (creating if new), check the head, and start the writer.

        Raises ``StoreCorrupt`` (and closes everything) when the stored log does not
        agree with itself, so the node does not start on it.
        """
        if self._writer is not None:
            raise RuntimeError("audit store is already open")
        if self._closed:
            raise RuntimeError("a closed audit store cannot be reopened; make a new one")
        try:
            secret = await self._on_writer(self._load_secret)
            self._pseudonym = Pseudonymiser(secret)
            self._encoder = EntryEncoder(self.node_id, self._pseudonym)
            head = await self._on_writer(self._open_writer)
            self._head = head
            self._committed = head.copy()
            await self._on_reader(self._open_reader)
            self._latest_checkpoint = await self._on_reader(self._read_latest_checkpoint)
        except BaseException:
            await self.close()  # refuse to start, but leave nothing open
            raise
        self._writer = asyncio.create_task(self._writer_loop(), name="audit-writer")

    async def close(self) -> None:
        """Write everything queued, then close the database. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._closing = True
            self._wakeup.set()
            await self._writer
            self._writer = None
        with contextlib.suppress(Exception):
            await self._on_writer(self._close_writer)
        with contextlib.suppress(Exception):
            await self._on_reader(self._close_reader)
        self._writer_exec.shutdown(wait=True)
        self._reader_exec.shutdown(wait=True)

    async def __aenter__(self) -> AuditStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- threads ----------------------------------------------------------------------

    async def _on_writer(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._writer_exec, fn, *args)

    async def _on_reader(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._reader_exec, fn, *args)

    def _load_secret(self) -> bytes:
        """The node secret for pseudonyms: 32 random bytes, made once, mode 0600."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.dir / KEY_NAME
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            secret = path.read_bytes()
            if len(secret) != 32:
                raise StoreCorrupt(f"{path} must hold exactly 32 bytes") from None
            return secret
        secret = os.urandom(32)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
            f.flush()
            os.fsync(f.fileno())
        return secret

    def _new_connection(self) -> sqlite3.Connection:
        conn = self._connect(str(self.db_path))
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreCorrupt(f"cannot put {self.db_path} in WAL mode")
            conn.execute("PRAGMA synchronous=FULL")
            # Erased payloads are overwritten with zeros, not just unlinked from the tree.
            conn.execute("PRAGMA secure_delete=ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_writer(self) -> _Head:
        conn = self._new_connection()
        self._wconn = conn
        conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("node", self.node_id) != self.node_id:
            raise StoreCorrupt(f"this audit database belongs to {meta['node']}")
        if meta.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise StoreCorrupt(f"unknown audit schema version {meta['schema']}")
        defaults = {"node": self.node_id, "schema": SCHEMA_VERSION}
        if self._vkey_arg is not None:
            defaults["log_vkey"] = self._vkey_arg
        conn.executemany(
            "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", list(defaults.items())
        )
        stored_vkey = conn.execute("SELECT value FROM meta WHERE key = 'log_vkey'").fetchone()
        self.log_vkey = None if stored_vkey is None else str(stored_vkey[0])
        if self._vkey_arg is not None and self.log_vkey != self._vkey_arg:
            raise StoreCorrupt(
                "the log key in certs/ is not the key that signed this audit log; restore "
                "that key or move the old audit store aside"
            )
        conn.execute("BEGIN")  # one snapshot, even while another process appends
        try:
            head = _load_head(conn, self.node_id)
            _check_checkpoint(conn, head, self.log_vkey, self.node_id)
        finally:
            conn.execute("ROLLBACK")
        return head

    def _open_reader(self) -> None:
        self._rconn = self._new_connection()

    def _close_writer(self) -> None:
        if self._wconn is not None:
            self._wconn.close()
            self._wconn = None

    def _close_reader(self) -> None:
        if self._rconn is not None:
            self._rconn.close()
            self._rconn = None

    def _reader(self) -> sqlite3.Connection:
        if self._rconn is None:
            raise ServiceUnavailable("the audit store is not open")
        return self._rconn

    # -- append -----------------------------------------------------------------------

    def pseudonym(self, value: str) -> str:
        """The keyed pseudonym the log stores for ``value`` (license id or holder id)."""
        if self._pseudonym is None:
            raise ServiceUnavailable("the audit store is not open")
        return self._pseudonym(value)

    async def append(self, event: AuditEvent) -> AuditReceipt:
        """Record ``event``; returns once its entry is committed to disk.

        Raises ``EntryInvalid`` for an event that cannot be recorded and
        ``ServiceUnavailable`` when the store cannot write.
        """
        # ``_enqueue`` inlined: every partner call awaits this, on the event loop.
        encoder = self._encoder
        if encoder is None or self._writer is None or self._closing:
            raise ServiceUnavailable("the audit store is not open")
        prepared = encoder.prepare(event, format_ts(self._clock()))
        future: asyncio.Future[AuditReceipt] = asyncio.get_running_loop().create_future()
        self._queue.append((prepared, future, None))
        if self._idle:  # only an idle writer waits on the event; a busy one loops back
            self._wakeup.set()
        return await future

    async def _enqueue(self, event: AuditEvent, erase_seq: int | None) -> AuditReceipt:
        encoder = self._encoder
        if encoder is None or self._writer is None or self._closing:
            raise ServiceUnavailable("the audit store is not open")
        prepared = encoder.prepare(event, format_ts(self._clock()))
        future: asyncio.Future[AuditReceipt] = asyncio.get_running_loop().create_future()
        self._queue.append((prepared, future, erase_seq))
        if self._idle:
            self._wakeup.set()
        return await future

    def _build(self, ops: list[_Op], head: _Head) -> _Rows:
        """Give each op its seq and prev, hash it into the tree; advances ``head`` in place.

        This loop is the writer's whole per-entry cost, so it inlines the accumulator
        step of ``CompactRange.append`` (merge the new leaf with one peak per trailing 1
        bit of its index) and keeps only nodes of level >= ``STORED_MIN_LEVEL``. The tree
        it leaves behind is checked by ``CompactRange.from_state``, and the tests compare
        its roots with ``merkle``. Rows are made here as the tuples SQLite binds, so the
        writer thread only flattens them.
        """
        rows = _Rows()
        nodes = rows.nodes
        add_entry, add_subject = rows.entries.append, rows.subjects.append
        add_payload, add_receipt = rows.payloads.append, rows.receipts.append
        peaks = list(head.tree.peaks)
        pop, push = peaks.pop, peaks.append
        seq, prev = head.size, head.prev
        b64, urlsafe, join = binascii.b2a_base64, _URLSAFE, b"".join
        leaf_state, node_state = _LEAF_STATE.copy, _NODE_STATE.copy
        min_level, receipt = STORED_MIN_LEVEL, AuditReceipt
        for prepared, _, erase_seq in ops:
            head_text, mid, tail, subject, salt, payload, tag = prepared
            data = join((head_text, prev, mid, b"%d" % seq, tail))
            state = leaf_state()  # SHA-256 after 0x00: no copy of the entry to prefix it
            state.update(data)
            leaf = state.digest()
            h, index, level = leaf, seq, 0
            while index & 1:
                state = node_state()
                state.update(pop())
                state.update(h)
                h = state.digest()
                index >>= 1
                level += 1
                if level >= min_level:
                    nodes.append((level, index, h))
            push(h)
            add_entry((seq, data))
            if subject is not None:
                add_subject((subject_tag(subject) if tag is None else tag, seq))
            if payload is not None:
                add_payload((seq, salt, payload))
            if erase_seq is not None:
                rows.erase.append((erase_seq,))
            add_receipt(receipt(seq, leaf))
            prev = b64(leaf).translate(urlsafe)[:43]  # drops "=\n"
            seq += 1
        head.size, head.prev = seq, prev
        head.tree = CompactRange.from_state(seq, peaks)
        return rows

    def _write_batch(
        self, ops: list[_Op], rows: _Rows, before: _Head, after: _Head
    ) -> tuple[_Head, _Rows]:
        """Writer thread: one transaction for a batch; returns the head and rows it committed.

        Holding the write lock, the batch first checks that the log on disk still ends
        where the batch was built. If not (another process, e.g. a ``tongban`` command,
        appended; or a commit whose outcome was unknown did land) it is rebuilt on the
        disk's head, so the chain always continues from what is really stored.
        """
        if self._reload or self._wconn is None:
            conn = self._recover()
            self._reload = False
        else:
            conn = self._wconn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not _ends_at(conn, before):
                after = _load_head(conn, self.node_id)
                rows = self._build(ops, after)
            _insert(conn, "entries(seq, bytes)", 2, rows.entries)
            _insert(conn, "nodes(level, idx, hash)", 3, rows.nodes)
            _insert(conn, "subjects(tag, seq)", 2, rows.subjects)
            _insert(conn, "payloads(seq, salt, data)", 3, rows.payloads)
            if rows.erase:
                conn.executemany("DELETE FROM payloads WHERE seq = ?", rows.erase)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
            raise
        if rows.erase:
            # Drop the WAL frames that still hold the erased bytes (best effort: a reader
            # may hold them a little longer; the next checkpoint overwrites them then).
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return after, rows

    def _read_head(self) -> _Head:
        """Writer thread: the head as stored, read in one snapshot."""
        conn = self._recover() if (self._reload or self._wconn is None) else self._wconn
        conn.execute("BEGIN")
        try:
            return _load_head(conn, self.node_id)
        finally:
            conn.execute("ROLLBACK")

    def _recover(self) -> sqlite3.Connection:
        """Writer thread: after a failure, reuse the connection if it still works, else reopen."""
        conn = self._wconn
        if conn is not None:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.execute("SELECT 1").fetchone()
                return conn
            except sqlite3.Error:
                with contextlib.suppress(Exception):
                    conn.close()
                self._wconn = None
        conn = self._new_connection()
        self._wconn = conn
        return conn

    def _drain(self) -> list[_Op]:
        queue, limit = self._queue, self._max_batch
        if len(queue) <= limit:
            ops = list(queue)
            queue.clear()
            return ops
        return [queue.popleft() for _ in range(limit)]

    async def _writer_loop(self) -> None:
        inflight: _Batch | None = None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if inflight is not None:
                    receipts = await self._finish(inflight)
                    if receipts is not None:
                        self._deliver(inflight.ops, receipts)
                    inflight = None
                    continue
                if self._closing:
                    return
                self._idle = True
                self._wakeup.clear()
                await self._wakeup.wait()
                self._idle = False
                continue
            ops = self._drain()
            head = self._head
            assert head is not None
            before = head.copy()
            rows = self._build(ops, head)  # the next batch is built while one commits
            done: tuple[list[_Op], list[AuditReceipt]] | None = None
            if inflight is not None:
                receipts = await self._finish(inflight)
                if receipts is None:
                    # Built on a batch that did not land: fail it too (those callers were
                    # already waiting when the store could not write).
                    self._fail(ops, "the audit store could not write")
                    inflight = None
                    continue
                done = (inflight.ops, receipts)
            after = head.copy()
            future = loop.run_in_executor(
                self._writer_exec, self._write_batch, ops, rows, before, after
            )
            inflight = _Batch(ops, before, after, future)
            if done is not None:
                self._deliver(*done)

    async def _finish(self, batch: _Batch) -> list[AuditReceipt] | None:
        """Wait for a batch's commit: its receipts, or None after failing it and rewinding."""
        try:
            committed, rows = await batch.future
        except Exception as exc:
            self._reload = True
            self._head = batch.before
            detail = f"the audit store could not write ({type(exc).__name__})"
            self._fail(batch.ops, detail)
            queued = list(self._queue)
            self._queue.clear()
            self._fail(queued, detail)
            return None
        if committed is not batch.after:
            # Rebuilt on the disk's head: what we built ahead is stale; continue from it.
            self._head = committed.copy()
        self._committed = committed
        self._root_cache = None
        self.commits += 1
        self._signal_growth()
        return rows.receipts

    @staticmethod
    def _deliver(ops: list[_Op], receipts: list[AuditReceipt]) -> None:
        """Hand committed receipts to their callers.

        The loop was woken once for the whole batch (the executor future); each caller's
        task is woken from here, on the loop, by its own future. The writer loop calls
        this after it has started the next commit, so the two overlap.
        """
        for (_, future, _), receipt in zip(ops, receipts, strict=True):
            if not future.done():  # done: the caller was cancelled meanwhile
                future.set_result(receipt)

    async def refresh(self) -> int:
        """Catch up with entries another process appended while this one was idle.

        Returns the committed size. A busy writer catches up by itself (every batch
        checks the disk's head), so this only reads when nothing is queued.
        """
        if not self._idle or self._writer is None:
            return self.size
        head = await self._on_writer(self._read_head)
        if self._idle and head.size > self.size:
            self._head = head
            self._committed = head.copy()
            self._root_cache = None
            self._signal_growth()
        return self.size

    def _signal_growth(self) -> None:
        self._grown.set()
        self._grown = asyncio.Event()

    @staticmethod
    def _fail(ops: Iterable[_Op], detail: str) -> None:
        for _, future, _ in ops:
            if not future.done():
                future.set_exception(ServiceUnavailable(detail))

    async def ping(self) -> None:
        """For ``/readyz``: raise ``ServiceUnavailable`` unless the store reads and writes.

        Reads one row through the reader connection; a write that failed and has not
        yet been followed by a good one counts as not ready.
        """
        if self._writer is None or self._closing:
            raise ServiceUnavailable("the audit store is not open")
        if self._reload:
            raise ServiceUnavailable("the audit store's last write failed")
        try:
            await self._on_reader(self._read_one, "SELECT count(*) FROM meta")
        except sqlite3.Error as exc:
            raise ServiceUnavailable(
                f"the audit store cannot be read ({type(exc).__name__})"
            ) from None

    # -- the committed tree -------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of committed entries."""
        return 0 if self._committed is None else self._committed.size

    def root(self) -> bytes:
        """RFC 9162 root of the committed tree."""
        if self._committed is None:
            raise ServiceUnavailable("the audit store is not open")
        cached = self._root_cache
        if cached is not None and cached[0] == self._committed.size:
            return cached[1]
        root = self._committed.tree.root()
        self._root_cache = (self._committed.size, root)
        return root

    async def wait_for_growth(self, size: int, within: float | None = None) -> int:
        """Wait until more than ``size`` entries are committed (or ``within`` s); new size."""
        if self.size > size:
            return self.size
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._grown.wait(), within)
        return self.size

    def _check_size(self, size: int) -> None:
        if size > self.size:
            raise NotFound(f"the log has {self.size} entries, not {size}")

    async def root_at(self, size: int) -> bytes:
        """Root of the tree over the first ``size`` committed entries."""
        if size < 0:
            raise ValidationFailed("size must not be negative", fields={"size": "negative"})
        self._check_size(size)
        if size == self.size:
            return self.root()
        return await self._on_reader(self._root_at_sync, size)

    def _root_at_sync(self, size: int) -> bytes:
        return root_from_nodes(size, fetch_nodes(self._reader(), nodes_for_root(size)))

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries."""
        if not 0 <= index < size:
            raise ValidationFailed(
                f"index {index} is not inside a tree of size {size}", fields={"index": "range"}
            )
        self._check_size(size)
        return await self._on_reader(self._inclusion_sync, index, size)

    def _inclusion_sync(self, index: int, size: int) -> list[bytes]:
        nodes = fetch_nodes(self._reader(), nodes_for_inclusion(index, size))
        return inclusion_proof_from_nodes(index, size, nodes)

    async def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """RFC 9162 consistency proof from tree size ``old`` to ``new``."""
        if not 0 <= old <= new:
            raise ValidationFailed(
                f"no consistency proof from {old} to {new}", fields={"old": "range"}
            )
        self._check_size(new)
        return await self._on_reader(self._consistency_sync, old, new)

    def _consistency_sync(self, old: int, new: int) -> list[bytes]:
        nodes = fetch_nodes(self._reader(), nodes_for_consistency(old, new))
        return consistency_proof_from_nodes(old, new, nodes)

    # -- entries --------------------------------------------------------------------------

    async def entry(self, seq: int) -> bytes:
        """The exact bytes of entry ``seq``; ``NotFound`` if it is not (yet) committed."""
        if not 0 <= seq < self.size:
            raise NotFound(f"audit entry {seq} does not exist")
        row = await self._on_reader(self._read_one, "SELECT bytes FROM entries WHERE seq = ?", seq)
        if row is None:
            raise StoreCorrupt(f"audit entry {seq} is missing")
        return as_blob(row[0])

    def _read_one(self, sql: str, *params: Any) -> Any:
        return self._reader().execute(sql, params).fetchone()

    def _read_all(self, sql: str, *params: Any) -> list[Any]:
        return self._reader().execute(sql, params).fetchall()

    async def iter_entries(
        self, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[tuple[int, bytes]]:
        """Stream ``(seq, bytes)`` of committed entries from ``start``, a page at a time."""
        end = self.size if stop is None else min(stop, self.size)
        seq = start
        while seq < end:
            rows = await self._on_reader(
                self._read_all,
                "SELECT seq, bytes FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq LIMIT ?",
                seq,
                end,
                _READ_PAGE,
            )
            if not rows:
                return
            for s, data in rows:
                yield int(s), as_blob(data)
            seq = int(rows[-1][0]) + 1

    async def entries_for_subject(self, pseudonym: str) -> list[tuple[int, bytes]]:
        """Every committed entry whose ``subject`` is ``pseudonym``, in log order."""
        try:
            tag = subject_tag(pseudonym)
        except ValueError:
            return []
        rows = await self._on_reader(
            self._read_all,
            "SELECT e.seq, e.bytes FROM subjects s JOIN entries e ON e.seq = s.seq "
            "WHERE s.tag = ? ORDER BY s.seq",
            tag,
        )
        needle = f',"subject":"{pseudonym}"'.encode("ascii")
        out = []
        for seq, data in rows:
            data = as_blob(data)
            at = data.rfind(b',"subject":')
            if at >= 0 and data.startswith(needle, at):
                out.append((int(seq), data))
        return out

    # -- payloads and erasure ------------------------------------------------------------

    async def payload(self, seq: int) -> bytes:
        """The personal payload behind entry ``seq``, checked against its ``commit``.

        ``NotFound`` when the entry has none or it was erased.
        """
        data = await self.entry(seq)
        row = await self._on_reader(
            self._read_one, "SELECT salt, data FROM payloads WHERE seq = ?", seq
        )
        if row is None:
            raise NotFound(f"audit entry {seq} has no payload (none recorded, or erased)")
        salt, payload = as_blob(row[0]), as_blob(row[1])
        if parse_entry(data).commit != commitment(salt, payload):
            raise StoreCorrupt(f"the payload of audit entry {seq} does not match its commitment")
        return payload

    async def erase(
        self, seq: int, reason: str, actor: str, *, actor_type: ActorType = "staff"
    ) -> AuditReceipt:
        """Delete the payload and salt of entry ``seq`` and record an ``audit.erase`` entry.

        ``reason`` is a reason *code* (``[a-z][a-z0-9_]*``, e.g. ``holder_request``), never
        free text, so no personal detail can enter the log through it. The deletion and
        the new entry commit in the same transaction. The chain, the tree and every proof
        stay valid: only the salted commitment remains, and without the salt it reveals
        nothing.
        """
        if not _REASON_RE.fullmatch(reason):
            raise ValidationFailed(
                "reason must be a reason code like holder_request", fields={"reason": "format"}
            )
        if not 0 <= seq < self.size:
            raise NotFound(f"audit entry {seq} does not exist")
        if seq in self._erasing:
            raise Conflict(f"the payload of audit entry {seq} is erased or being erased")
        row = await self._on_reader(self._read_one, "SELECT 1 FROM payloads WHERE seq = ?", seq)
        if row is None:
            raise Conflict(f"audit entry {seq} has no payload to erase (none, or already erased)")
        if seq in self._erasing:  # another erase got here while we read
            raise Conflict(f"the payload of audit entry {seq} is erased or being erased")
        # Kept in the set after success, so a racing second erase cannot pass the check.
        self._erasing.add(seq)
        event = AuditEvent(
            event="audit.erase",
            actor_type=actor_type,
            actor_id=actor,
            meta={"erased_seq": seq, "reason_code": reason},
        )
        try:
            return await self._enqueue(event, seq)
        except BaseException:
            self._erasing.discard(seq)
            raise

    # -- checkpoints --------------------------------------------------------------------

    def _read_latest_checkpoint(self) -> tuple[int, bytes] | None:
        row = (
            self._reader()
            .execute("SELECT size, note, cosignatures FROM checkpoints ORDER BY size DESC LIMIT 1")
            .fetchone()
        )
        return None if row is None else (int(row[0]), _full_note(row[1], row[2]))

    async def latest_checkpoint(self) -> bytes | None:
        """The latest signed checkpoint note with every cosignature stored for it."""
        return None if self._latest_checkpoint is None else self._latest_checkpoint[1]

    @property
    def latest_checkpoint_size(self) -> int | None:
        """Tree size of the latest stored checkpoint (``None`` before the first)."""
        return None if self._latest_checkpoint is None else self._latest_checkpoint[0]

    async def checkpoint(self, size: int) -> bytes | None:
        """The stored checkpoint at exactly ``size`` (with cosignatures), if any."""
        row = await self._on_reader(
            self._read_one, "SELECT note, cosignatures FROM checkpoints WHERE size = ?", size
        )
        return None if row is None else _full_note(row[0], row[1])

    async def add_checkpoint(self, note: bytes) -> None:
        """Store a signed checkpoint; it must be for this log and match its tree.

        The checkpointer checks consistency before signing; this is the store's own
        last line, so no checkpoint that disagrees with the stored tree is ever kept.
        """
        try:
            parsed = parse_note(note)
            checkpoint = parse_checkpoint_body(parsed.body)
        except NoteError as exc:
            raise ValidationFailed(f"not a checkpoint note: {exc}") from None
        if checkpoint.origin != log_origin(self.node_id):
            raise ValidationFailed(f"checkpoint origin {checkpoint.origin!r} is not this log")
        if await self.root_at(checkpoint.size) != checkpoint.root:
            raise Conflict(f"checkpoint root at size {checkpoint.size} does not match the log")
        text = note.decode("utf-8")
        await self._write_job(self._insert_checkpoint, checkpoint.size, text)
        latest = self._latest_checkpoint
        if latest is None or checkpoint.size >= latest[0]:
            stored = await self.checkpoint(checkpoint.size)
            assert stored is not None
            self._latest_checkpoint = (checkpoint.size, stored)

    def _insert_checkpoint(self, conn: sqlite3.Connection, size: int, text: str) -> None:
        conn.execute("INSERT OR IGNORE INTO checkpoints(size, note) VALUES (?, ?)", (size, text))

    async def add_cosignatures(self, size: int, lines: str | bytes) -> None:
        """Attach witness cosignature lines to the stored checkpoint at ``size``.

        The caller has verified them (``witness.submit_checkpoint`` does); a newer line
        from the same witness key replaces an older one.
        """
        text = lines.decode("utf-8") if isinstance(lines, bytes) else lines
        try:
            parse_signature_lines(text.encode("utf-8"))
        except NoteError as exc:
            raise ValidationFailed(f"not cosignature lines: {exc}") from None
        found = await self._write_job(self._merge_cosignatures, size, text)
        if not found:
            raise NotFound(f"no checkpoint is stored at size {size}")
        latest = self._latest_checkpoint
        if latest is not None and latest[0] == size:
            stored = await self.checkpoint(size)
            assert stored is not None
            self._latest_checkpoint = (size, stored)

    def _merge_cosignatures(self, conn: sqlite3.Connection, size: int, text: str) -> bool:
        row = conn.execute(
            "SELECT cosignatures FROM checkpoints WHERE size = ?", (size,)
        ).fetchone()
        if row is None:
            return False
        merged = _merge_cosignatures(str(row[0]), text)
        conn.execute("UPDATE checkpoints SET cosignatures = ? WHERE size = ?", (merged, size))
        return True

    async def _write_job(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(conn, *args)`` in its own transaction on the writer thread."""

        def job() -> _T:
            conn = self._recover() if (self._reload or self._wconn is None) else self._wconn
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.execute("ROLLBACK")
                raise
            return result

        try:
            return await self._on_writer(job)
        except sqlite3.Error as exc:
            raise ServiceUnavailable(
                f"the audit store could not write ({type(exc).__name__})"
            ) from None

    # -- witness state (what this node cosigned for partners) -----------------------------

    async def witness_state(self, origin: str) -> tuple[int, bytes] | None:
        """The latest ``(size, root)`` this node cosigned for log ``origin``."""
        row = await self._on_reader(
            self._read_one, "SELECT size, root FROM witness_state WHERE origin = ?", origin
        )
        return None if row is None else (int(row[0]), bytes(row[1]))

    async def advance_witness_state(
        self, origin: str, old_size: int, size: int, root: bytes, note: bytes
    ) -> bool:
        """Atomically move ``origin`` from ``old_size`` to ``(size, root)``.

        Compare-and-set: returns False (nothing written) when the stored size is no
        longer ``old_size``, e.g. a concurrent request won.
        """
        return await self._write_job(
            self._advance_witness, origin, old_size, size, root, note.decode("utf-8")
        )

    def _advance_witness(
        self,
        conn: sqlite3.Connection,
        origin: str,
        old_size: int,
        size: int,
        root: bytes,
        note: str,
    ) -> bool:
        now = int(time.time())
        row = conn.execute("SELECT size FROM witness_state WHERE origin = ?", (origin,)).fetchone()
        current = 0 if row is None else int(row[0])
        if current != old_size:
            return False
        conn.execute(
            "INSERT INTO witness_state(origin, size, root, note, updated) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
            "note = excluded.note, updated = excluded.updated",
            (origin, size, root, note, now),
        )
        return True
