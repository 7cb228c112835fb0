"""The adapter contract (``adapters.base``), run against every partner style and its
simulator on loopback: what the node can rely on whichever city it talks to."""

from __future__ import annotations

import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.sim_workflow import SimTiming
from gateway.errors import GatewayError, NotFound, UpstreamError, UpstreamTimeout
from gateway.exchange.model import StatusEvent
from gateway.licenses.errors import ConsentRefused
from gateway.licenses.identifiers import make_license_identifier
from gateway.licenses.license_jws import parse_license_jws
from gateway.licenses.qr import mint_qr
from gateway.licenses.samples import sample_statuses
from gateway.tokens import SigningKey
from tests.adapters.harness import (
    ALL_STYLES,
    JIAN,
    LEGACY_STYLES,
    PUSH_STYLES,
    STATUSES_OF,
    ManualClock,
    Partner,
    request_id_for,
    running_partner,
    running_receiver,
    submission,
)
from tests.support.network import Tree

every_style = pytest.mark.parametrize("style", ALL_STYLES)
legacy_style = pytest.mark.parametrize("style", LEGACY_STYLES)

#: How each style words a refusal, for the checks that the detail says why.
REFUSAL_WORDS = {
    "consent_used": {"native": "refused the license fetch", "legacy": "already used"},
    "consent_bad": {"native": "(validation_failed)", "legacy": "consent"},
    "conflict": {"native": "(conflict)", "legacy": "different body"},
}


def words(kind: str, style: str) -> str:
    table = REFUSAL_WORDS[kind]
    return table.get(style, table["legacy"])


async def _raises(code: str, coro: object) -> GatewayError:
    try:
        await coro  # type: ignore[misc]
    except GatewayError as exc:
        assert exc.code == code, f"{exc.code}: {exc.detail}"
        return exc
    raise AssertionError(f"expected {code}")


@every_style
async def test_health_answers(tree: Tree, style: str) -> None:
    async with running_partner(tree, style) as p:
        await p.adapter().health()


@every_style
async def test_license_status_follows_the_issuing_city(tree: Tree, style: str) -> None:
    async with running_partner(tree, style) as p:
        identifier = await p.issue()
        adapter = p.adapter()
        valid = await adapter.license_status(identifier)
        assert (valid.status, valid.reason) == ("valid", None)  # since: optional when valid

        await p.set_status(identifier, "suspended", "涉嫌违法经营，暂停使用")
        suspended = await adapter.license_status(identifier)
        assert (suspended.status, suspended.reason) == ("suspended", "涉嫌违法经营，暂停使用")
        assert suspended.since is not None and suspended.since.endswith("Z")

        await p.set_status(identifier, "valid", "整改完成，恢复使用")
        assert (await adapter.license_status(identifier)).status == "valid"

        await p.set_status(identifier, "revoked", "营业执照被吊销")
        revoked = await adapter.license_status(identifier)
        assert (revoked.status, revoked.reason) == ("revoked", "营业执照被吊销")


@every_style
async def test_the_citys_sample_licenses_are_served_with_their_statuses(
    tree: Tree, style: str
) -> None:
    async with running_partner(tree, style) as p:
        expected = sample_statuses(p.sim)
        adapter = p.adapter()
        for identifier, status in expected.items():
            got = await adapter.license_status(identifier)
            assert (got.status, got.reason) == (status.status, status.reason)
            if status.status != "valid":
                assert got.since is not None
                assert got.since[:19] == (status.since or "")[:19]


@every_style
async def test_unknown_license_is_not_found(tree: Tree, style: str) -> None:
    async with running_partner(tree, style) as p:
        never = make_license_identifier("11100000MB0341032Y001", p.sim.issuer_uscc, "2699999")
        exc = await _raises("not_found", p.adapter().license_status(never))
        assert isinstance(exc, NotFound)


