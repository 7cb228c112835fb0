"""Replay cache: a request token's ``jti`` is accepted once per issuer (SPEC 2).

A claim stores an *owner*, a value unique to one inbound request (say the request id
plus a random nonce). Claiming a ``(issuer, jti)`` that is already held by the same
owner succeeds: that is our own write coming back, for instance when Redis applied a
``SET`` but the reply was lost and the client library sent it again. Only a different
owner is a replay.

The cache is a safety store, so it fails *closed*: when it cannot answer, the request
is refused with ``replay_cache_unavailable`` (503) rather than let a replay through.

Two implementations:

- ``RedisReplayCache``: one atomic ``SET key owner NX GET PXAT <ms>`` per claim (Redis
  7.0 or later). ``GET`` returns the previous owner in the same round trip, so there
  is no window between "already set" and "by whom" for the key to expire in.
  Redis must persist (AOF) for the guarantee to survive a Redis restart.
- ``SqliteReplayCache``: the embedded store for a single-process node; it survives
  restarts (WAL, ``synchronous=FULL``).
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.errors import ReplayCacheUnavailable, TokenReplayed

_T = TypeVar("_T")

REDIS_TIMEOUT = 0.5
"""Socket and connect timeout for Redis, in seconds: a slow store is a down store."""


class ReplayCache(Protocol):
    """Where ``(issuer, jti)`` pairs are claimed once; see the module docstring."""

    async def claim(self, issuer: str, jti: str, expires_at: float, owner: str) -> None:
        """Claim ``jti`` for ``issuer`` until ``expires_at`` (epoch seconds).

        Raises ``TokenReplayed`` when another owner holds it, ``ReplayCacheUnavailable``
        when the store cannot answer. Pass ``VerifiedToken.replay_expires_at``.
        """
        ...

    async def ping(self) -> None:
        """Raise ``ReplayCacheUnavailable`` unless the store answers (for ``/readyz``)."""
        ...

    async def close(self) -> None:
        """Release what the cache opened; further claims raise ``ReplayCacheUnavailable``."""
        ...


def _replayed(issuer: str) -> TokenReplayed:
    return TokenReplayed(f"this jti was already used by {issuer} within its lifetime")


def redis_from_url(url: str, *, timeout: float = REDIS_TIMEOUT) -> aioredis.Redis:
    """A Redis client with short timeouts and a single immediate retry.

    redis-py's default (10 retries with backoff up to 1 s) would hold a request for
    seconds while Redis is down; one retry is enough to ride over a dropped idle
    connection, and the replay cache's owner check makes a retried ``SET`` harmless.
    """
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        decode_responses=False,
    )
    return client


class RedisReplayCache:
    """Replay cache in Redis, shared by every process serving one node.

    Keys are ``<prefix><issuer>:<jti>``; a ``jti`` cannot contain ``:``, so the split is
    never ambiguous. Give a URL to let the cache own its client, or pass a client to
    share one (then ``close`` leaves it open for its owner).
    """

    def __init__(self, redis: str | aioredis.Redis, *, prefix: str = "tongban:jti:") -> None:
        if isinstance(redis, str):
            self._redis = redis_from_url(redis)
            self._owns_client = True
        else:
            self._redis = redis
            self._owns_client = False
        self._prefix = prefix
        self._closed = False

    async def claim(self, issuer: str, jti: str, expires_at: float, owner: str) -> None:
        """Claim ``(issuer, jti)`` for ``owner``; see ``ReplayCache.claim``."""
        if self._closed:
            raise ReplayCacheUnavailable("the replay cache is closed")
        try:
            previous = await self._redis.set(
                f"{self._prefix}{issuer}:{jti}",
                owner,
                nx=True,
                get=True,
                pxat=math.ceil(expires_at * 1000),
            )
        except (RedisError, OSError) as exc:
            # RedisError covers connection and timeout errors and also refusals such
            # as READONLY or OOM: any of them means "cannot tell", hence fail closed.
            raise ReplayCacheUnavailable(
                f"the replay cache (Redis) did not answer: {type(exc).__name__}"
            ) from exc
        if previous is None:
            return
        if isinstance(previous, bytes):
            previous = previous.decode("utf-8", "replace")
        if previous != owner:
            raise _replayed(issuer)

    async def ping(self) -> None:
        """Check that Redis answers; see ``ReplayCache.ping``."""
        if self._closed:
            raise ReplayCacheUnavailable("the replay cache is closed")
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise ReplayCacheUnavailable(
                f"the replay cache (Redis) did not answer: {type(exc).__name__}"
            ) from exc

    async def close(self) -> None:
        """Stop claiming; close the client if this cache created it."""
        self._closed = True
        if self._owns_client:
            await self._redis.aclose()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS replay (
    issuer     TEXT NOT NULL,
    jti        TEXT NOT NULL,
    owner      TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (issuer, jti)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS replay_expiry ON replay (expires_at)
"""

