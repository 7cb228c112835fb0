"""Operator endpoints and the request pipeline's cross-cutting promises (SPEC 3, 7, 9)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from gateway.http.app import build_app
from gateway.http.openapi import documented
from gateway.keys import load_token_key
from gateway.tokens import mint_request_token
from tests.support.network import Network, Tree
from tests.support.redis_server import RedisServer

JIAN, QUZHOU = "cn-360800", "cn-330800"


async def get(url: str, **headers: str) -> tuple[int, bytes, Any]:
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as resp:
        return resp.status, await resp.read(), resp.headers


async def signed_get(tree: Tree, path: str, **headers: str) -> tuple[int, bytes, Any]:
    token = mint_request_token(
        load_token_key(tree.config(QUZHOU)),
        iss=QUZHOU,
        aud=JIAN,
        method="GET",
        path_qs=path,
        body=b"",
    )
    return await get(tree.url(JIAN) + path, Authorization=f"Bearer {token}", **headers)


async def test_health_ready_keys_and_metrics(tree: Tree, network: Network) -> None:
    await network.start(JIAN)
    base = tree.url(JIAN)
    status, body, _ = await get(base + "/healthz")
    assert (status, json.loads(body)["status"]) == (200, "ok")
    status, body, _ = await get(base + "/readyz")
    ready = json.loads(body)
    assert (status, ready["status"]) == (200, "ready")
    assert set(ready["checks"]) >= {"audit_database", "replay_cache"}

    status, body, _ = await get(base + "/.well-known/tongban/keys")
    keys = json.loads(body)
    token_key = load_token_key(tree.config(JIAN))
    assert keys["node"] == JIAN
    assert [(k["kid"], k["alg"], k["use"]) for k in keys["keys"]] == [
        (token_key.kid, "ES256", "sig")
    ]
    assert "d" not in keys["keys"][0]  # never the private part
    assert keys["log"].startswith("tongban/cn-360800/audit+")

    await signed_get(tree, "/v1/catalog")
    await get(base + "/v1/catalog")  # refused: token_missing
    status, body, _ = await get(base + "/metrics")
    text = body.decode()
    assert status == 200
    assert 'tongban_requests_total{partner="cn-330800",route="catalog",status="200"} 1.0' in text
    assert 'tongban_rejections_total{code="token_missing"} 1.0' in text
    assert "tongban_request_seconds_bucket" in text


async def test_request_id_is_echoed_or_made(tree: Tree, network: Network) -> None:
    await network.start(JIAN)
    _, _, headers = await signed_get(tree, "/v1/catalog", **{"X-Request-Id": "desk-42.a"})
    assert headers["X-Request-Id"] == "desk-42.a"
    _, _, headers = await signed_get(tree, "/v1/catalog", **{"X-Request-Id": "bad id!"})
    assert headers["X-Request-Id"] != "bad id!" and len(headers["X-Request-Id"]) == 16
    status, body, headers = await get(tree.url(JIAN) + "/v1/nothing-here")
    problem = json.loads(body)
    assert (status, problem["code"]) == (404, "not_found")
    assert problem["request_id"] == headers["X-Request-Id"]


async def test_one_json_log_line_per_request_without_personal_data(
    tree: Tree, network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    await network.start(JIAN)
    await signed_get(tree, "/v1/catalog", **{"X-Request-Id": "trace-1"})
    # An identity number in a URL must not reach the log in clear.
    await get(tree.url(JIAN) + "/v1/licenses/status?identifier=11010519491231002X")
    captured = capsys.readouterr()
    assert "trace-1" not in captured.out  # logs never mix into a command's answer
    log = captured.err
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    requests = [entry for entry in lines if entry.get("event") == "request"]
    first = next(r for r in requests if r["request_id"] == "trace-1")
    assert {k: first[k] for k in ("partner", "route", "status")} == {
        "partner": QUZHOU,
        "route": "catalog",
        "status": 200,
    }
    assert isinstance(first["duration_ms"], float)
    assert "11010519491231002X" not in log


async def test_readyz_fails_closed_when_redis_is_down(
    tree: Tree, network: Network, redis_server: RedisServer
) -> None:
    path = tree.config_path(JIAN)
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("demo = true", f'demo = true\nredis_url = "{redis_server.url}"'),
        encoding="utf-8",
    )
    await network.start(JIAN)
    status, _, _ = await signed_get(tree, "/v1/catalog")
    assert status == 200
    redis_server.stop()
    status, body, _ = await get(tree.url(JIAN) + "/readyz")
    assert (status, json.loads(body)["checks"]["replay_cache"].startswith("unavailable")) == (
        503,
        True,
    )
    status, body, _ = await signed_get(tree, "/v1/catalog")
    assert (status, json.loads(body)["code"]) == (503, "replay_cache_unavailable")
    status, _, _ = await get(tree.url(JIAN) + "/healthz")
    assert status == 200  # alive, just not ready
    redis_server.start()
    status, _, _ = await signed_get(tree, "/v1/catalog")
    assert status == 200


def test_openapi_documents_every_served_route_and_nothing_else(tree: Tree) -> None:
    app = build_app(tree.config(JIAN))
    served = set()
    for route in app.router.routes():
        name = route.name or ""
        if route.method == "HEAD" or name.startswith("desk:"):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path is None or path.startswith("/desk"):
            continue
        served.add((route.method.lower(), path))
    assert served == documented()