@every_style
async def test_fetch_with_consent_returns_the_signed_license_once(tree: Tree, style: str) -> None:
    async with running_partner(tree, style) as p:
        identifier = await p.issue()
        qr = await p.qr(identifier)
        adapter = p.adapter()
        jws = await adapter.license_fetch(qr, purpose="TB-360800-0101")
        parsed = parse_license_jws(jws)
        assert parsed.header["typ"] == "tongban-license+jwt"
        assert b'"identifier":"' + identifier.encode() + b'"' in parsed.payload

        # A spent consent is the issuer's answer, not an outage (the verifier says why).
        exc = await _raises("forbidden", adapter.license_fetch(qr))
        assert isinstance(exc, ConsentRefused)
        assert exc.reason == "qr_replayed"


@every_style
async def test_fetch_with_a_bad_consent_is_refused(tree: Tree, style: str) -> None:
    async with running_partner(tree, style) as p:
        identifier = await p.issue()
        stranger = SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
        forged = mint_qr(stranger, iss=p.sim.id, lid=identifier, ldh="A" * 43, sco=["*"])
        exc = await _raises("forbidden", p.adapter().license_fetch(forged))
        assert isinstance(exc, ConsentRefused)
        assert exc.reason in ("qr_expired", "signature_invalid")


@every_style
async def test_submission_is_idempotent_per_request_id(tree: Tree, style: str) -> None:
    clock = ManualClock()
    timing = SimTiming(step_seconds=60)
    async with running_partner(tree, style, timing=timing, clock=clock) as p:
        adapter = p.adapter()
        sub = submission(style, str(uuid.uuid4()))
        first = await adapter.submit_request(sub)
        again = await adapter.submit_request(sub)
        assert first.status == again.status == "received"
        assert first.partner_ref == again.partner_ref
        assert (first.partner_ref is None) == (style == "native")  # legacy: their 办件编号

        changed = submission(style, sub.request_id, form={"reason": "另一个"})
        exc = await _raises("upstream_unavailable", adapter.submit_request(changed))
        assert words("conflict", style) in exc.detail


@legacy_style
@pytest.mark.parametrize("outcome", ["complete", "supplement", "reject"])
async def test_status_comes_back_to_the_accepting_node(
    tree: Tree, style: str, outcome: str
) -> None:
    request_id = request_id_for(outcome)
    expected = STATUSES_OF[outcome]
    async with running_partner(tree, style) as p:
        if style in PUSH_STYLES:
            async with running_receiver(tree.config(JIAN)) as receiver:
                await p.adapter().submit_request(submission(style, request_id))
                got = await receiver.take(len(expected))
            assert {partner for partner, _ in got} == {p.sim.id}
            events = [event for _, event in got]
        else:
            adapter = p.adapter()
            await adapter.submit_request(submission(style, request_id))
            await p.tick()  # steps are zero seconds long: one pass works it through
            for _ in range(10):
                events = await adapter.poll_request(request_id)
                if len(events) == len(expected):
                    break
                await p.tick()
        assert [e.status for e in events] == expected
        assert all(e.request_id == request_id and e.at.endswith("Z") for e in events)
        assert all(isinstance(e, StatusEvent) and e.note for e in events)


@every_style
async def test_unknown_request_poll_or_event(tree: Tree, style: str) -> None:
    async with running_partner(tree, style) as p:
        adapter = p.adapter()
        if getattr(adapter, "polls", False):
            await _raises("not_found", adapter.poll_request(str(uuid.uuid4())))
        else:
            assert await adapter.poll_request(str(uuid.uuid4())) == []


@legacy_style
async def test_partner_state_survives_a_restart(tree: Tree, style: str) -> None:
    clock = ManualClock()
    request_id = request_id_for("complete")
    async with running_partner(tree, style, timing=SimTiming(step_seconds=30), clock=clock) as p:
        identifier = await p.issue()
        await p.set_status(identifier, "suspended", "暂停")
        await p.adapter().submit_request(submission(style, request_id))
        clock.advance(31)
        await p.tick()
        assert (await p.show(request_id))["status"] == "accepted"

        await p.stop()
        await p.start()
        assert (await p.adapter().license_status(identifier)).status == "suspended"
        assert (await p.show(request_id))["status"] == "accepted"
        for _ in range(2):
            clock.advance(31)
            await p.tick()
        shown = await p.show(request_id)
        assert [h["status"] for h in shown["history"]] == ["received", *STATUSES_OF["complete"]]


