"""Zhuzhou's gateway: the signed form, its JSON answers and its status vocabulary."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.form_async import FormAsyncAdapter
from adapters.form_async_format import (
    decode_form,
    decode_reply,
    encode_form,
    events_from_history,
    sign_params,
    string_to_sign,
    verify_params,
)
from adapters.wire_errors import MalformedMessage
from gateway.errors import AuthError, GatewayError
from gateway.keys import load_token_key
from tests.adapters.harness import running_partner, submission
from tests.support.network import Tree

KEY = b"k" * 32


def test_string_to_sign_sorts_keys_and_skips_sign_and_empty_values() -> None:
    params = {"method": "bj.query", "app_id": "360800", "sign": "X", "blyj": "", "sqbh": "a b&c"}
    assert string_to_sign(params) == b"app_id=360800&method=bj.query&sqbh=a b&c"


def test_signature_round_trips_through_the_form_encoding() -> None:
    params = {"app_id": "360800", "method": "bj.submit", "sqr": json.dumps({"name": "张三"})}
    params["sign"] = sign_params(KEY, params)
    back = decode_form(encode_form(params))
    verify_params(KEY, back)
    assert back["sign"] == back["sign"].upper()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"sign": ""}, "token_missing"),
        ({"sign": "zz"}, "token_signature"),
        ({"sqbh": "another"}, "token_signature"),
    ],
)
def test_tampered_forms_fail_verification(change: dict[str, str], code: str) -> None:
    params = {"app_id": "360800", "sqbh": "one"}
    params["sign"] = sign_params(KEY, params)
    params.update(change)
    with pytest.raises(AuthError) as caught:
        verify_params(KEY, params)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"a=1&a=2", "form field a is repeated"),
        (b"a=%FF", "not UTF-8"),
        (b"\xff=1", "not UTF-8"),
        (b"a&&b", "not k=v pairs"),
        (b"&".join(b"f%d=1" % i for i in range(100)), "not k=v pairs"),
        (b"a=" + b"x" * 300_000, "larger than"),
    ],
)
def test_bad_forms_are_typed_errors(body: bytes, detail: str) -> None:
    with pytest.raises(MalformedMessage, match=detail):
        decode_form(body)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"<html>500</html>", "not UTF-8 JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"rtn_code": 0}', "no rtn_code"),
        (b'{"rtn_msg": "ok"}', "no rtn_code"),
    ],
)
def test_bad_answers_are_typed_errors(body: bytes, detail: str) -> None:
    with pytest.raises(MalformedMessage, match=detail):
        decode_reply(body)


def test_history_maps_zhuzhou_codes_and_leaves_out_the_first_pending() -> None:
    history = [
        {"blzt": "0", "blsj": "2026-01-15 10:30:00", "blyj": "已接收"},
        {"blzt": "1", "blsj": "2026-01-15 10:31:00", "blyj": "予以受理"},
        {"blzt": "3", "blsj": "2026-01-15 11:00:00", "blyj": "请补正"},
        {"blzt": "8", "blsj": "2026-01-16 09:00:00"},
    ]
    events = events_from_history("r", history)
    assert [e.status for e in events] == ["accepted", "needs_supplement", "rejected"]
    assert events[0].at == "2026-01-15T02:31:00.000Z"  # Beijing 10:31 is 02:31 UTC
    assert events[2].note == "" and events[2].meta == {"partner_status": "8"}


@pytest.mark.parametrize(
    ("history", "detail"),
    [
        ("not a list", "lsjl is not a list"),
        ([1], "lsjl record is not an object"),
        ([{"blzt": "7", "blsj": "2026-01-15 10:30:00"}], "blzt is not a known"),
        ([{"blzt": "1", "blsj": "2026-01-15T10:30:00"}], "blsj is not yyyy-MM-dd HH:mm:ss"),
        ([{"blzt": "1", "blsj": "2026-02-30 10:30:00"}], "blsj is not a real date"),
        ([{"blzt": 1, "blsj": "2026-01-15 10:30:00"}], "blzt is missing or not text"),
    ],
)
def test_bad_history_is_a_typed_error(history: Any, detail: str) -> None:
    with pytest.raises(MalformedMessage, match=detail):
        events_from_history("r", history)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_form_bytes_give_params_or_a_typed_error(body: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        decode_form(body)
    with contextlib.suppress(MalformedMessage):
        decode_reply(body)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


_entry = st.fixed_dictionaries(
    {
        "blzt": st.sampled_from(["0", "1", "3", "4", "7", 1, None]),
        "blsj": st.sampled_from(["2026-01-15 10:30:00", "2026-13-01 00:00:00"])
        | st.text(max_size=20),
    },
    optional={"blyj": st.text(max_size=5) | st.none()},
)


@settings(max_examples=150, deadline=None)
@given(_json | st.lists(_entry | _json, max_size=4))
def test_any_history_gives_events_or_a_typed_error(history: Any) -> None:
    with contextlib.suppress(MalformedMessage):
        events_from_history("r", history)


async def test_the_gateway_answers_json_as_html_and_refuses_stale_or_unsigned_calls(
    tree: Tree,
) -> None:
    async with running_partner(tree, "form_async") as p:
        adapter = p.adapter()
        ack = await adapter.submit_request(submission("form_async", str(uuid.uuid4())))
        assert ack.status == "received" and ack.partner_ref and ack.partner_ref.startswith("ZZ")

        jian = p.jian
        partner = jian.partner(p.sim.id)
        assert partner is not None
        late = FormAsyncAdapter(
            jian, partner, load_token_key(jian), clock=lambda: time.time() - 600
        )
        wrong = FormAsyncAdapter(jian, replace(partner, hmac_key=b"wrong"), load_token_key(jian))
        try:
            for adapter_, detail in ((late, "timestamp was refused"), (wrong, "signature")):
                with pytest.raises(GatewayError) as caught:
                    await adapter_.health()
                assert caught.value.code == "upstream_unavailable"
                assert detail in caught.value.detail
        finally:
            await late.close()
            await wrong.close()
