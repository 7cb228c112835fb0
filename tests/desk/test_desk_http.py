"""The desk's sign-in, sessions, CSRF, roles and lockout through a real Ji'an node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from gateway.audit.entry import parse_entry
from gateway.desk.jobs import DESK_JOBS
from gateway.desk.sessions import IDLE_SECONDS
from gateway.desk.setup import DESK_CLOCK
from gateway.http.app import build_app
from gateway.http.context import AUDIT
from tests.desk.client import DeskClient
from tests.desk.demo_accounts import cheap_demo_accounts
from tests.support.network import Network, Tree

JIAN = "cn-360800"
STAFF = ("staff01", "demo-staff")
AUDITOR = ("audit01", "demo-audit")


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def jian(network: Network, tree: Tree) -> AsyncIterator[tuple[str, Network]]:
    cheap_demo_accounts(tree)
    cfg = await network.start(JIAN)
    yield cfg.public_url, network


@pytest.fixture
async def client(jian: tuple[str, Network]) -> AsyncIterator[DeskClient]:
    c = DeskClient(jian[0])
    yield c
    await c.close()


async def entry(network: Network, seq: int) -> Any:
    return parse_entry(await network.runners[JIAN].app[AUDIT].entry(seq))


async def last_entries(network: Network, n: int) -> list[Any]:
    log = network.runners[JIAN].app[AUDIT]
    size = log.size  # type: ignore[attr-defined]
    return [parse_entry(await log.entry(s)) for s in range(max(0, size - n), size)]  # type: ignore[attr-defined]


def cookie_header(answer: Any, name: str) -> str:
    for value in answer.headers.getall("Set-Cookie", []):
        if value.startswith(name + "="):
            return str(value)
    raise AssertionError(f"no Set-Cookie for {name}")


async def test_pages_are_served_with_strict_headers(client: DeskClient) -> None:
    page = await client.call("GET", "/desk/")
    assert page.status == 200
    assert "通办" in page.text and 'lang="zh-CN"' in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"
    css = await client.call("GET", "/desk/static/desk.css")
    assert css.status == 200 and "@media print" in css.text
    missing = await client.call("GET", "/desk/static/nothing.js")
    assert missing.status == 404 and missing.code == "not_found"


async def test_sign_in_sets_a_strict_session_cookie_and_is_audited(
    client: DeskClient, jian: tuple[str, Network]
) -> None:
    pre = await client.refresh()
    assert pre.body["signed_in"] is False
    pre_cookie = cookie_header(pre, "tb_desk_pre")
    assert "HttpOnly" in pre_cookie and "SameSite=Strict" in pre_cookie
    answer = await client.sign_in(*STAFF)
    assert answer.status == 200, answer.body
    assert answer.body["user"] == "staff01" and answer.body["role"] == "staff"
    cookie = cookie_header(answer, "tb_desk")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback; Secure whenever TLS
    me = await client.refresh()
    assert me.body["signed_in"] is True and me.body["user"] == "staff01"
    (last,) = await last_entries(jian[1], 1)
    assert last.event == "desk.sign_in" and last.outcome == "ok"
    assert (last.actor.type, last.actor.id, last.actor.sub) == ("staff", JIAN, "staff01")


async def test_wrong_password_and_unknown_user_look_the_same(
    client: DeskClient, jian: tuple[str, Network]
) -> None:
    wrong = await client.sign_in("staff01", "not-the-password")
    nobody = await client.sign_in("nobody01", "not-the-password")
    assert wrong.status == nobody.status == 401
    assert wrong.code == nobody.code == "sign_in_failed"
    assert wrong.body["detail"] == nobody.body["detail"]
    first, second = await last_entries(jian[1], 2)
    assert (first.event, first.outcome, first.code) == (
        "desk.sign_in",
        "rejected",
        "sign_in_failed",
    )
    assert first.actor.sub == "staff01"
    assert second.actor.sub is None  # a name that is no account never enters the chain


@pytest.mark.parametrize(
    ("csrf", "headers"),
    [
        ("", {}),
        ("wrong-token", {}),
        (None, {"Origin": "http://evil.example"}),
    ],
)
async def test_sign_in_without_the_form_token_is_forbidden(
    client: DeskClient, csrf: str | None, headers: dict[str, str]
) -> None:
    await client.refresh()
    answer = await client.call(
        "POST",
        "/desk/api/sign-in",
        {"user": STAFF[0], "password": STAFF[1]},
        csrf=csrf,
        headers=headers,
    )
    assert answer.status == 403 and answer.code == "forbidden"


async def test_state_changes_need_the_session_csrf_token(client: DeskClient) -> None:
    await client.sign_in(*STAFF)
    body = {"input": "TB1:x.y.z", "purpose": "TB-360800-0101"}
    for csrf in ("", "bogus"):
        answer = await client.call("POST", "/desk/api/verify", body, csrf=csrf)
        assert answer.status == 403 and answer.code == "forbidden"
    out = await client.call("POST", "/desk/api/sign-out", {}, csrf="")
    assert out.status == 403 and out.code == "forbidden"
    assert (await client.refresh()).body["signed_in"] is True


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"{", 400, "invalid_json"),
        (b"[]", 400, "invalid_json"),
        (b'{"user": "staff01"}', 400, "validation_failed"),
        (b'{"user": 5, "password": "x"}', 400, "validation_failed"),
        (b'{"user": "' + b"a" * 5000 + b'", "password": "x"}', 413, "body_too_large"),
    ],
)
async def test_bad_sign_in_bodies(client: DeskClient, raw: bytes, status: int, code: str) -> None:
    await client.refresh()
    answer = await client.call("POST", "/desk/api/sign-in", raw=raw)
    assert (answer.status, answer.code) == (status, code)


async def test_staff_cannot_open_auditor_pages_or_apis(client: DeskClient) -> None:
    await client.sign_in(*STAFF)
    page = await client.call("GET", "/desk/audit")
    assert page.status == 403 and "无权访问" in page.text
    for method, path, body in [
        ("GET", "/desk/api/audit/status", None),
        ("POST", "/desk/api/audit/search", {"identifier": "x"}),
        ("POST", "/desk/api/audit/verify-jobs", {}),
        ("POST", "/desk/api/audit/receipt-check", {"ref": "TBR1:cn-360800:0:" + "A" * 43}),
    ]:
        answer = await client.call(method, path, body)
        assert (answer.status, answer.code) == (403, "forbidden"), path


async def test_auditor_cannot_verify_and_sees_auditor_pages(client: DeskClient) -> None:
    await client.sign_in(*AUDITOR)
    answer = await client.call("POST", "/desk/api/verify", {"input": "x", "purpose": "x"})
    assert (answer.status, answer.code) == (403, "forbidden")
    page = await client.call("GET", "/desk/audit")
    assert page.status == 200 and "audit.js" in page.text
    status = await client.call("GET", "/desk/api/audit/status")
    assert status.status == 200 and status.body["size"] >= 1


async def test_without_a_session(client: DeskClient) -> None:
    page = await client.call("GET", "/desk/audit", allow_redirects=False)
    assert page.status == 302 and page.headers["Location"] == "/desk/?next=audit"
    await client.refresh()
    api = await client.call("GET", "/desk/api/audit/status")
    assert (api.status, api.code) == (401, "session_required")
    items = await client.call("GET", "/desk/api/items")
    assert (items.status, items.code) == (401, "session_required")


async def test_sign_out_ends_the_session(client: DeskClient, jian: tuple[str, Network]) -> None:
    await client.sign_in(*STAFF)
    csrf = client.csrf
    out = await client.call("POST", "/desk/api/sign-out", {})
    assert out.status == 200
    assert "tb_desk=;" in cookie_header(out, "tb_desk") or "Max-Age=0" in cookie_header(
        out, "tb_desk"
    )
    (last,) = await last_entries(jian[1], 1)
    assert (last.event, last.actor.sub) == ("desk.sign_out", "staff01")
    again = await client.call("GET", "/desk/api/items")
    assert (again.status, again.code) == (401, "session_required")
    stale = await client.call("POST", "/desk/api/sign-out", {}, csrf=csrf)
    assert (stale.status, stale.code) == (401, "session_required")


async def test_lockout_after_five_failures(client: DeskClient) -> None:
    for _ in range(5):
        assert (await client.sign_in("staff01", "wrong-password-1")).code == "sign_in_failed"
    locked = await client.sign_in(*STAFF)
    assert (locked.status, locked.code) == (429, "sign_in_locked")
    assert int(locked.headers["Retry-After"]) == 15 * 60
    for _ in range(5):
        await client.sign_in("ghost01", "wrong-password-1")
    ghost = await client.sign_in("ghost01", "wrong-password-1")
    assert ghost.code == "sign_in_locked" and ghost.body["detail"] == locked.body["detail"]


@pytest.fixture
async def clocked_node(tree: Tree) -> AsyncIterator[tuple[str, Clock]]:
    """Ji'an with the desk's clock in the test's hand (session expiry without sleeping)."""
    clock = Clock()
    cheap_demo_accounts(tree)

    def set_clock(app: web.Application) -> None:
        app[DESK_CLOCK] = clock

    cfg = tree.config(JIAN)
    runner = web.AppRunner(build_app(cfg, extra_setup=(set_clock,)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True).start()
    yield cfg.public_url, clock
    await runner.cleanup()


async def test_session_expires_when_idle(clocked_node: tuple[str, Clock]) -> None:
    url, clock = clocked_node
    c = DeskClient(url)
    try:
        await c.sign_in(*STAFF)
        clock.now += IDLE_SECONDS - 5
        assert (await c.call("GET", "/desk/api/items")).status == 200
        clock.now += IDLE_SECONDS + 1
        gone = await c.call("GET", "/desk/api/items")
        assert (gone.status, gone.code) == (401, "session_required")
    finally:
        await c.close()


async def test_verify_refuses_bad_input_with_exact_codes(
    client: DeskClient, jian: tuple[str, Network]
) -> None:
    await client.sign_in(*STAFF)
    items = await client.call("GET", "/desk/api/items")
    assert "TB-360800-0101" in {i["code"] for i in items.body["items"]}
    cases = [
        ({"input": "TB1:x.y.z", "purpose": "TB-000000-0000"}, 400, "validation_failed", "purpose"),
        ({"input": "hello", "purpose": "TB-360800-0101"}, 400, "validation_failed", "input"),
        ({"purpose": "TB-360800-0101"}, 400, "validation_failed", "input"),
        ({"input": "TB1:abc", "purpose": "TB-360800-0101"}, 400, "validation_failed", "qr"),
    ]
    for body, status, code, field in cases:
        answer = await client.call("POST", "/desk/api/verify", body)
        assert (answer.status, answer.code) == (status, code), body
        assert field in answer.body["fields"], answer.body
    (last,) = await last_entries(jian[1], 1)  # the engine's refusal is in the chain too
    assert (last.event, last.outcome, last.code) == (
        "license.verify",
        "rejected",
        "validation_failed",
    )
    assert last.actor.sub == "staff01" and last.meta["purpose"] == "TB-360800-0101"
    huge = await client.call(
        "POST", "/desk/api/verify", {"input": "A" * 300_000, "purpose": "TB-360800-0101"}
    )
    assert (huge.status, huge.code) == (413, "body_too_large")


async def test_auditor_search_and_full_verification(
    client: DeskClient, jian: tuple[str, Network]
) -> None:
    network = jian[1]
    await client.sign_in(*AUDITOR)
    found = await client.call("POST", "/desk/api/audit/search", {"identifier": "LID-NOBODY"})
    assert found.status == 200 and found.body["entries"] == []
    (searched,) = await last_entries(network, 1)
    assert (searched.event, searched.actor.sub) == ("audit.search", "audit01")
    assert searched.subject == network.runners[JIAN].app[AUDIT].pseudonym("LID-NOBODY")
    again = await client.call("POST", "/desk/api/audit/search", {"identifier": "LID-NOBODY"})
    assert [e["event"] for e in again.body["entries"]] == ["audit.search"]  # who looked
    bad = await client.call("POST", "/desk/api/audit/search", {"identifier": ""})
    assert (bad.status, bad.code) == (400, "validation_failed")

    started = await client.call("POST", "/desk/api/audit/verify-jobs", {})
    assert started.status == 202 and started.body["state"] == "running"
    job = network.runners[JIAN].app[DESK_JOBS].get(started.body["job"])
    assert job is not None and job.task is not None
    await job.task  # the real verifier on its worker thread; no sleeping
    done = await client.call("GET", f"/desk/api/audit/verify-jobs/{started.body['job']}")
    assert done.body["state"] == "done" and done.body["result"]["ok"] is True
    assert done.body["done"] == done.body["total"] == done.body["result"]["entries"]
    phases = [e.meta.get("phase") for e in await last_entries(network, 2)]
    assert phases == ["start", "end"]
    missing = await client.call("GET", "/desk/api/audit/verify-jobs/nope")
    assert (missing.status, missing.code) == (404, "not_found")
    ref = await client.call("POST", "/desk/api/audit/receipt-check", {"ref": "TBR1:x"})
    assert (ref.status, ref.code) == (400, "validation_failed")
    assert "ref" in ref.body["fields"]
