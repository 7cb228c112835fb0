"""Drill: SIGKILL a node under load, restart it, and account for every piece of work.

Two real nodes run as their own processes (``tests.drills.node_main``: the real app
with fast exchange timing). Ji'an accepts six service requests for Quzhou (异地受理)
while Quzhou is busy with a stream of partner calls; the demo clerk at Quzhou works
each request through its plan and every status change goes back to Ji'an through
Quzhou's outbox. Quzhou is killed with SIGKILL in the middle of all that and restarted;
then Ji'an is killed and restarted too. Afterwards:

* every 2xx answer Quzhou gave carries a ``Tongban-Audit`` receipt whose entry is in
  its log with that very leaf hash (no acknowledged entry lost), and both chains verify;
* every request has, on both sides, exactly the history of its plan: no status
  missing (no delivery lost) and none twice (no delivery doubled); each outbox holds
  one delivered submission per request and nothing pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.verify import verify_database
from gateway.cli.main import main
from gateway.exchange.demo_worker import PLANS
from tests.drills.drill_support import JIAN, QUZHOU, Load, caller, receipts_in_log, until
from tests.exchange.support import QUZHOU_ITEM, new_request_id, submission
from tests.hostile.node_process import NodeProcess
from tests.support.network import Tree

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

DIGITS = {"0": "complete", "1": "complete", "c": "supplement", "d": "supplement",
          "e": "reject", "f": "reject"}  # fmt: skip


def tongban(tree: Tree, node: str, *args: str) -> dict[str, Any]:
    """A ``tongban`` command in this process (its own loop and store connections)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*args, "--config", str(tree.config_path(node))])
    assert code == 0, out.getvalue()
    text = out.getvalue()
    return json.loads(text[text.index("{") :])  # type: ignore[no-any-return]


def node(tree: Tree, node_id: str) -> NodeProcess:
    return NodeProcess(
        tree.config_path(node_id),
        tree.config(node_id).port,
        tree.root / f"{node_id}.log",
        module=("tests.drills.node_main", "--demo-step", "0.25"),
    )


async def test_sigkill_under_load_loses_no_entry_and_no_delivery(
    tree: Tree, tmp_path: Path
) -> None:
    quzhou, jian = node(tree, QUZHOU), node(tree, JIAN)
    await asyncio.to_thread(quzhou.start)
    await asyncio.to_thread(jian.start)
    client = caller(tree, frm=JIAN, to=QUZHOU)
    load = Load(client, workers=6)
    rids: dict[str, str] = {}
    try:
        load.start()
        for digit, plan in DIGITS.items():
            rid = new_request_id(digit)
            body = submission(rid)
            del body["item_code"]
            path = tmp_path / f"{rid}.json"
            path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
            out = await asyncio.to_thread(
                tongban, tree, JIAN, "requests", "submit", "--item", QUZHOU_ITEM,
                "--file", str(path), "--json",
            )  # fmt: skip
            assert out["request_id"] == rid
            rids[rid] = plan
        await until(lambda: _ok(load, 30), 30)

        await asyncio.to_thread(quzhou.kill)  # mid-stream: clerk steps and deliveries running
        killed_at = len(load.calls)
        await asyncio.to_thread(quzhou.start)
        await asyncio.to_thread(jian.kill)  # its outbox has submissions and events in flight
        await asyncio.to_thread(jian.start)
        await until(lambda: _ok_after(load, killed_at, 30), 30)

        async def all_final() -> bool:
            listing = await asyncio.to_thread(tongban, tree, JIAN, "requests", "list", "--all",
                                              "--json")  # fmt: skip
            final = {r["request_id"] for r in listing["requests"]
                     if r["status"] in ("completed", "rejected")}  # fmt: skip
            return final >= set(rids)

        await until(all_final, 60, step=0.3)
    finally:
        await load.stop()
        await client.close()
        handled_views = {}
        reader = caller(tree, frm=JIAN, to=QUZHOU)
        try:
            for rid in rids:
                resp = await reader.call("GET", f"/v1/service-requests/{rid}")
                handled_views[rid] = resp.json()
        finally:
            await reader.close()
        await asyncio.to_thread(quzhou.stop)
        await asyncio.to_thread(jian.stop)

    for rid, plan in rids.items():
        shown = await asyncio.to_thread(tongban, tree, JIAN, "requests", "show", rid, "--json")
        assert [h["status"] for h in shown["history"]] == list(PLANS[plan]), rid  # type: ignore[index]
        assert [d["kind"] for d in shown["deliveries"]] == ["submit"]
        assert {d["state"] for d in shown["deliveries"]} == {"delivered"}
        handled = handled_views[rid]
        assert [h["status"] for h in handled["history"]] == list(PLANS[plan]), rid  # type: ignore[index]

    acknowledged = [c.audit for c in load.calls if c.status == 200 and c.audit]
    assert len(acknowledged) >= 60
    for node_id in (QUZHOU, JIAN):
        cfg = tree.config(node_id)
        db = cfg.data_dir / "audit" / "audit.sqlite3"
        vkey = (cfg.node_certs / "log.vkey").read_text(encoding="utf-8").strip()
        report = verify_database(db, vkey)
        assert report.ok and report.first_bad is None, (node_id, report)
    quzhou_db = tree.config(QUZHOU).data_dir / "audit" / "audit.sqlite3"
    assert receipts_in_log(quzhou_db, acknowledged) == (0, 0)


async def _ok(load: Load, count: int) -> bool:
    return sum(1 for c in load.calls if c.status == 200) >= count


async def _ok_after(load: Load, index: int, count: int) -> bool:
    return sum(1 for c in load.calls[index:] if c.status == 200) >= count
