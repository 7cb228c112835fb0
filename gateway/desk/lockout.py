"""Sign-in lockout: repeated failures lock an account name and a client address for a while.

Two counters, checked before any password is hashed:

* per account name — ``5`` failures within 15 minutes lock that name for 15 minutes.
  Names that do not exist are counted exactly like real ones, so the lockout does not
  reveal which accounts exist;
* per client address — ``20`` failures within 15 minutes lock the address. It is
  higher because a hall's desks often share one address, and a success does not reset
  it (otherwise one valid account would let a guesser reset the counter at will).

Counters are stored under a keyed hash (see ``database.py``). While locked, attempts
are refused without being counted, so a lock ends on time even under attack.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.desk.database import DeskDatabase
from gateway.desk.errors import SignInLocked
from gateway.encoding import b64u_encode


@dataclass(frozen=True)
class LockoutRule:
    max_failures: int
    window: float
    lock: float


ACCOUNT_RULE = LockoutRule(max_failures=5, window=15 * 60, lock=15 * 60)
ADDRESS_RULE = LockoutRule(max_failures=20, window=15 * 60, lock=15 * 60)


@dataclass(frozen=True)
class AttemptKeys:
    """The two counters one sign-in attempt touches."""

    account: str
    address: str


class Lockout:
    """Failure counters in the desk database; ``clock`` is injectable for tests."""

    def __init__(
        self,
        db: DeskDatabase,
        secret: bytes,
        *,
        account_rule: LockoutRule = ACCOUNT_RULE,
        address_rule: LockoutRule = ADDRESS_RULE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._secret = secret
        self._rules = {"account": account_rule, "address": address_rule}
        self._clock = clock

    def keys(self, user: str, address: str) -> AttemptKeys:
        """Keyed hashes of the two counters (user names are compared case-insensitively)."""

        def key(kind: str, value: str) -> str:
            mac = hmac.digest(self._secret, f"{kind}\n{value}".encode(), hashlib.sha256)
            return f"{kind}:{b64u_encode(mac)}"

        return AttemptKeys(key("account", user.strip().lower()), key("address", address))

    async def check(self, keys: AttemptKeys) -> None:
        """Raise ``SignInLocked`` (with seconds to wait) while either counter is locked."""
        now = self._clock()

        def locked_until(db: sqlite3.Connection) -> float:
            row = db.execute(
                "SELECT MAX(locked_until) FROM sign_in_failures WHERE key IN (?, ?)",
                (keys.account, keys.address),
            ).fetchone()
            return float(row[0] or 0.0)

        until = await self._db.run(locked_until)
        if until > now:
            raise SignInLocked(retry_after=math.ceil(until - now))

    async def failed(self, keys: AttemptKeys) -> None:
        """Count a failure on both counters; the one that reaches its limit locks."""
        now = self._clock()

        def count(db: sqlite3.Connection) -> None:
            for kind, key in (("account", keys.account), ("address", keys.address)):
                rule = self._rules[kind]
                row = db.execute(
                    "SELECT count, first FROM sign_in_failures WHERE key = ?", (key,)
                ).fetchone()
                n, first = (0, now) if row is None or now - row[1] > rule.window else row
                n += 1
                until = 0.0
                if n >= rule.max_failures:
                    n, until = 0, now + rule.lock
                db.execute(
                    "INSERT INTO sign_in_failures (key, count, first, locked_until)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET count = excluded.count,"
                    " first = excluded.first, locked_until = excluded.locked_until",
                    (key, n, first if n else now, until),
                )
            db.execute(
                "DELETE FROM sign_in_failures WHERE locked_until < ? AND first < ?",
                (now, now - max(r.window for r in self._rules.values())),
            )

        await self._db.run(count)

    async def succeeded(self, keys: AttemptKeys) -> None:
        """A good sign-in clears the account's counter (never the address's)."""
        await self._db.run(
            lambda db: db.execute("DELETE FROM sign_in_failures WHERE key = ?", (keys.account,))
        )
