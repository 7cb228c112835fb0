"""Redis Streams outbox backend: the same deliveries, shared by every process of a node.

The outbox *rows* stay in the exchange database, written in the transaction of the
state change (that is what makes them durable); Redis distributes the work:

- **relay**: rows not yet in the stream are added with ``XADD`` (just the key) and
  marked ``published``. A crash between the two adds a row twice, which the checks
  below make harmless. On ``start`` every pending row is re-offered, and a periodic
  sweep re-offers rows that are due but were not seen for a while, so a lost stream
  entry (Redis restarted without persistence, a trimmed stream) delays a delivery,
  never loses it;
- **consumer group**: each worker reads new entries with ``XREADGROUP`` and takes
  over entries another consumer read but never acknowledged (it died) with
  ``XAUTOCLAIM`` once they are idle longer than ``claim_idle``;
- **backoff**: a failed delivery goes to a sorted set scored by its next attempt
  time; a small Lua script moves due members back into the stream atomically;
- **acknowledgement**: ``XACK`` only once the delivery was settled (delivered,
  rescheduled or refused), so a crash before that leaves the entry pending for
  ``XAUTOCLAIM``;
- **deduplication**: after the partner's 2xx a marker ``SET <prefix>:done:<key> NX``
  is written before anything else. An entry claimed again later (a duplicate from the
  relay, or one redelivered after its consumer died between the ack and ``XACK``)
  finds the marker and is acknowledged without being sent. Two workers never send one
  key at the same moment because the row's lease in the database is taken first.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import sqlite3
from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from gateway.errors import ServiceUnavailable
from gateway.exchange.db import ExchangeDb
from gateway.exchange.outbox import OutboundDelivery, OutboxLedger, release_dead_leases

__all__ = ["RedisOutbox", "consumer_name"]

_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, key in ipairs(due) do
  redis.call('ZREM', KEYS[1], key)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'key', key)
end
return #due
"""

MARKER_TTL = 30 * 86400
"""Seconds a delivered marker is kept: far longer than any entry can stay in flight."""
STREAM_MAXLEN = 100_000


def consumer_name(node_id: str) -> str:
    """A consumer name unique to this process (host, pid and a random part)."""
    return f"{node_id}/{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


