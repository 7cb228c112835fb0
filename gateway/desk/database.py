"""The desk's own SQLite file (``<data_dir>/desk.db``): sessions, sign-in failures, secret.

Why server-side sessions rather than signed cookies: signing out, an idle timeout and
a lockout must take effect at once and for every process serving the node, and a
signed cookie cannot be taken back before it expires. The rows hold no secret a reader
of the file could use: a session is stored under the SHA-256 of its cookie value, and
sign-in failures under a keyed hash of the user name or client address (a mistyped
password in the user field must not sit in a file in clear).

Every statement runs on one worker thread with its own connection, so the event loop
never waits on a disk sync; WAL mode lets several node processes share the file.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from gateway.errors import ServiceUnavailable

_T = TypeVar("_T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id_hash   TEXT PRIMARY KEY,
    user      TEXT NOT NULL,
    role      TEXT NOT NULL,
    created   REAL NOT NULL,
    last_seen REAL NOT NULL,
    expires   REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sign_in_failures (
    key          TEXT PRIMARY KEY,
    count        INTEGER NOT NULL,
    first        REAL NOT NULL,
    locked_until REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
"""


class DeskDatabase:
    """One SQLite connection used in order on one thread; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="desk-sqlite")
        self._db: sqlite3.Connection | None = None
        self._closed = False

    def connection(self) -> sqlite3.Connection:
        """The connection (worker thread only), opened and migrated on first use."""
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, timeout=2.0)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(SCHEMA)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    async def run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn(connection)`` on the worker thread; storage errors become 503."""
        if self._closed:
            raise ServiceUnavailable("the desk store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(self.connection()))
        except (sqlite3.Error, OSError) as exc:
            raise ServiceUnavailable(f"the desk store failed: {type(exc).__name__}") from exc

    async def secret(self, name: str) -> bytes:
        """A 32-byte random secret made once per database (shared by every process)."""

        def get(db: sqlite3.Connection) -> bytes:
            db.execute(
                "INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)",
                (name, secrets.token_bytes(32)),
            )
            row = db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
            return bytes(row[0])

        return await self.run(get)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def close_db() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close_db)
        self._executor.shutdown(wait=True)
