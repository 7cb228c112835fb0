"""Drill: partners that hang, answer slowly, answer garbage or reset connections.

* Verifying at Ji'an a license whose issuing city misbehaves answers within the
  caller's client timeout (10 s), and the verdict is ``undetermined`` with
  ``status_unknown`` — never "valid", never "revoked" (SPEC 4.3). The native issuer is
  a small misbehaving aiohttp server on Quzhou's port; the legacy issuer is Longyan's
  simulator switched with ``POST /_sim/mode``.
* Deliveries to a native partner that keeps failing open its circuit (the partner
  stops being hammered), and when it recovers the circuit closes and every request
  arrives exactly once: nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.cli.main import main
from gateway.keys import load_issuer
from gateway.licenses.license_jws import sign_license
from gateway.licenses.samples import sample_licenses
from tests.drills.drill_support import JIAN, QUZHOU, caller, until
from tests.drills.node_main import timing
from tests.exchange.nodes import Nodes
from tests.exchange.support import QUZHOU_ITEM, new_request_id, submission
from tests.support.network import Network, Tree

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

LONGYAN = "cn-350800"
CLIENT_TIMEOUT = 10.0  # gateway.http.client.DEFAULT_TIMEOUT: what a partner waits at most


@dataclass
class Misbehaving:
    """A native partner on a real port whose behaviour the test switches."""

    mode: str = "healthy"
    calls: Counter[str] = field(default_factory=Counter)
    submitted: Counter[str] = field(default_factory=Counter)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.calls[self.mode] += 1
        body = await request.read()
        if self.mode == "hang":
            await asyncio.Event().wait()  # never answers; cancelled when the server stops
        if self.mode == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        if self.mode == "garbage":
            return web.Response(body=b"<html>\xff\xfe not json", content_type="text/html")
        if self.mode == "error":
            return web.Response(status=500, text="Internal Server Error")
        if self.mode == "slow":
            await asyncio.sleep(1.5)  # the partner's own slowness, not the test's clock
        if request.path == "/v1/licenses/status":
            identifier = request.query.get("identifier")
            return web.json_response(
                {"identifier": identifier, "status": "valid", "since": None, "reason": None}
            )
        if request.path == "/v1/service-requests" and request.method == "POST":
            rid = json.loads(body)["request_id"]
            self.submitted[rid] += 1
            return web.json_response({"request_id": rid, "status": "received"}, status=202)
        return web.json_response({"code": "not_found"}, status=404)


@contextlib.asynccontextmanager
async def misbehaving_partner(port: int) -> AsyncIterator[Misbehaving]:
    partner = Misbehaving()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", partner.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    try:
        yield partner
    finally:
        await runner.cleanup()


def signed_samples(tree: Tree, node_id: str) -> list[str]:
    """The demo licenses of ``node_id``'s city, signed by its issuing authority."""
    cfg = tree.config(node_id)
    issuer = load_issuer(cfg)
    return [sign_license(issuer, s.document).jws for s in sample_licenses(cfg)
            if s.status.status == "valid"]  # fmt: skip


async def verify_at_jian(tree: Tree, jws: str) -> tuple[float, dict[str, Any]]:
    client = caller(tree, frm=QUZHOU, to=JIAN)
    try:
        t0 = time.monotonic()
        resp = await client.call("POST", "/v1/licenses/verify", json_body={"license": jws})
        elapsed = time.monotonic() - t0
    finally:
        await client.close()
    assert resp.status == 200, resp.body[:300]
    verdict: dict[str, Any] = resp.json()
    return elapsed, verdict


def status_row(verdict: dict[str, Any]) -> dict[str, Any]:
    [row] = [c for c in verdict["checks"] if c["name"] == "status"]
    return dict(row)


def assert_unknown_status(verdict: dict[str, Any], mode: str) -> None:
    """Status unknown, so the verdict is undetermined — or invalid when another check
    (an expired sample, say) already fails; never valid, never revoked."""
    row = status_row(verdict)
    assert (row["result"], row["code"]) == ("unknown", "status_unknown"), (mode, row)
    assert verdict["verdict"] in ("undetermined", "invalid"), (mode, verdict["reasons"])
    assert "revoked" not in verdict["reasons"]
    if verdict["verdict"] == "undetermined":
        assert verdict["reasons"] == ["status_unknown"], (mode, verdict["reasons"])


