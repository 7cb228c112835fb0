"""Pytest plugin: a real ``redis-server`` on a free 127.0.0.1 port, per test.

Nothing stands in for Redis: the replay cache's guarantees (``SET NX``, expiry, what
happens when the server goes away and comes back) are only worth testing against
the real thing. Enable with ``pytest_plugins = ["tests.support.redis_server"]``.

Fixtures:

- ``redis_server``: a fresh server for one test (``.url``, ``.port``, ``.stop()``,
  ``.start()`` to restart on the same port, ``.pause()``/``.resume()`` to make it
  hang); always killed afterwards.
- ``redis_server_factory``: call it to start more servers in one test.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_DEBIAN_PACKAGE = "redis-server"
_START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A 127.0.0.1 port that is free right now (another process could still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process without persistence, bound to 127.0.0.1."""

    def __init__(self, executable: str, workdir: Path, port: int | None = None) -> None:
        self.executable = executable
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers PING."""
        if self.running:
            return
        log_path = self.workdir / "redis.log"
        with log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    self.executable,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--daemonize", "no",
                    "--dir", str(self.workdir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                self._process = None
                pytest.fail(f"redis-server exited on start (port {self.port}):\n{tail}")
            if _answers_ping(self.port):
                return
            time.sleep(0.02)
        self.stop()
        pytest.fail(f"redis-server did not answer PING on port {self.port} within 10 s")

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing answers."""
        assert self._process is not None, "redis-server is not running"
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo ``pause`` (SIGCONT)."""
        assert self._process is not None, "redis-server is not running"
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s); a no-op when stopped."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a paused server would not see SIGTERM
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _executable() -> str:
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail(
            f"redis-server is not installed: apt-get install -y {_DEBIAN_PACKAGE}",
            pytrace=False,
        )
    return found


@pytest.fixture
def redis_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], RedisServer]]:
    """Start any number of servers; every one is stopped when the test ends."""
    started: list[RedisServer] = []

    def start() -> RedisServer:
        server = RedisServer(_executable(), tmp_path_factory.mktemp("redis"))
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        with contextlib.suppress(Exception):
            server.stop()


@pytest.fixture
def redis_server(redis_server_factory: Callable[[], RedisServer]) -> RedisServer:
    """A fresh, empty redis-server for this test only."""
    return redis_server_factory()
