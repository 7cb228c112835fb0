"""End to end between two real Tongban nodes: Ji'an accepts (异地受理) with the CLI in
another process, Quzhou handles (属地办理) with its demo clerk, and every status comes
back to Ji'an through the outboxes of both."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.cli.main import main
from gateway.exchange.circuit import CircuitPolicy
from gateway.exchange.demo_worker import PLANS
from gateway.exchange.outbox import RetryPolicy
from gateway.exchange.runtime import ExchangeTiming
from gateway.exchange.service import EXCHANGE
from tests.exchange.nodes import Nodes, edit_config
from tests.exchange.support import (
    JIAN,
    QUZHOU,
    QUZHOU_ITEM,
    json_document,
    new_request_id,
    submission,
)
from tests.support.network import ROOT, Tree
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.timeout(90)

# Seconds, not the demo's 2 s a step: the whole path takes well under two seconds.
FAST = ExchangeTiming(
    worker_interval=0.05,
    poll_tick=0.05,
    escalation_interval=0.2,
    demo_step=0.05,
    retry=RetryPolicy(base=0.05, cap=0.5),
    circuit=CircuitPolicy(threshold=5, cooldown=0.5),
)


@pytest.fixture
async def nodes(tree: Tree) -> AsyncIterator[Nodes]:
    running = Nodes(tree)
    try:
        yield running
    finally:
        await running.stop_all()


def tongban(tree: Tree, *args: str) -> dict[str, Any]:
    """Run a ``tongban`` command in-process (its own event loop, its own connections to
    the node's stores, as another process would have) and return its JSON."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*args, "--config", str(tree.config_path(JIAN))])
    assert code == 0
    return json_document(out.getvalue())  # type: ignore[no-any-return]


def tongban_process(tree: Tree, *args: str) -> dict[str, Any]:
    """The same as a separate process: the CLI and the running node share the stores."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args, "--config", str(tree.config_path(JIAN))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    """Wait, bounded, for background work on the nodes until ``check()`` holds."""
    async with asyncio.timeout(seconds):
        for _ in range(int(seconds / 0.02) + 1):
            if await check():
                return
            await asyncio.sleep(0.02)
    raise AssertionError("the condition did not hold in time")


def write_request(tmp_path: Path, last: str) -> tuple[str, Path]:
    rid = new_request_id(last)
    body = submission(rid)
    del body["item_code"]  # --item says it
    path = tmp_path / f"{rid}.json"
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    return rid, path


async def test_completion_comes_back_to_the_accepting_city(
    tree: Tree, nodes: Nodes, tmp_path: Path
) -> None:
    await nodes.start(QUZHOU, FAST)
    await nodes.start(JIAN, FAST)
    plans = {"c": "supplement", "e": "reject", "0": "complete"}
    requests = {last: write_request(tmp_path, last) for last in plans}
    for _last, (rid, path) in requests.items():
        out = await asyncio.to_thread(
            tongban, tree, "requests", "submit", "--item", QUZHOU_ITEM, "--file", str(path),
            "--wait", "30", "--json",
        )  # fmt: skip
        assert (out["request_id"], out["handling_node"]) == (rid, QUZHOU)
        assert out["delivery"]["state"] == "delivered"

    jian = nodes.app(JIAN)[EXCHANGE]
    quzhou = nodes.app(QUZHOU)[EXCHANGE]

    async def all_final() -> bool:
        records = [await jian.store.get(rid) for rid, _ in requests.values()]
        return all(r is not None and r.is_final for r in records)

    await until(all_final)
    for last, (rid, _) in requests.items():
        plan = list(PLANS[plans[last]])  # type: ignore[index]
        accepted = await jian.store.get(rid)
        handled = await quzhou.store.get(rid)
        assert accepted is not None and handled is not None
        assert [h.status for h in accepted.history] == plan
        assert [h.status for h in handled.history] == plan
        # the times Ji'an shows are the times Quzhou decided
        assert [h.at for h in accepted.history][1:] == [h.at for h in handled.history][1:]

    listing = await asyncio.to_thread(tongban, tree, "requests", "list", "--all", "--json")
    statuses = {r["request_id"]: r["status"] for r in listing["requests"]}
    assert statuses == {
        rid: PLANS[plans[last]][-1]  # type: ignore[index]
        for last, (rid, _) in requests.items()
    }
    [partner] = [p for p in listing["partners"] if p["partner"] == QUZHOU]
    assert (partner["circuit"], partner["pending"], partner["delivered"]) == ("closed", 0, 3)

    # Quzhou's outbox is empty too: every event was delivered exactly once
    async def quzhou_drained() -> bool:
        queues = await quzhou.store.db.read(
            lambda db: db.execute(
                "SELECT COUNT(*) FROM outbox WHERE state != 'delivered'"
            ).fetchone()[0]
        )
        return queues == 0

    await until(quzhou_drained)
    async with (
        aiohttp.ClientSession() as session,
        session.get(tree.url(JIAN) + "/metrics") as resp,
    ):
        metrics = await resp.text()
    assert f'tongban_circuit_state{{partner="{QUZHOU}"}} 0.0' in metrics
    assert f'tongban_outbox_pending{{partner="{QUZHOU}"}} 0.0' in metrics
    assert (
        f'tongban_outbox_deliveries_total{{kind="submit",outcome="delivered",partner="{QUZHOU}"}}'
        " 3.0" in metrics
    )
    shown = await asyncio.to_thread(tongban, tree, "requests", "show", requests["c"][0], "--json")
    assert [d["kind"] for d in shown["deliveries"]] == ["submit"]
    assert shown["applicant"]["id"].startswith("3308") and "*" in shown["applicant"]["id"]


async def test_accepted_while_the_handling_city_is_down_arrives_when_it_is_back(
    tree: Tree, nodes: Nodes, tmp_path: Path
) -> None:
    await nodes.start(JIAN, FAST)
    rid, path = write_request(tmp_path, "0")
    out = await asyncio.to_thread(
        tongban_process, tree, "requests", "submit", "--item", QUZHOU_ITEM, "--file", str(path),
        "--json",
    )  # fmt: skip
    assert out["delivery"]["state"] == "pending"
    jian = nodes.app(JIAN)[EXCHANGE]

    async def tried() -> bool:
        [d] = await nodes.app(JIAN)[EXCHANGE].store.db.read(
            lambda db: db.execute(
                "SELECT attempts FROM outbox WHERE request_id = ?", (rid,)
            ).fetchall()
        )
        return bool(d[0] >= 2)

    await until(tried)
    await nodes.start(QUZHOU, FAST)

    async def completed() -> bool:
        record = await jian.store.get(rid)
        return record is not None and record.status == "completed"

    await until(completed)
    handled = await nodes.app(QUZHOU)[EXCHANGE].store.get(rid)
    assert handled is not None and handled.status == "completed"


async def test_the_same_with_the_outbox_on_redis(
    tree: Tree, nodes: Nodes, tmp_path: Path, redis_server: RedisServer
) -> None:
    edit_config(tree, JIAN, "demo = true", f'demo = true\nredis_url = "{redis_server.url}"')
    await nodes.start(QUZHOU, FAST)
    await nodes.start(JIAN, FAST)
    rid, path = write_request(tmp_path, "c")
    out = await asyncio.to_thread(
        tongban, tree, "requests", "submit", "--item", QUZHOU_ITEM, "--file", str(path),
        "--wait", "30", "--json",
    )  # fmt: skip
    assert out["delivery"]["state"] == "delivered"
    jian = nodes.app(JIAN)[EXCHANGE]

    async def completed() -> bool:
        record = await jian.store.get(rid)
        return record is not None and record.status == "completed"

    await until(completed)
    record = await jian.store.get(rid)
    assert record is not None
    assert [h.status for h in record.history] == list(PLANS["supplement"])
    stream = await aioredis_len(redis_server.url, f"tongban:{JIAN}:outbox:stream")
    assert stream >= 1  # the delivery went through the stream


async def aioredis_len(url: str, stream: str) -> int:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        return int(await client.xlen(stream))
    finally:
        await client.aclose()
