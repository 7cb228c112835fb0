"""Desk sessions and their CSRF tokens (synchronizer tokens tied to the session).

A session is a random 256-bit cookie value; the database keeps only its SHA-256, the
account, the role and three times. A session ends when the user signs out, after
``idle`` seconds without a request, or ``absolute`` seconds after sign-in (one working
day), whichever comes first.

The CSRF token of a session is HMAC(desk secret, "csrf" || cookie value): tied to that
session, different for every session, and never stored. Before sign-in the page gets a
*pre-session* cookie with its own token the same way, so the sign-in form is protected
as well (no one can sign a victim's browser into an attacker's account).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.desk.accounts import Role
from gateway.desk.database import DeskDatabase
from gateway.encoding import b64u_encode
from gateway.errors import Forbidden

IDLE_SECONDS = 30 * 60
ABSOLUTE_SECONDS = 10 * 60 * 60
TOUCH_EVERY = 30.0
"""``last_seen`` is written at most this often per session (fewer disk writes)."""
MAX_COOKIE = 128


@dataclass(frozen=True)
class Session:
    """A signed-in desk user as the store knows them."""

    user: str
    role: Role
    created: float
    expires: float
    csrf: str


@dataclass(frozen=True)
class NewSession:
    """What sign-in hands the browser: the cookie value and the page's CSRF token."""

    cookie: str
    csrf: str
    session: Session


def _id_hash(cookie: str) -> str:
    return b64u_encode(hashlib.sha256(cookie.encode("ascii")).digest())


def csrf_token(secret: bytes, kind: str, cookie: str) -> str:
    """The synchronizer token for a session (``kind`` "csrf") or pre-session ("pre")."""
    return b64u_encode(hmac.digest(secret, f"{kind}\n{cookie}".encode("ascii"), "sha256"))


def check_csrf(secret: bytes, kind: str, cookie: str | None, sent: str | None) -> None:
    """Raise ``Forbidden`` unless ``sent`` is the token of this (pre-)session."""
    if not cookie or not sent or len(sent) > MAX_COOKIE or not sent.isascii():
        raise Forbidden("missing or wrong CSRF token; reload the page")
    if not hmac.compare_digest(csrf_token(secret, kind, cookie), sent):
        raise Forbidden("missing or wrong CSRF token; reload the page")


def new_cookie_value() -> str:
    return secrets.token_urlsafe(32)


def valid_cookie_value(value: str | None) -> bool:
    return bool(value) and len(value or "") <= MAX_COOKIE and (value or "").isascii()


class SessionStore:
    """Sessions in the desk database; ``clock`` is injectable so tests drive expiry."""

    def __init__(
        self,
        db: DeskDatabase,
        secret: bytes,
        *,
        idle: float = IDLE_SECONDS,
        absolute: float = ABSOLUTE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.secret = secret
        self.idle = idle
        self.absolute = absolute
        self._clock = clock

    async def create(self, user: str, role: Role) -> NewSession:
        """Start a session (sign-in); also drops sessions that have ended."""
        cookie = new_cookie_value()
        now = self._clock()
        expires = now + self.absolute

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM sessions WHERE expires <= ? OR last_seen <= ?", (now, now - self.idle)
            )
            db.execute(
                "INSERT INTO sessions (id_hash, user, role, created, last_seen, expires)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (_id_hash(cookie), user, role, now, now, expires),
            )

        await self._db.run(insert)
        csrf = csrf_token(self.secret, "csrf", cookie)
        return NewSession(cookie, csrf, Session(user, role, now, expires, csrf))

    async def get(self, cookie: str | None) -> Session | None:
        """The live session for a cookie value, or ``None`` (unknown, ended or expired)."""
        if cookie is None or not valid_cookie_value(cookie):
            return None
        now = self._clock()
        key = _id_hash(cookie)

        def load(db: sqlite3.Connection) -> tuple[str, str, float, float, float] | None:
            row = db.execute(
                "SELECT user, role, created, last_seen, expires FROM sessions WHERE id_hash = ?",
                (key,),
            ).fetchone()
            if row is None:
                return None
            if row[4] <= now or row[3] + self.idle <= now:
                db.execute("DELETE FROM sessions WHERE id_hash = ?", (key,))
                return None
            if now - row[3] >= TOUCH_EVERY:
                db.execute("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", (now, key))
            return (str(row[0]), str(row[1]), float(row[2]), float(row[3]), float(row[4]))

        found = await self._db.run(load)
        if found is None:
            return None
        user, role, created, _, expires = found
        csrf = csrf_token(self.secret, "csrf", cookie)
        return Session(user, role, created, expires, csrf)  # type: ignore[arg-type]

    async def end(self, cookie: str | None) -> None:
        """Sign out: the cookie value no longer opens anything, in any process."""
        if cookie is None or not valid_cookie_value(cookie):
            return
        key = _id_hash(cookie)
        await self._db.run(lambda db: db.execute("DELETE FROM sessions WHERE id_hash = ?", (key,)))

    async def end_all_of(self, user: str) -> int:
        """End every session of an account (e.g. after its password changed)."""

        def delete(db: sqlite3.Connection) -> int:
            return db.execute("DELETE FROM sessions WHERE user = ?", (user,)).rowcount

        return await self._db.run(delete)