# One statement, one implicit transaction, one fsync: insert the claim, or take over
# a row whose lifetime has passed (the same as a Redis key that expired); a live row
# of someone else is left alone, which shows as rowcount 0.
_CLAIM = """
INSERT INTO replay (issuer, jti, owner, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (issuer, jti) DO UPDATE
    SET owner = excluded.owner, expires_at = excluded.expires_at
    WHERE replay.expires_at <= ?
"""


MAX_BATCH = 512
"""Most claims one transaction of the embedded cache carries."""


class SqliteReplayCache:
    """Embedded replay cache in one SQLite file; claims survive a restart of the node.

    Threading: every SQLite call runs on one dedicated worker thread. Each statement
    takes microseconds, but with ``synchronous=FULL`` a commit ends in an fsync of the
    WAL, which can take milliseconds and must not stall the event loop. One thread also
    means one connection used in order, so no locking of our own is needed.

    Group commit: claims that arrive while a commit is under way wait and are written
    together in the next transaction, so concurrent calls share one fsync instead of
    queueing for one each. A claim is answered only after its transaction committed.

    Expired rows are deleted every ``purge_every`` claims (and by ``purge_expired``).
    Only one process should use the file; several processes need Redis (SPEC 9).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        purge_every: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if purge_every < 1:
            raise ValueError("purge_every must be at least 1")
        self._path = Path(path)
        self._purge_every = purge_every
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-sqlite")
        self._db: sqlite3.Connection | None = None
        self._claims = 0
        self._closed = False
        self._pending: list[tuple[tuple[str, str, float, str], asyncio.Future[str | None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    # -- runs on the worker thread -------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None, timeout=0.5)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                for statement in _SCHEMA.split(";"):
                    db.execute(statement)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _claim(self, issuer: str, jti: str, expires_at: float, owner: str) -> str | None:
        """The owner holding the pair after the claim, or ``None`` when it is ours now."""
        db = self._connect()
        now = self._clock()
        if db.execute(_CLAIM, (issuer, jti, owner, expires_at, now)).rowcount == 1:
            held_by = None
        else:
            row = db.execute(
                "SELECT owner FROM replay WHERE issuer = ? AND jti = ?", (issuer, jti)
            ).fetchone()
            if row is None:  # only another process could have deleted it: do not guess
                raise sqlite3.DatabaseError("claimed row disappeared")
            held_by = None if row[0] == owner else str(row[0])
        self._claims += 1
        if self._claims % self._purge_every == 0:
            self._purge(now)
        return held_by

    def _claim_batch(self, claims: list[tuple[str, str, float, str]]) -> list[str | None]:
        """Every claim of a batch in one transaction: one fsync for all of them."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            held = [self._claim(*claim) for claim in claims]
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return held

    def _purge(self, now: float) -> int:
        return self._connect().execute("DELETE FROM replay WHERE expires_at <= ?", (now,)).rowcount

    def _ping(self) -> None:
        self._connect().execute("SELECT 1").fetchone()

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- event-loop side -----------------------------------------------------------

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        if self._closed:
            raise ReplayCacheUnavailable("the replay cache is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise ReplayCacheUnavailable(
                f"the replay cache (SQLite) failed: {type(exc).__name__}"
            ) from exc

    async def claim(self, issuer: str, jti: str, expires_at: float, owner: str) -> None:
        """Claim ``(issuer, jti)`` for ``owner``; see ``ReplayCache.claim``."""
        if self._closed:
            raise ReplayCacheUnavailable("the replay cache is closed")
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending.append(((issuer, jti, expires_at, owner), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="replay-group-commit")
        if await future is not None:
            raise _replayed(issuer)

    async def _flush(self) -> None:
        """Commit waiting claims batch by batch until none are left."""
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                held = await self._run(self._claim_batch, [claim for claim, _ in batch])
            except ReplayCacheUnavailable as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(ReplayCacheUnavailable(exc.detail))
                continue
            for (_, future), owner in zip(batch, held, strict=True):
                if not future.done():
                    future.set_result(owner)

    async def purge_expired(self) -> int:
        """Delete every claim whose lifetime has passed; returns how many went."""
        return await self._run(self._purge, self._clock())

    async def ping(self) -> None:
        """Open the file if needed and run a trivial query; see ``ReplayCache.ping``."""
        await self._run(self._ping)

    async def close(self) -> None:
        """Close the database on its thread and stop the thread; safe to call twice."""
        if self._closed:
            return
        try:
            await self._run(self._close)
        finally:
            self._closed = True
            self._executor.shutdown(wait=False)