async def test_a_native_issuer_that_misbehaves_gives_undetermined_in_bounded_time(
    tree: Tree, network: Network
) -> None:
    await network.start(JIAN)
    # answers are cached (60 s), failures are not: each mode still gets its own license
    licenses = signed_samples(tree, QUZHOU)
    async with misbehaving_partner(tree.config(QUZHOU).port) as quzhou:
        for mode in ("garbage", "reset", "error"):
            quzhou.mode = mode
            elapsed, verdict = await verify_at_jian(tree, licenses.pop(0))
            assert elapsed < CLIENT_TIMEOUT, (mode, elapsed)
            assert_unknown_status(verdict, mode)
            assert quzhou.calls[mode] >= 1
        quzhou.mode = "slow"
        verdicts = []
        for jws in licenses[:3]:
            elapsed, verdict = await verify_at_jian(tree, jws)
            assert 1.5 <= elapsed < CLIENT_TIMEOUT
            assert status_row(verdict)["result"] == "pass"
            verdicts.append(verdict["verdict"])
            if verdict["verdict"] == "valid":
                break
        assert "valid" in verdicts


async def test_a_hanging_native_issuer_is_answered_within_the_client_timeout(
    tree: Tree, network: Network
) -> None:
    await network.start(JIAN)
    async with misbehaving_partner(tree.config(QUZHOU).port) as quzhou:
        quzhou.mode = "hang"
        elapsed, verdict = await verify_at_jian(tree, signed_samples(tree, QUZHOU)[0])
        assert elapsed < CLIENT_TIMEOUT
        assert_unknown_status(verdict, "hang")


async def _sim_mode(url: str, mode: str | None) -> None:
    async with aiohttp.ClientSession() as s, s.post(url + "/_sim/mode", json={"fail": mode}) as r:
        assert r.status == 200, await r.text()


async def test_a_legacy_issuer_in_each_fault_mode_gives_undetermined(
    tree: Tree, network: Network
) -> None:
    await network.start(LONGYAN)
    await network.start(JIAN)
    sim = tree.url(LONGYAN)
    licenses = signed_samples(tree, LONGYAN)
    for mode in ("garbage", "reset", "down"):  # "timeout": see the hanging-issuer case
        await _sim_mode(sim, mode)
        elapsed, verdict = await verify_at_jian(tree, licenses.pop(0))
        assert elapsed < CLIENT_TIMEOUT, (mode, elapsed)
        assert_unknown_status(verdict, mode)
    await _sim_mode(sim, None)
    verdicts = [(await verify_at_jian(tree, jws))[1] for jws in licenses]
    assert all(status_row(v)["result"] == "pass" for v in verdicts)
    assert "valid" in {v["verdict"] for v in verdicts}


def _submit(tree: Tree, path: Path) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["requests", "submit", "--item", QUZHOU_ITEM, "--file", str(path), "--json",
                     "--config", str(tree.config_path(JIAN))])  # fmt: skip
    assert code == 0, out.getvalue()
    text = out.getvalue()
    return json.loads(text[text.index("{") :])  # type: ignore[no-any-return]


async def _partners(tree: Tree) -> dict[str, Any]:
    def listing() -> dict[str, Any]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["requests", "list", "--all", "--json", "--config", str(tree.config_path(JIAN))])
        text = out.getvalue()
        return json.loads(text[text.index("{") :])  # type: ignore[no-any-return]

    found = await asyncio.to_thread(listing)
    return {p["partner"]: p for p in found["partners"]}


async def test_the_circuit_opens_on_a_failing_partner_and_closes_when_it_recovers(
    tree: Tree, tmp_path: Path
) -> None:
    nodes = Nodes(tree)
    try:
        await nodes.start(JIAN, timing(0.25))
        async with misbehaving_partner(tree.config(QUZHOU).port) as quzhou:
            quzhou.mode = "reset"
            rids = []
            for digit in "0123":
                rid = new_request_id(digit)
                body = submission(rid)
                del body["item_code"]
                path = tmp_path / f"{rid}.json"
                path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
                await asyncio.to_thread(_submit, tree, path)
                rids.append(rid)

            async def opened() -> bool:
                return bool((await _partners(tree))[QUZHOU]["circuit"] == "open")

            await until(opened, 30, step=0.2)
            # open: the partner is left alone but for a probe after each cooldown (0.5 s)
            before = sum(quzhou.calls.values())
            hold = time.monotonic()
            await until(lambda: _later(hold, 2.0), 5)
            assert sum(quzhou.calls.values()) - before <= 2 * (2.0 / 0.5) + 2

            quzhou.mode = "healthy"

            async def drained() -> bool:
                p = (await _partners(tree))[QUZHOU]
                return bool(p["circuit"] == "closed" and p["pending"] == 0)

            await until(drained, 30, step=0.2)
            assert dict(quzhou.submitted) == {rid: 1 for rid in rids}
    finally:
        await nodes.stop_all()


async def _later(moment: float, seconds: float) -> bool:
    return time.monotonic() - moment >= seconds
