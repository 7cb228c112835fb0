"""Drill: Redis stops under load, then comes back (SPEC 2: the replay cache fails closed).

While Redis is down every partner call is refused with 503 ``replay_cache_unavailable``
within a bounded time — never answered as if its token were fresh — while liveness
stays up, readiness says why it is not ready, and calls that need no Redis (a refused
token) are answered as before. When Redis returns, the node recovers by itself.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest

from tests.drills.drill_support import JIAN, Load, caller, until, use_redis
from tests.support.network import Network, Tree
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


async def _get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        body = await resp.read()
        is_json = resp.content_type.endswith("json")
        return resp.status, json.loads(body) if is_json else body.decode()


async def test_redis_down_fails_closed_and_the_node_recovers(
    tree: Tree, network: Network, redis_server: RedisServer
) -> None:
    use_redis(tree, JIAN, redis_server.url)
    await network.start(JIAN)
    url = tree.url(JIAN)
    client = caller(tree)
    load = Load(client)
    load.start()
    try:
        await until(lambda: _ok_count(load), 20)
        assert {c.status for c in load.calls} == {200}

        redis_server.stop()
        down_at = time.monotonic()
        await until(lambda: _count_since(load, down_at), 20)

        down = load.since(down_at + 0.05)
        assert down, "no call was made while Redis was down"
        assert {(c.status, c.code) for c in down} == {(503, "replay_cache_unavailable")}
        assert max(c.latency for c in down) < 3.0  # Redis timeout 0.5 s and one retry
        assert (await _get(url + "/healthz"))[0] == 200
        status, ready = await _get(url + "/readyz")
        assert (status, ready["status"]) == (503, "unavailable")
        assert ready["checks"]["replay_cache"].startswith("unavailable")
        assert ready["checks"]["audit_database"] == "ok"
        status, problem = await _get(url + "/v1/catalog")  # no token: refused before Redis
        assert (status, problem["code"]) == (401, "token_missing")
        status, metrics = await _get(url + "/metrics")
        assert status == 200 and 'code="replay_cache_unavailable"' in metrics

        redis_server.start()
        back_at = time.monotonic()

        async def recovered() -> bool:
            recent = [c for c in load.since(back_at) if c.started > back_at + 0.2]
            return len(recent) >= 20 and all(c.status == 200 for c in recent[-10:])

        await until(recovered, 20)
        assert (await _get(url + "/readyz"))[0] == 200
    finally:
        await load.stop()
        await client.close()
    audited = [c for c in load.calls if c.status in (200, 503)]
    assert all(c.audit and c.audit.startswith("seq=") for c in audited)


async def _ok_count(load: Load) -> bool:
    return sum(1 for c in load.calls if c.status == 200) >= 20


async def _count_since(load: Load, moment: float) -> bool:
    return len(load.since(moment + 0.05)) >= 40
