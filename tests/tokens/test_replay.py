"""Replay cache (SPEC 2): a jti once per issuer, owner-aware retries, fail closed.

Redis runs as a real ``redis-server`` (tests.support.redis_server); SQLite as a file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gateway.errors import ReplayCacheUnavailable, TokenReplayed
from gateway.tokens import RedisReplayCache, ReplayCache, SqliteReplayCache
from tests.support.redis_server import RedisServer, free_port

ISSUER = "cn-330800"
JTI = "jti-0123456789abcdef"


def _later(seconds: float = 300) -> float:
    return time.time() + seconds


@pytest.fixture(params=["redis", "sqlite"])
async def cache(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ReplayCache]:
    """Each backend in turn, fresh and empty."""
    store: ReplayCache
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        store = RedisReplayCache(server.url)
    else:
        store = SqliteReplayCache(tmp_path / "replay.db")
    yield store
    await store.close()


# -- both backends ------------------------------------------------------------------


async def test_second_claim_by_another_owner_is_a_replay(cache: ReplayCache) -> None:
    await cache.claim(ISSUER, JTI, _later(), "req-1")
    with pytest.raises(TokenReplayed) as caught:
        await cache.claim(ISSUER, JTI, _later(), "req-2")
    assert caught.value.code == "token_replayed"
    assert caught.value.status == 401
    assert JTI not in caught.value.detail


async def test_same_owner_retry_is_not_a_replay(cache: ReplayCache) -> None:
    await cache.claim(ISSUER, JTI, _later(), "req-1")
    await cache.claim(ISSUER, JTI, _later(), "req-1")
    with pytest.raises(TokenReplayed):
        await cache.claim(ISSUER, JTI, _later(), "req-2")


async def test_jti_is_per_issuer(cache: ReplayCache) -> None:
    await cache.claim("cn-330800", JTI, _later(), "req-1")
    await cache.claim("cn-350800", JTI, _later(), "req-2")


async def test_expired_claim_can_be_taken_again(cache: ReplayCache) -> None:
    await cache.claim(ISSUER, JTI, _later(0.2), "req-1")
    await asyncio.sleep(0.35)
    await cache.claim(ISSUER, JTI, _later(), "req-2")
    with pytest.raises(TokenReplayed):
        await cache.claim(ISSUER, JTI, _later(), "req-1")


async def test_concurrent_claims_admit_exactly_one(cache: ReplayCache) -> None:
    results = await asyncio.gather(
        *(cache.claim(ISSUER, JTI, _later(), f"req-{i}") for i in range(40)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(r is None or isinstance(r, TokenReplayed) for r in results)


async def test_ping_answers(cache: ReplayCache) -> None:
    await cache.ping()


async def test_closed_cache_is_unavailable(cache: ReplayCache) -> None:
    await cache.close()
    with pytest.raises(ReplayCacheUnavailable) as caught:
        await cache.claim(ISSUER, JTI, _later(), "req-1")
    assert caught.value.code == "replay_cache_unavailable"
    assert caught.value.status == 503


# -- Redis ---------------------------------------------------------------------------


@pytest.fixture
async def raw_redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def test_redis_retry_after_lost_reply_passes(
    redis_server: RedisServer, raw_redis: aioredis.Redis
) -> None:
    """The first SET landed but its reply was lost; the retry must not be a replay."""
    expires_ms = int(_later() * 1000)
    key = f"tongban:jti:{ISSUER}:{JTI}"
    assert await raw_redis.set(key, "req-1", nx=True, pxat=expires_ms)
    cache = RedisReplayCache(redis_server.url)
    try:
        await cache.claim(ISSUER, JTI, expires_ms / 1000, "req-1")
        with pytest.raises(TokenReplayed):
            await cache.claim(ISSUER, JTI, expires_ms / 1000, "req-2")
    finally:
        await cache.close()


async def test_redis_key_expires_with_the_token(
    redis_server: RedisServer, raw_redis: aioredis.Redis
) -> None:
    cache = RedisReplayCache(redis_server.url, prefix="t:")
    try:
        await cache.claim(ISSUER, JTI, _later(100), "req-1")
    finally:
        await cache.close()
    assert await raw_redis.get(f"t:{ISSUER}:{JTI}") == b"req-1"
    assert 98_000 < await raw_redis.pttl(f"t:{ISSUER}:{JTI}") <= 100_000


async def test_redis_down_fails_closed_and_recovers(redis_server: RedisServer) -> None:
    cache = RedisReplayCache(redis_server.url)
    try:
        await cache.claim(ISSUER, "jti-before-outage-0001", _later(), "req-1")
        redis_server.stop()
        for probe in (cache.claim(ISSUER, JTI, _later(), "req-2"), cache.ping()):
            started = time.monotonic()
            with pytest.raises(ReplayCacheUnavailable) as caught:
                await probe
            assert caught.value.code == "replay_cache_unavailable"
            assert time.monotonic() - started < 2
        redis_server.start()  # same port, empty (no persistence in tests)
        await cache.ping()
        await cache.claim(ISSUER, JTI, _later(), "req-3")
        with pytest.raises(TokenReplayed):
            await cache.claim(ISSUER, JTI, _later(), "req-4")
    finally:
        await cache.close()


async def test_redis_hung_fails_closed_within_timeouts(redis_server: RedisServer) -> None:
    cache = RedisReplayCache(redis_server.url)
    try:
        await cache.ping()  # an open connection that will now stop answering
        redis_server.pause()
        started = time.monotonic()
        with pytest.raises(ReplayCacheUnavailable):
            await cache.claim(ISSUER, JTI, _later(), "req-1")
        # 0.5 s socket timeout, one retry: well under the time a partner would wait.
        assert time.monotonic() - started < 2.5
        redis_server.resume()
        await cache.claim(ISSUER, JTI, _later(), "req-1")
    finally:
        await cache.close()


async def test_redis_never_started_is_unavailable() -> None:
    cache = RedisReplayCache(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(ReplayCacheUnavailable):
            await cache.claim(ISSUER, JTI, _later(), "req-1")
    finally:
        await cache.close()


async def test_redis_shared_client_is_left_open(
    redis_server: RedisServer, raw_redis: aioredis.Redis
) -> None:
    cache = RedisReplayCache(raw_redis)
    await cache.claim(ISSUER, JTI, _later(), "req-1")
    await cache.close()
    assert await raw_redis.ping()


# -- SQLite --------------------------------------------------------------------------


def _rows(path: Path) -> list[tuple[str, str, str, float]]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT issuer, jti, owner, expires_at FROM replay ORDER BY jti"
        ).fetchall()


async def test_sqlite_claims_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "var" / "replay.db"  # parent created on demand
    first = SqliteReplayCache(path)
    await first.claim(ISSUER, JTI, _later(), "req-1")
    await first.close()

    second = SqliteReplayCache(path)
    try:
        with pytest.raises(TokenReplayed):
            await second.claim(ISSUER, JTI, _later(), "req-2")
        await second.claim(ISSUER, JTI, _later(), "req-1")  # the same request, retried
    finally:
        await second.close()


async def test_sqlite_is_durable_wal(tmp_path: Path) -> None:
    path = tmp_path / "replay.db"
    cache = SqliteReplayCache(path)
    try:
        await cache.ping()
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        await cache.close()


async def test_sqlite_purges_expired_rows_every_n_claims(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    path = tmp_path / "replay.db"
    cache = SqliteReplayCache(path, purge_every=3, clock=lambda: now[0])
    try:
        await cache.claim(ISSUER, "jti-short-lived-0001", now[0] + 10, "req-1")
        await cache.claim(ISSUER, "jti-long-lived-00001", now[0] + 1000, "req-2")
        now[0] += 60
        assert len(_rows(path)) == 2  # expired, but not yet purged
        await cache.claim(ISSUER, "jti-third-claim-0001", now[0] + 10, "req-3")  # 3rd: purge
        assert [row[1] for row in _rows(path)] == ["jti-long-lived-00001", "jti-third-claim-0001"]
        now[0] += 60
        assert await cache.purge_expired() == 1
        assert [row[1] for row in _rows(path)] == ["jti-long-lived-00001"]
    finally:
        await cache.close()


async def test_sqlite_expired_row_is_taken_over_before_purge(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    cache = SqliteReplayCache(tmp_path / "replay.db", clock=lambda: now[0])
    try:
        await cache.claim(ISSUER, JTI, now[0] + 10, "req-1")
        now[0] += 11
        await cache.claim(ISSUER, JTI, now[0] + 10, "req-2")
        with pytest.raises(TokenReplayed):
            await cache.claim(ISSUER, JTI, now[0] + 10, "req-1")
    finally:
        await cache.close()


async def test_sqlite_unopenable_file_is_unavailable(tmp_path: Path) -> None:
    cache = SqliteReplayCache(tmp_path)  # a directory, not a database file
    try:
        for probe in (cache.ping(), cache.claim(ISSUER, JTI, _later(), "req-1")):
            with pytest.raises(ReplayCacheUnavailable) as caught:
                await probe
            assert caught.value.code == "replay_cache_unavailable"
    finally:
        await cache.close()


async def test_sqlite_corrupt_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "replay.db"
    path.write_bytes(b"this is not an SQLite database" * 100)
    cache = SqliteReplayCache(path)
    try:
        with pytest.raises(ReplayCacheUnavailable):
            await cache.claim(ISSUER, JTI, _later(), "req-1")
    finally:
        await cache.close()
