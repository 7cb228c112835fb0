"""Tongliao's sharing platform: signatures both ways, epoch milliseconds, the callback."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
import uuid
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sharing_api import SharingApiAdapter, callback_body, event_from_callback
from adapters.sharing_api_format import (
    canonical_request,
    decode_answer,
    encode_json,
    request_headers,
    response_headers,
    verify_request,
    verify_response,
)
from adapters.wire_errors import MalformedMessage
from adapters.wire_time import from_epoch_ms
from gateway.errors import AuthError, GatewayError, TokenSignature
from gateway.exchange.model import StatusEvent
from gateway.keys import load_token_key
from tests.adapters.harness import JIAN, running_partner, running_receiver
from tests.support.network import Tree

KEY = b"s" * 32
TONGLIAO = "cn-150500"
PATH = "/share/api/v1/license/status"


def test_canonical_request_is_the_documented_string() -> None:
    body = b'{"certificateIdentifier":"x"}'
    got = canonical_request("post", PATH, "360800", 1768444200000, "ab" * 16, body)
    expected = [
        "POST",
        PATH,
        "360800",
        "1768444200000",
        "ab" * 16,
        hashlib.sha256(body).hexdigest(),
    ]
    assert got == "\n".join(expected).encode()


def _headers(body: bytes, *, ts: int | None = None, key: bytes = KEY) -> dict[str, str]:
    now = int(time.time() * 1000) if ts is None else ts
    return request_headers(key, "POST", PATH, "360800", now, secrets.token_hex(16), body)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda h, b: (h, b + b" "), "token_signature"),
        (lambda h, b: (_headers(b, key=b"other"), b), "token_signature"),
        (lambda h, b: ({**h, "X-Signature": "!!"}, b), "token_signature"),
        (lambda h, b: ({**h, "X-Signature": "AAAA"}, b), "token_signature"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "X-Nonce"}, b), "token_missing"),
        (lambda h, b: ({**h, "X-Timestamp": "1768444200"}, b), "token_malformed"),
        (lambda h, b: ({**h, "X-Nonce": "NOT-HEX" * 4}, b), "token_malformed"),
        (lambda h, b: ({**h, "X-App-Id": "吉安"}, b), "token_malformed"),
        (lambda h, b: (_headers(b, ts=int((time.time() - 301) * 1000)), b), "token_expired"),
        (lambda h, b: (_headers(b, ts=int((time.time() + 301) * 1000)), b), "token_not_yet_valid"),
    ],
)
def test_inbound_signatures_are_checked_in_full(mutate: Any, code: str) -> None:
    body = b'{"projectNo":"x"}'
    headers, sent = mutate(_headers(body), body)
    with pytest.raises(AuthError) as caught:
        verify_request(KEY, "POST", PATH, headers, sent, time.time())
    assert caught.value.code == code


def test_an_answer_is_bound_to_the_request_nonce() -> None:
    nonce = secrets.token_hex(16)
    body = b'{"code":0}'
    ts = int(time.time() * 1000)
    headers = response_headers(KEY, "POST", PATH, "360800", ts, nonce, body)
    verify_response(KEY, "POST", PATH, "360800", nonce, headers, body, time.time())
    with pytest.raises(TokenSignature):
        verify_response(
            KEY, "POST", PATH, "360800", secrets.token_hex(16), headers, body, time.time()
        )


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"<html/>", "not UTF-8 JSON"),
        (b'{"code": "0"}', "no integer code"),
        (b'{"code": true}', "no integer code"),
        (b'{"code": 0, "data": []}', "data is not an object"),
    ],
)
def test_bad_answers_are_typed_errors(body: bytes, detail: str) -> None:
    with pytest.raises(MalformedMessage, match=detail):
        decode_answer(body)


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (1768444200, "not epoch milliseconds of this century"),
        ("1768444200000", "not an integer"),
        (True, "not an integer"),
        (1.5e12, "not an integer"),
    ],
)
def test_times_must_be_epoch_milliseconds(value: object, detail: str) -> None:
    with pytest.raises(MalformedMessage, match=detail):
        from_epoch_ms(value)


def test_callbacks_translate_to_status_events_and_back() -> None:
    event = StatusEvent(str(uuid.uuid4()), "completed", "2026-01-15T02:30:00.123Z", "办结")
    body = callback_body(event, "e1")
    assert body["statusTime"] == 1768444200123 and body["projectStatus"] == "FINISHED"
    assert event_from_callback(body) == StatusEvent(
        event.request_id, "completed", event.at, "办结", {"partner_status": "FINISHED"}
    )


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(
    st.binary(max_size=300),
    st.dictionaries(
        st.sampled_from(["X-App-Id", "X-Timestamp", "X-Nonce", "X-Signature", "X-Other"]),
        st.text(max_size=50),
    ),
    _json
    | st.fixed_dictionaries(
        {"projectNo": _json, "projectStatus": _json, "statusTime": _json, "opinion": _json}
    ),
)
def test_any_input_gives_a_value_or_a_typed_error(
    body: bytes, headers: dict[str, str], callback: Any
) -> None:
    with contextlib.suppress(MalformedMessage):
        decode_answer(body)
    with contextlib.suppress(AuthError):
        verify_request(KEY, "POST", PATH, headers, body, time.time())
    if isinstance(callback, dict):
        with contextlib.suppress(MalformedMessage):
            event_from_callback(callback)


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers) as resp:
        return resp.status, json.loads(await resp.read()), resp.headers


async def test_signed_callbacks_reach_the_sink_and_bad_ones_get_exact_codes(tree: Tree) -> None:
    jian = tree.config(JIAN)
    partner = jian.partner(TONGLIAO)
    assert partner is not None and partner.hmac_key is not None
    key = partner.hmac_key
    path = f"/adapters/{TONGLIAO}/callback"
    url = jian.public_url + path
    rid = str(uuid.uuid4())

    def signed(
        payload: Any, *, app_id: str = "150500", ts: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        body = payload if isinstance(payload, bytes) else encode_json(payload)
        now = int(time.time() * 1000) if ts is None else ts
        nonce = secrets.token_hex(16)
        return body, request_headers(key, "POST", path, app_id, now, nonce, body)

    event = StatusEvent(rid, "accepted", "2026-01-15T02:30:00.000Z", "予以受理")
    async with running_receiver(jian) as receiver:
        body, headers = signed(callback_body(event, "e1"))
        status, answer, answer_headers = await _post(url, body, headers)
        assert (status, answer["code"]) == (200, 0)
        raw = encode_json(answer)
        verify_response(
            key, "POST", path, "150500", headers["X-Nonce"], answer_headers, raw, time.time()
        )
        [(who, got)] = await receiver.take(1)
        assert (who, got.request_id, got.status) == (TONGLIAO, rid, "accepted")

        stale = int((time.time() - 600) * 1000)
        bad_time = {**callback_body(event, "e2"), "statusTime": 1768444200}
        cases = [
            ((body, headers), "token_replayed"),
            ((body, {**headers, "X-Signature": signed(b"x")[1]["X-Signature"]}), "token_signature"),
            ((body, {}), "token_missing"),
            (signed(callback_body(event, "e3"), ts=stale), "token_expired"),
            (signed(callback_body(event, "e4"), app_id="360800"), "partner_unknown"),
            (signed(bad_time), "validation_failed"),
            (signed({**callback_body(event, "e5"), "projectStatus": "DONE"}), "validation_failed"),
            (signed(b"not json"), "validation_failed"),
        ]
        for (b, h), code in cases:
            status, answer, _ = await _post(url, b, h)
            assert answer["code"] == code, (code, answer)
        assert receiver.events.qsize() == 0


async def test_a_skewed_clock_or_wrong_key_is_an_upstream_error(tree: Tree) -> None:
    async with running_partner(tree, "sharing_api") as p:
        jian = p.jian
        partner = jian.partner(p.sim.id)
        assert partner is not None
        late = SharingApiAdapter(
            jian, partner, load_token_key(jian), clock=lambda: time.time() - 600
        )
        try:
            with pytest.raises(GatewayError) as caught:
                await late.health()
            assert caught.value.code == "upstream_unavailable"
            assert "without a valid signature" in caught.value.detail
        finally:
            await late.close()
