"""A Tongban node as its own process (``python -m gateway serve``), for tests that need a
node they can read logs from, kill with SIGKILL, or restart on the same data."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, within: float = 60
) -> None:
    """Until something accepts on ``port``; fails if ``proc`` exits first or time runs out."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the node exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} after {within} s")


@dataclass
class NodeProcess:
    """One running node: its process, port and the file its output goes to."""

    config: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    module: tuple[str, ...] = ("gateway", "serve")
    """``python -m`` target and its leading arguments (a drill may use its own runner)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, level: str = "INFO") -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *self.module, "--config", str(self.config),
                 "--port", str(self.port),
                 *(["--log-level", level] if self.module == ("gateway", "serve") else [])],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for_port(self.port, self.proc)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut of the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM and wait for a clean shutdown (SIGKILL after 30 s)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@contextlib.contextmanager
def node_process(config: Path, port: int, log: Path, level: str = "INFO") -> Iterator[NodeProcess]:
    node = NodeProcess(config, port, log)
    node.start(level)
    try:
        yield node
    finally:
        node.stop()
