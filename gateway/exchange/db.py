"""The exchange database: one SQLite file for requests, their outbox and the breakers.

Requests, their history and escalations, the outbox and the per-partner circuit
breakers live in one file (``<data_dir>/exchange.db``) so that a status change and the
delivery it causes commit in **one transaction**: a delivery can never be lost between
"the state changed" and "someone must be told".

Several processes may open the file at once (a node and ``tongban requests submit``,
or several workers of one node): WAL lets readers run beside the writer, every write
transaction starts with ``BEGIN IMMEDIATE`` so two writers queue on the lock instead of
failing half-way, and ``synchronous=FULL`` makes a commit survive power loss.

Each ``ExchangeDb`` runs its statements on one dedicated thread: an fsync per commit
takes milliseconds and must not stall the event loop, and one thread means one
connection used in order.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from gateway.errors import GatewayError, ServiceUnavailable

__all__ = ["ExchangeDb", "exchange_db_path"]

_T = TypeVar("_T")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id         TEXT PRIMARY KEY,
    role               TEXT NOT NULL CHECK (role IN ('handling', 'accepting')),
    item_code          TEXT NOT NULL,
    handling_node      TEXT NOT NULL,
    accepting_node     TEXT NOT NULL,
    status             TEXT NOT NULL,
    digest             TEXT NOT NULL,
    submission         TEXT NOT NULL,
    answer             TEXT NOT NULL,
    submitted_at       TEXT NOT NULL,
    received_at        REAL NOT NULL,
    updated_at         REAL NOT NULL,
    next_escalation_at REAL
);
CREATE INDEX IF NOT EXISTS requests_escalation ON requests (next_escalation_at);
CREATE INDEX IF NOT EXISTS requests_updated ON requests (updated_at);
CREATE INDEX IF NOT EXISTS requests_open ON requests (role, updated_at)
    WHERE status NOT IN ('completed', 'rejected');

CREATE TABLE IF NOT EXISTS history (
    request_id  TEXT NOT NULL REFERENCES requests (request_id),
    n           INTEGER NOT NULL,
    status      TEXT NOT NULL,
    at          TEXT NOT NULL,
    note        TEXT NOT NULL,
    source      TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (request_id, n)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS escalations (
    request_id TEXT NOT NULL REFERENCES requests (request_id),
    level      TEXT NOT NULL,
    due_at     TEXT NOT NULL,
    fired_at   REAL NOT NULL,
    audited    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, level)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    key             TEXT NOT NULL UNIQUE,
    partner         TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('submit', 'event')),
    request_id      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'refused')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_attempt_at REAL,
    last_error      TEXT,
    delivered_at    REAL,
    lease_owner     TEXT,
    lease_until     REAL NOT NULL DEFAULT 0,
    published       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_request ON outbox (request_id, seq);

CREATE TABLE IF NOT EXISTS circuits (
    partner          TEXT PRIMARY KEY,
    status           TEXT NOT NULL,
    failures         INTEGER NOT NULL,
    opened_at        REAL,
    probe_started_at REAL,
    changed_at       REAL NOT NULL
) WITHOUT ROWID;
"""


def exchange_db_path(data_dir: Path) -> Path:
    """Where a node keeps its exchange database."""
    return data_dir / "exchange.db"


_OPEN_RETRIES = 20


class ExchangeDb:
    """One connection to the exchange database, used from one worker thread."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exchange-sqlite")
        self._db: sqlite3.Connection | None = None
        self._closed = False

    # -- worker thread -----------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # Switching a new file to WAL takes an exclusive lock that SQLite's busy handler
        # does not wait for; two processes opening a fresh database at once retry here.
        for attempt in range(_OPEN_RETRIES):
            try:
                return self._open()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == _OPEN_RETRIES - 1:
                    raise
                time.sleep(0.02 * (attempt + 1))
        raise AssertionError("unreachable")

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, isolation_level=None, timeout=self._busy_timeout, check_same_thread=False
            )
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("PRAGMA foreign_keys=ON")
                db.execute("BEGIN IMMEDIATE")  # two processes creating the schema queue here
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                db.execute("COMMIT")
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _transaction(self, fn: Callable[[sqlite3.Connection], _T], mode: str) -> _T:
        db = self._connect()
        db.execute(f"BEGIN {mode}")
        try:
            result = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- event loop --------------------------------------------------------------------

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        if self._closed:
            raise ServiceUnavailable("the exchange database is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except GatewayError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise ServiceUnavailable(f"the exchange database failed: {type(exc).__name__}") from exc

    async def write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn`` in one write transaction (``BEGIN IMMEDIATE``); roll back on error."""
        return await self._run(self._transaction, fn, "IMMEDIATE")

    async def read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn`` in one read transaction: a consistent snapshot of the file."""
        return await self._run(self._transaction, fn, "DEFERRED")

    async def close(self) -> None:
        """Close the connection on its thread; safe to call twice."""
        if self._closed:
            return
        try:
            await self._run(self._close)
        finally:
            self._closed = True
            self._executor.shutdown(wait=False)