@legacy_style
async def test_events_we_send_reach_the_partner(tree: Tree, style: str) -> None:
    async with running_partner(tree, style) as p:
        event = StatusEvent(
            request_id=str(uuid.uuid4()),
            status="needs_supplement",
            at="2026-01-15T02:30:00.000Z",
            note="请补充不动产权证书复印件",
        )
        await p.adapter().send_event(p.sim.id, event)
        notices = await p.notices()
        assert notices[-1]["request_id"] == event.request_id
        assert notices[-1]["status"] == "needs_supplement"
        assert notices[-1]["partner"] == JIAN


COMMON_FAULTS = [
    ("down", "upstream_unavailable", "HTTP 503"),
    ("reset", "upstream_unavailable", "cannot be reached"),
    ("timeout", "upstream_timeout", "in time"),
]
STYLE_FAULTS = {
    "native": [
        ("garbage", "upstream_unavailable", "not JSON"),
        ("missing", "upstream_unavailable", "without the right fields"),
    ],
    "xml_envelope": [
        ("garbage", "upstream_unavailable", "malformed reply: the XML is not valid GB18030"),
        ("charset", "upstream_unavailable", "charset UTF-8, expected GB18030"),
        ("missing", "upstream_unavailable", "field ZZBS is missing"),
    ],
    "form_async": [
        ("garbage", "upstream_unavailable", "malformed reply: the answer is not UTF-8 JSON"),
        ("missing", "upstream_unavailable", "zzbh is missing"),
    ],
    "sharing_api": [
        # an unsigned answer is refused before it is read
        ("garbage", "upstream_unavailable", "without a valid signature (token_missing"),
        ("missing", "upstream_unavailable", "certificateIdentifier is missing"),
        ("badsig", "upstream_unavailable", "token_signature"),
        ("stale", "upstream_unavailable", "token_expired"),
    ],
}


async def _check_fault(p: Partner, mode: str, code: str, fragment: str, identifier: str) -> None:
    await p.fault(mode)
    adapter = p.adapter(timeout=0.5)
    exc = await _raises(code, adapter.license_status(identifier))
    assert isinstance(exc, UpstreamError)
    assert fragment in exc.detail, exc.detail
    if mode == "timeout":
        assert isinstance(exc, UpstreamTimeout)
    await p.fault(None)


@every_style
async def test_misbehaving_partner_gives_clear_upstream_errors(tree: Tree, style: str) -> None:
    async with running_partner(tree, style) as p:
        identifier = await p.issue()
        for mode, code, fragment in [*COMMON_FAULTS, *STYLE_FAULTS[style]]:
            await _check_fault(p, mode, code, fragment, identifier)
        assert (await p.adapter().license_status(identifier)).status == "valid"


@every_style
async def test_unreachable_partner_is_upstream_unavailable(tree: Tree, style: str) -> None:
    async with running_partner(tree, style) as p:
        adapter = p.adapter(timeout=0.5)
        await p.stop()
        await _raises("upstream_unavailable", adapter.health())
        await p.start()
        await adapter.health()


@pytest.mark.parametrize("style", PUSH_STYLES)
async def test_callbacks_wait_for_a_node_that_is_down(tree: Tree, style: str) -> None:
    clock = ManualClock()
    request_id = request_id_for("complete")
    timing = SimTiming(step_seconds=0, poll_seconds=0.05, retry_base_seconds=5)
    async with running_partner(tree, style, timing=timing, clock=clock) as p:
        await p.adapter().submit_request(submission(style, request_id))
        for _ in range(3):
            await p.tick()  # all steps taken; the first callback fails: Ji'an is down
        shown = await p.show(request_id)
        assert shown["status"] == "completed"
        assert shown["callbacks"] == {"pending": 3}

        async with running_receiver(tree.config(JIAN)) as receiver:
            for _ in range(10):  # one callback per request per pass keeps them in order
                clock.advance(60)
                await p.tick()
                if receiver.events.qsize() == 3:
                    break
            got = await receiver.take(3)
        assert [e.status for _, e in got] == STATUSES_OF["complete"]
        assert (await p.show(request_id))["callbacks"] == {"delivered": 3}
