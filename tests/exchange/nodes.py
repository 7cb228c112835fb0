"""Real nodes for exchange tests, with the exchange's timing chosen by the test, and
signed partner calls made exactly as a partner node makes them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.config import NodeConfig
from gateway.exchange.runtime import ExchangeTiming
from gateway.http.app import build_app
from gateway.http.client import PartnerClient, PartnerResponse
from gateway.http.requests_api import EXCHANGE_TIMING
from gateway.keys import load_token_key
from tests.support.network import Tree


def edit_config(tree: Tree, node_id: str, old: str, new: str) -> None:
    path = tree.config_path(node_id)
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def add_native_partner(tree: Tree, node_id: str, partner_id: str, port: int) -> None:
    """Register another demo city as a native partner of ``node_id`` (its token key)."""
    path = tree.config_path(node_id)
    path.write_text(
        path.read_text(encoding="utf-8")
        + f"""
[[partners]]
id = "{partner_id}"
url = "http://127.0.0.1:{port}"
adapter = "native"
endpoints = ["*"]
items = ["*"]

[[partners.keys]]
file = "../../certs/{partner_id}/token.pub.pem"
alg = "ES256"
""",
        encoding="utf-8",
    )


def add_last_partner_key(tree: Tree, node_id: str, partner_id: str) -> None:
    """Give the last partner of ``node_id``'s file a request-token key, so that city can
    also make native ``/v1`` calls (``[[partners.keys]]`` attaches to the last table)."""
    path = tree.config_path(node_id)
    text = path.read_text(encoding="utf-8")
    assert text.rsplit("[[partners]]", 1)[1].split("\n")[1] == f'id = "{partner_id}"'
    path.write_text(
        text + f'\n[[partners.keys]]\nfile = "../../certs/{partner_id}/token.pub.pem"\n'
        'alg = "ES256"\n',
        encoding="utf-8",
    )


@dataclass
class Nodes:
    """Tongban nodes of a test tree, each started with an ``ExchangeTiming``."""

    tree: Tree
    runners: dict[str, web.AppRunner] = field(default_factory=dict)

    async def start(self, node_id: str, timing: ExchangeTiming | None = None) -> NodeConfig:
        cfg = self.tree.config(node_id)

        def with_timing(app: web.Application) -> None:
            if timing is not None:
                app[EXCHANGE_TIMING] = timing

        runner = web.AppRunner(
            build_app(cfg, extra_setup=(with_timing,)), access_log=None, shutdown_timeout=2
        )
        await runner.setup()
        await web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True).start()
        self.runners[node_id] = runner
        return cfg

    def app(self, node_id: str) -> web.Application:
        return self.runners[node_id].app

    async def stop(self, node_id: str) -> None:
        runner = self.runners.pop(node_id, None)
        if runner is not None:
            await runner.cleanup()

    async def stop_all(self) -> None:
        for node_id in list(self.runners)[::-1]:
            await self.stop(node_id)


@dataclass
class Caller:
    """Signed ``/v1`` calls from one demo city to another."""

    tree: Tree
    caller: str
    target: str

    async def call(
        self, method: str, path: str, body: Any = None
    ) -> tuple[int, Any, PartnerResponse]:
        client = PartnerClient(
            node_id=self.caller,
            partner_id=self.target,
            base_url=self.tree.url(self.target),
            key=load_token_key(self.tree.config(self.caller)),
        )
        try:
            resp = await client.call(method, path, json_body=body)
        finally:
            await client.close()
        return resp.status, json.loads(resp.body), resp
