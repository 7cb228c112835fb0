"""What a partner simulator remembers, in one SQLite file under its ``data_dir``.

Stopping and starting a simulator loses nothing: its licenses and their statuses, the
requests it handles with their history and the step they are at, the callbacks it
still owes the accepting city, the QR tokens (consents) already used and the status
notices other cities sent it all live here. Statuses are kept in SPEC words; each
simulator speaks its own vocabulary only on the wire.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS licenses (
    identifier TEXT PRIMARY KEY, jws TEXT NOT NULL, digest TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'valid', since REAL, reason TEXT);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY, digest TEXT NOT NULL, partner TEXT NOT NULL,
    item_code TEXT NOT NULL, ticket TEXT NOT NULL UNIQUE, plan TEXT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0, next_at REAL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    request_id TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL,
    at REAL NOT NULL, note TEXT NOT NULL, PRIMARY KEY (request_id, seq));
CREATE TABLE IF NOT EXISTS callbacks (
    request_id TEXT NOT NULL, seq INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
    PRIMARY KEY (request_id, seq));
CREATE TABLE IF NOT EXISTS consents (jti TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY, partner TEXT NOT NULL, request_id TEXT NOT NULL,
    status TEXT NOT NULL, at TEXT NOT NULL, note TEXT NOT NULL, received_at REAL NOT NULL);
"""

SubmitOutcome = Literal["new", "same", "conflict"]


@dataclass(frozen=True)
class StoredLicense:
    identifier: str
    jws: str
    digest: str
    status: str
    since: float | None
    reason: str | None


@dataclass(frozen=True)
class HistoryEntry:
    seq: int
    status: str
    at: float
    note: str


@dataclass(frozen=True)
class StoredRequest:
    request_id: str
    partner: str
    item_code: str
    ticket: str
    history: tuple[HistoryEntry, ...]

    @property
    def status(self) -> str:
        return self.history[-1].status


@dataclass(frozen=True)
class PlannedStep:
    status: str
    note: str


@dataclass(frozen=True)
class DueCallback:
    request_id: str
    partner: str
    entry: HistoryEntry
    attempts: int


