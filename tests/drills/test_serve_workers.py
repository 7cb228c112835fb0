"""``tongban serve --workers N``: one node as several processes on one port.

What an operator relies on: the node answers on its one port while any worker lives;
a worker that dies is replaced; a token is accepted once whichever worker gets it
(the replay cache is shared through Redis); SIGTERM stops everything; and a node
without Redis is refused rather than run with a replay cache per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.keys import load_token_key
from gateway.tokens.mint import mint_request_token
from tests.drills.drill_support import JIAN, QUZHOU, caller, until, use_redis
from tests.hostile.node_process import ROOT
from tests.support.network import Tree
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def children(pid: int) -> set[int]:
    """Live child processes of ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_more_than_one_worker_needs_redis(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--config", str(tree.config_path(JIAN)), "--workers", "2"])
    assert code == 2
    assert "needs redis_url" in capsys.readouterr().err


def test_worker_count_is_bounded(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--config", str(tree.config_path(JIAN)), "--workers", "0"])
    assert code == 2
    assert "--workers must be between 1 and 64" in capsys.readouterr().err


async def _status_of(tree: Tree, token: str) -> tuple[int, str | None]:
    """Send one GET /v1/catalog with ``token`` on a connection of its own."""
    client = caller(tree)
    try:
        resp = await client.call("GET", "/v1/catalog", headers={"Authorization": f"Bearer {token}"})
    finally:
        await client.close()
    code = resp.json().get("code") if resp.status >= 400 else None
    return resp.status, code


async def test_two_workers_serve_one_port_share_replay_and_are_replaced(
    tree: Tree, redis_server: RedisServer
) -> None:
    use_redis(tree, JIAN, redis_server.url)
    port = tree.config(JIAN).port
    log = (tree.root / "workers.log").open("ab")
    supervisor = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--config", str(tree.config_path(JIAN)),
        "--port", str(port), "--workers", "2", "--log-level", "INFO",
        cwd=ROOT, stdout=log, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    seen: set[int] = set()  # every worker ever seen, to clean up whatever happens
    try:

        async def up() -> bool:
            assert supervisor.returncode is None, "the supervisor exited"
            return listening(port)

        await until(up, 60)

        async def two_workers() -> bool:
            now = children(supervisor.pid)
            seen.update(now)
            return len(now) == 2

        await until(two_workers, 30)
        first = children(supervisor.pid)

        # One token, sent eight times on eight connections: the kernel spreads them
        # over both workers, and only the first is accepted.
        key = load_token_key(tree.config(QUZHOU))
        token = mint_request_token(
            key, iss=QUZHOU, aud=JIAN, method="GET", path_qs="/v1/catalog", body=b""
        )
        answers = [await _status_of(tree, token) for _ in range(8)]
        assert answers[0] == (200, None)
        assert answers[1:] == [(401, "token_replayed")] * 7

        # A worker killed outright is replaced; the node answers throughout.
        victim = min(first)
        os.kill(victim, signal.SIGKILL)

        async def replaced() -> bool:
            now = children(supervisor.pid)
            seen.update(now)
            return len(now) == 2 and victim not in now

        await until(replaced, 30)
        client = caller(tree)  # one worker serves while the other one starts
        try:
            for _ in range(4):
                assert (await client.call("GET", "/v1/catalog")).status == 200
        finally:
            await client.close()

        workers = children(supervisor.pid)
        supervisor.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(supervisor.wait(), 45) == 0
        # The supervisor waited for (and reaped) every worker before it exited.
        assert not any(alive(pid) for pid in workers)
    finally:
        seen.update(children(supervisor.pid))
        if supervisor.returncode is None:
            supervisor.kill()
            await supervisor.wait()
        for pid in seen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.close()


async def test_workers_stop_when_their_supervisor_is_killed(
    tree: Tree, redis_server: RedisServer
) -> None:
    # Otherwise they would serve on with nobody to stop them, and a new supervisor
    # would start a second set beside them on the same port.
    use_redis(tree, JIAN, redis_server.url)
    port = tree.config(JIAN).port
    log = (tree.root / "workers.log").open("ab")
    supervisor = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--config", str(tree.config_path(JIAN)),
        "--port", str(port), "--workers", "2",
        cwd=ROOT, stdout=log, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    workers: set[int] = set()
    try:

        async def two_workers() -> bool:
            assert supervisor.returncode is None, "the supervisor exited"
            workers.update(children(supervisor.pid))
            return len(children(supervisor.pid)) == 2 and listening(port)

        await until(two_workers, 60)
        supervisor.kill()
        await supervisor.wait()

        async def all_gone() -> bool:
            return not any(alive(pid) and not zombie(pid) for pid in workers)

        await until(all_gone, 40)
        assert not listening(port)
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.close()


def zombie(pid: int) -> bool:
    """An exited process not yet reaped (its parent, the supervisor, is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"