def _unavailable(exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(f"the outbox stream (Redis) did not answer: {type(exc).__name__}")


class RedisOutbox:
    """Outbox backend on a Redis stream with one consumer group per node."""

    name = "redis"

    def __init__(
        self,
        db: ExchangeDb,
        redis: aioredis.Redis,
        *,
        node_id: str,
        consumer: str,
        lease: float = 60.0,
        claim_idle: float = 90.0,
        sweep_after: float = 120.0,
        owns_client: bool = False,
    ) -> None:
        self.ledger = OutboxLedger(db)
        self.redis = redis
        self.prefix = f"tongban:{node_id}:outbox"
        self.stream = f"{self.prefix}:stream"
        self.delayed = f"{self.prefix}:delayed"
        self.group = "delivery"
        self.consumer = consumer
        self.lease = lease
        self.claim_idle_ms = int(claim_idle * 1000)
        self.sweep_after = sweep_after
        self._owns_client = owns_client
        self._last_sweep = float("-inf")
        self._promote = self.redis.register_script(_PROMOTE)

    def marker(self, key: str) -> str:
        return f"{self.prefix}:done:{key}"

    async def start(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise _unavailable(exc) from exc
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

        def txn(db: sqlite3.Connection) -> None:
            # Re-offer every pending row (a stream entry may be lost), and end the row
            # leases of consumers of this host that died: their stream entries wait
            # for XAUTOCLAIM's idle time, but the re-offered entries are leased now.
            db.execute("UPDATE outbox SET published = 0 WHERE state = 'pending'")
            release_dead_leases(db, me=self.consumer)

        await self.ledger.db.write(txn)

    # -- claiming --------------------------------------------------------------------

    async def _relay(self, now: float) -> None:
        """Add unpublished rows to the stream, and re-offer stale ones now and then."""
        if now - self._last_sweep >= self.sweep_after:
            self._last_sweep = now
            stale = now - self.sweep_after
            await self.ledger.db.write(
                lambda db: db.execute(
                    "UPDATE outbox SET published = 0 WHERE state = 'pending' "
                    "AND next_attempt_at <= ? AND lease_until <= ?",
                    (stale, now),
                )
            )
        rows: list[tuple[int, str]] = await self.ledger.db.read(
            lambda db: [
                (r[0], r[1])
                for r in db.execute(
                    "SELECT seq, key FROM outbox WHERE state = 'pending' AND published = 0 "
                    "ORDER BY seq LIMIT 500"
                )
            ]
        )
        if not rows:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for _, key in rows:
                pipe.xadd(self.stream, {"key": key}, maxlen=STREAM_MAXLEN, approximate=True)
            await pipe.execute()
        seqs = [seq for seq, _ in rows]

        def mark(db: sqlite3.Connection) -> None:
            db.executemany("UPDATE outbox SET published = 1 WHERE seq = ?", [(s,) for s in seqs])

        await self.ledger.db.write(mark)

    async def _read(self, now: float, limit: int) -> list[tuple[str, str]]:
        """``(entry id, key)`` of entries for this consumer: stuck ones first, then new."""
        await self._promote(keys=[self.delayed, self.stream], args=[now, limit, STREAM_MAXLEN])
        claimed = await self.redis.xautoclaim(
            self.stream, self.group, self.consumer, self.claim_idle_ms, "0-0", count=limit
        )
        entries: list[Any] = list(claimed[1])
        if len(entries) < limit:
            fresh: Any = await self.redis.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=limit - len(entries)
            )
            for _, messages in fresh or []:
                entries.extend(messages)
        out: list[tuple[str, str]] = []
        for entry_id, fields in entries:
            if not fields:  # an entry trimmed away while pending
                await self.redis.xack(self.stream, self.group, entry_id)
                continue
            key = fields.get(b"key") or fields.get("key")
            eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            out.append((eid, key.decode() if isinstance(key, bytes) else str(key)))
        return out

    async def claim(self, now: float, limit: int) -> list[OutboundDelivery]:
        try:
            await self._relay(now)
            entries = await self._read(now, limit)
            return await self._lease(entries, now)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    async def _lease(self, entries: list[tuple[str, str]], now: float) -> list[OutboundDelivery]:
        """Keep the entries that are due, undelivered and not in flight; ack the rest."""
        out: list[OutboundDelivery] = []
        for entry_id, key in entries:
            if await self.redis.exists(self.marker(key)):
                row = await self.ledger.get(key)
                if row is not None:
                    await self.ledger.mirror_delivered(row, now)
                await self.redis.xack(self.stream, self.group, entry_id)
                continue
            leased = await self.ledger.db.write(
                functools.partial(
                    _lease_due, key=key, owner=self.consumer, now=now, until=now + self.lease
                )
            )
            if isinstance(leased, OutboundDelivery):
                out.append(_with_token(leased, entry_id))
                continue
            if leased == "blocked":  # an earlier delivery of the request goes first
                await self.redis.zadd(self.delayed, {key: now + 1.0})
            await self.redis.xack(self.stream, self.group, entry_id)
        return out

    # -- settling --------------------------------------------------------------------

    async def mark_effective(self, d: OutboundDelivery) -> None:
        """Write the delivered marker: from here on no entry of this key is sent again."""
        await self.redis.set(self.marker(d.key), b"1", nx=True, ex=MARKER_TTL)

    async def ack(self, d: OutboundDelivery) -> None:
        if d.token:
            await self.redis.xack(self.stream, self.group, d.token)

    async def delivered(self, d: OutboundDelivery, now: float) -> None:
        try:
            await self.mark_effective(d)
            await self.ledger.delivered(d, now)
            await self.ack(d)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    async def failed(self, d: OutboundDelivery, now: float, next_at: float, error: str) -> None:
        await self.ledger.failed(d, now, next_at, error)
        try:  # scheduled before the ack: a crash in between leaves a duplicate, not a gap
            await self.redis.zadd(self.delayed, {d.key: next_at})
            await self.ack(d)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    async def refused(self, d: OutboundDelivery, now: float, error: str) -> None:
        await self.ledger.refused(d, now, error)
        try:
            await self.ack(d)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    async def deferred(self, d: OutboundDelivery, until: float) -> None:
        await self.ledger.deferred(d, until)
        try:
            await self.redis.zadd(self.delayed, {d.key: until})
            await self.ack(d)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    async def retry_now(self, request_id: str, now: float) -> int:
        keys = await self.ledger.reset(request_id, now)
        if keys:
            try:  # the relay re-adds them to the stream; drop their scheduled retries
                await self.redis.zrem(self.delayed, *keys)
            except (RedisError, OSError) as exc:
                raise _unavailable(exc) from exc
        return len(keys)

    async def close(self) -> None:
        """Leave the group tidy (a consumer with nothing pending is removed)."""
        try:
            pending = await self.redis.xpending_range(
                self.stream, self.group, min="-", max="+", count=1, consumername=self.consumer
            )
            if not pending:
                await self.redis.xgroup_delconsumer(self.stream, self.group, self.consumer)
        except (RedisError, OSError):
            pass  # best effort: a leftover consumer name costs nothing
        finally:
            if self._owns_client:
                await self.redis.aclose()


def _lease_due(
    db: sqlite3.Connection, *, key: str, owner: str, now: float, until: float
) -> OutboundDelivery | str:
    """Lease ``key``'s row if it is due; otherwise say why not (for the caller's ack)."""
    row = db.execute(
        "SELECT state, next_attempt_at, lease_until FROM outbox WHERE key = ?", (key,)
    ).fetchone()
    if row is None or row[0] != "pending":
        return "settled"
    if row[2] > now:
        return "in_flight"
    if row[1] > now:
        return "scheduled"  # a duplicate entry; the sorted set holds its retry
    leased = OutboxLedger.lease_in(db, key, owner, now, until)
    return leased if leased is not None else "blocked"


def _with_token(d: OutboundDelivery, token: str) -> OutboundDelivery:
    return replace(d, token=token)