class SimStore:
    """One simulator's state; every method is one short transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # ---------------------------------------------------------------- licenses

    def license_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM licenses").fetchone()[0])

    def add_license(self, identifier: str, jws: str, digest: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO licenses (identifier, jws, digest) VALUES (?, ?, ?)",
            (identifier, jws, digest),
        )

    def license(self, identifier: str) -> StoredLicense | None:
        row = self._db.execute(
            "SELECT identifier, jws, digest, status, since, reason FROM licenses "
            "WHERE identifier = ?",
            (identifier,),
        ).fetchone()
        return StoredLicense(*row) if row else None

    def licenses(self) -> list[StoredLicense]:
        rows = self._db.execute(
            "SELECT identifier, jws, digest, status, since, reason FROM licenses "
            "ORDER BY identifier"
        ).fetchall()
        return [StoredLicense(*r) for r in rows]

    def set_license_status(
        self, identifier: str, status: str, since: float, reason: str | None
    ) -> bool:
        """Change a status; ``False`` if there is no such license. Revocation is final
        (as on a Tongban node): a revoked license raises ``ValueError``."""
        found = self.license(identifier)
        if found is None:
            return False
        if found.status == "revoked" and status != "revoked":
            raise ValueError("a revoked license cannot change status")
        self._db.execute(
            "UPDATE licenses SET status = ?, since = ?, reason = ? WHERE identifier = ?",
            (status, None if status == "valid" else since, reason, identifier),
        )
        return True

    def use_consent(self, jti: str, expires_at: float, now: float) -> bool:
        """Claim a QR token's ``jti``; ``False`` if it was used before (a QR works once)."""
        self._db.execute("DELETE FROM consents WHERE expires_at < ?", (now,))
        cur = self._db.execute(
            "INSERT OR IGNORE INTO consents (jti, expires_at) VALUES (?, ?)", (jti, expires_at)
        )
        return cur.rowcount == 1

    # ---------------------------------------------------------------- requests

    def submit(
        self,
        *,
        request_id: str,
        digest: str,
        partner: str,
        item_code: str,
        ticket: str,
        plan: tuple[PlannedStep, ...],
        now: float,
        first_step_at: float,
    ) -> tuple[SubmitOutcome, StoredRequest]:
        """Record a new request (``received``), or say whether a repeat matches it."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT digest FROM requests WHERE request_id = ?", (request_id,)
            ).fetchone()
            if row is not None:
                outcome: SubmitOutcome = "same" if row[0] == digest else "conflict"
            else:
                outcome = "new"
                steps = json.dumps([[s.status, s.note] for s in plan], ensure_ascii=False)
                self._db.execute(
                    "INSERT INTO requests (request_id, digest, partner, item_code, ticket, plan,"
                    " step, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    (request_id, digest, partner, item_code, ticket, steps, first_step_at, now),
                )
                self._db.execute(
                    "INSERT INTO history (request_id, seq, status, at, note) "
                    "VALUES (?, 0, 'received', ?, '已接收')",
                    (request_id, now),
                )
        found = self.request(request_id)
        assert found is not None
        return outcome, found

    def request(self, key: str) -> StoredRequest | None:
        """A request by its id or by its ticket."""
        row = self._db.execute(
            "SELECT request_id, partner, item_code, ticket FROM requests "
            "WHERE request_id = ? OR ticket = ?",
            (key, key),
        ).fetchone()
        if row is None:
            return None
        entries = self._db.execute(
            "SELECT seq, status, at, note FROM history WHERE request_id = ? ORDER BY seq",
            (row[0],),
        ).fetchall()
        return StoredRequest(
            request_id=row[0],
            partner=row[1],
            item_code=row[2],
            ticket=row[3],
            history=tuple(HistoryEntry(*e) for e in entries),
        )

    def advance_due(self, now: float, step_seconds: float, *, push: bool, limit: int = 200) -> int:
        """Take every request whose next step is due one step on; returns how many moved."""
        moved = 0
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            rows = self._db.execute(
                "SELECT request_id, plan, step FROM requests WHERE next_at IS NOT NULL "
                "AND next_at <= ? ORDER BY next_at LIMIT ?",
                (now, limit),
            ).fetchall()
            for request_id, plan_text, step in rows:
                plan = json.loads(plan_text)
                status, note = plan[step]
                seq = step + 1
                self._db.execute(
                    "INSERT INTO history (request_id, seq, status, at, note) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (request_id, seq, status, now, note),
                )
                done = seq >= len(plan)
                self._db.execute(
                    "UPDATE requests SET step = ?, next_at = ? WHERE request_id = ?",
                    (seq, None if done else now + step_seconds, request_id),
                )
                if push:
                    self._db.execute(
                        "INSERT INTO callbacks (request_id, seq, next_at) VALUES (?, ?, ?)",
                        (request_id, seq, now),
                    )
                moved += 1
        return moved

    def due_callbacks(self, now: float, limit: int = 50) -> list[DueCallback]:
        """For each request, its oldest undelivered callback if due (so order is kept)."""
        rows = self._db.execute(
            "SELECT c.request_id, r.partner, h.seq, h.status, h.at, h.note, c.attempts, c.next_at "
            "FROM callbacks c JOIN requests r USING (request_id) "
            "JOIN history h ON h.request_id = c.request_id AND h.seq = c.seq "
            "WHERE c.state = 'pending' AND c.seq = (SELECT min(seq) FROM callbacks c2 "
            "  WHERE c2.request_id = c.request_id AND c2.state = 'pending') "
            "AND c.next_at <= ? ORDER BY c.next_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [DueCallback(r[0], r[1], HistoryEntry(r[2], r[3], r[4], r[5]), r[6]) for r in rows]

    def callback_done(self, request_id: str, seq: int, state: str) -> None:
        self._db.execute(
            "UPDATE callbacks SET state = ? WHERE request_id = ? AND seq = ?",
            (state, request_id, seq),
        )

    def callback_retry(self, request_id: str, seq: int, next_at: float) -> None:
        self._db.execute(
            "UPDATE callbacks SET attempts = attempts + 1, next_at = ? "
            "WHERE request_id = ? AND seq = ?",
            (next_at, request_id, seq),
        )

    def callback_states(self) -> dict[str, int]:
        rows = self._db.execute("SELECT state, count(*) FROM callbacks GROUP BY state").fetchall()
        return {str(state): int(n) for state, n in rows}

    # ---------------------------------------------------------------- notices

    def add_notice(
        self, partner: str, request_id: str, status: str, at: str, note: str, now: float
    ) -> None:
        self._db.execute(
            "INSERT INTO notices (partner, request_id, status, at, note, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (partner, request_id, status, at, note, now),
        )

    def notices(self) -> list[dict[str, str]]:
        rows = self._db.execute(
            "SELECT partner, request_id, status, at, note FROM notices ORDER BY id"
        ).fetchall()
        keys = ("partner", "request_id", "status", "at", "note")
        return [dict(zip(keys, r, strict=True)) for r in rows]
