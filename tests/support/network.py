"""Real demo-network trees and running nodes for tests.

A session-wide copy of ``config/`` with its own PKI lives in a temporary folder, so
tests never touch the developer's ``certs/`` or ``var/``. Each test that needs nodes
gets a fresh copy of the tree (fresh databases) and a block of free loopback ports.
"""

from __future__ import annotations

import random
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from gateway.config import DEMO_NODE_IDS, NodeConfig, load_node_config
from gateway.keys import init_demo_pki

ROOT = Path(__file__).resolve().parents[2]


def free_port_block(count: int = 5) -> int:
    """A base port such that ``base .. base+count-1`` are free on 127.0.0.1."""
    for _ in range(200):
        base = random.randint(20000, 60000 - count)
        socks = []
        try:
            for i in range(count):
                s = socket.socket()
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free block of loopback ports")


@dataclass
class Tree:
    """A copy of the project's config with its own certs and var folders."""

    root: Path
    base_port: int = 8080

    def config_path(self, node_id: str) -> Path:
        return self.root / "config" / "demo" / f"{node_id}.toml"

    def config(self, node_id: str) -> NodeConfig:
        cfg = load_node_config(self.config_path(node_id))
        return cfg.with_port_offset(self.base_port - 8080)

    def url(self, node_id: str) -> str:
        return self.config(node_id).public_url

    @property
    def certs(self) -> Path:
        return self.root / "certs"


def make_tree(dest: Path, pki_from: Path | None = None) -> Tree:
    shutil.copytree(ROOT / "config", dest / "config")
    if pki_from is not None:
        shutil.copytree(pki_from, dest / "certs")
    else:
        configs = [
            load_node_config(dest / "config" / "demo" / f"{n}.toml", require_keys=False)
            for n in DEMO_NODE_IDS
        ]
        init_demo_pki(configs, dest / "certs")
    return Tree(dest)


@pytest.fixture(scope="session")
def pki_tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """One PKI for the whole session (key generation is the slow part)."""
    return make_tree(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tree(pki_tree: Tree, tmp_path: Path) -> Iterator[Tree]:
    """A fresh tree (empty databases) sharing the session's PKI, on free ports."""
    t = make_tree(tmp_path / "net", pki_from=pki_tree.certs)
    t.base_port = free_port_block()
    yield t


@dataclass
class Network:
    tree: Tree
    runners: dict[str, web.AppRunner] = field(default_factory=dict)

    async def start(self, node_id: str) -> NodeConfig:
        from gateway.cli.serve_cmd import app_for
        from gateway.http.app import make_runner

        cfg = self.tree.config(node_id)
        runner = make_runner(app_for(cfg))
        await runner.setup()
        await web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True).start()
        self.runners[node_id] = runner
        return cfg

    async def stop(self, node_id: str) -> None:
        runner = self.runners.pop(node_id, None)
        if runner is not None:
            await runner.cleanup()

    async def stop_all(self) -> None:
        for node_id in list(self.runners)[::-1]:
            await self.stop(node_id)


@asynccontextmanager
async def running(tree: Tree, *node_ids: str) -> AsyncIterator[Network]:
    net = Network(tree)
    try:
        for n in node_ids:
            await net.start(n)
        yield net
    finally:
        await net.stop_all()


@pytest.fixture
async def network(tree: Tree) -> AsyncIterator[Network]:
    """Nodes the test starts with ``await network.start(id)``; all stopped afterwards."""
    net = Network(tree)
    try:
        yield net
    finally:
        await net.stop_all()
