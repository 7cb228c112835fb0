"""A private copy of the demo network's configuration for a benchmark run.

The copy has its own PKI and ``var/`` under the bench's work folder, so a run never
touches the developer's ``certs/`` or databases. Ji'an (cn-360800), the node under
test, listens on a free loopback port; its partners point at the ports after it, where
nothing listens (the verify bench uses Ji'an's own licenses, so no partner is asked).
Partner rate limits are raised far above any rate a bench sends: the bench measures
the node, not the limiter's refusals.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.config import DEMO_NODE_IDS, NodeConfig, load_node_config
from gateway.keys import init_demo_pki

ROOT = Path(__file__).resolve().parents[1]
JIAN = "cn-360800"
QUZHOU = "cn-330800"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class BenchTree:
    root: Path
    port: int

    def config_path(self, node_id: str = JIAN) -> Path:
        return self.root / "config" / "demo" / f"{node_id}.toml"

    def config(self, node_id: str = JIAN) -> NodeConfig:
        return load_node_config(self.config_path(node_id))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def make_tree(
    work: Path, *, redis_url: str | None = None, pki_from: Path | None = None
) -> BenchTree:
    """Copy ``config/``, make (or copy) the PKI, and tune Ji'an for benchmarking."""
    shutil.copytree(ROOT / "config", work / "config")
    if pki_from is not None:
        shutil.copytree(pki_from, work / "certs")
    else:
        configs = [
            load_node_config(work / "config" / "demo" / f"{n}.toml", require_keys=False)
            for n in DEMO_NODE_IDS
        ]
        init_demo_pki(configs, work / "certs")
    port = free_port()
    path = work / "config" / "demo" / f"{JIAN}.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{port}"')
    text = re.sub(r"127\.0\.0\.1:808([1-4])", lambda m: f"127.0.0.1:{port + int(m[1])}", text)
    text = text.replace("rate = 200\nburst = 400", "rate = 1000000\nburst = 1000000")
    if redis_url:
        text = text.replace("[node]\n", f'[node]\nredis_url = "{redis_url}"\n', 1)
    path.write_text(text, encoding="utf-8")
    return BenchTree(work, port)


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, within: float = 30
) -> None:
    """Wait until something accepts on ``port`` (or the process dies, or time runs out)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {within} s")


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m ...`` with the project's interpreter, output to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def stop(proc: subprocess.Popen[bytes], within: float = 15) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time; a no-op for a dead process."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=within)


def start_redis(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A throwaway ``redis-server`` (no persistence) on a free loopback port, and its URL."""
    port = free_port()
    redis_dir = work / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    with (redis_dir / "redis.log").open("ab") as log:
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(redis_dir)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_for_port(port, proc)
    return proc, f"redis://127.0.0.1:{port}/0"
