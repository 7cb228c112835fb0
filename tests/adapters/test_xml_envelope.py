"""Longyan's XML envelope: safe parsing, GB18030, and the signed status callback."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.safe_xml import MAX_DEPTH, parse_xml
from adapters.wire_errors import MalformedMessage
from adapters.xml_envelope import SIGN_HEADER, event_record, new_collab_no, sign_body
from adapters.xml_envelope_format import (
    CONTENT_TYPE,
    LICENSE_STATUS,
    OK,
    STATUS_NOTIFY,
    VERSION,
    Envelope,
    Header,
    Record,
    decode_envelope,
    encode_envelope,
)
from gateway.errors import NotFound
from gateway.exchange.model import StatusEvent
from tests.adapters.harness import JIAN, running_receiver
from tests.support.network import Tree

LONGYAN = "cn-350800"


def header(**over: Any) -> Header:
    values: dict[str, Any] = {
        "version": VERSION,
        "sender_code": "350800",
        "sender_name": "龙岩市",
        "receiver_code": "360800",
        "receiver_name": "吉安市",
        "business_class": STATUS_NOTIFY,
        "collab_no": new_collab_no("350800", datetime.now(UTC)),
        "send_time": datetime.now(UTC).replace(microsecond=0),
    }
    values.update(over)
    return Header(**values)


def envelope_bytes(**over: Any) -> bytes:
    return encode_envelope(Envelope(header(**over), (Record(OK, "成功", {"ZZBS": "x"}),)))


# ---------------------------------------------------------------- parsing


def test_round_trip_keeps_chinese_text_in_gb18030() -> None:
    # 䶮 (U+4DAE) and 𠀀 (U+20000) are four-byte sequences in GB18030, absent from GBK.
    data = {"BLYJ": "请补正：䶮𠀀", "SQR": {"name": "王䶮", "age": 30}, "ZZLB": ["a", "b"]}
    body = encode_envelope(Envelope(header(), (Record(OK, "成功", data),)))
    assert body.startswith(b'<?xml version="1.0" encoding="GB18030"?>')
    assert "请补正".encode("gb18030") in body
    back = decode_envelope(body, "GB18030")
    assert back.first.data == data
    assert back.header.collab_no.startswith("350800-")


@pytest.mark.parametrize(
    ("body", "charset", "detail"),
    [
        (envelope_bytes(), "UTF-8", "in charset UTF-8, expected GB18030"),
        (envelope_bytes(), "GBK", "in charset GBK, expected GB18030"),
        (
            envelope_bytes().replace(b'encoding="GB18030"', b'encoding="UTF-8"'),
            "GB18030",
            "declares encoding UTF-8, expected GB18030",
        ),
        (b'<?xml version="1.0" encoding="GBK"?><PACKAGE/>', None, "declares encoding GBK"),
        (b"\x81\x20<PACKAGE/>", "GB18030", "not valid GB18030 text"),
        (b"<PACKAGE><HEAD></PACKAGE>", "GB18030", "not well-formed"),
        (b"<ROOT/>", "GB18030", "root element is not PACKAGE"),
        (
            envelope_bytes().replace(b"<XTBH>", b"<XTBX>").replace(b"</XTBH>", b"</XTBX>"),
            "GB18030",
            "HEAD XTBH is missing",
        ),
        (
            envelope_bytes(sender_code="35080"),
            "GB18030",
            "SEND_CODE is not a 6-digit division code",
        ),
        (envelope_bytes().replace(b"<VERSION>1.0", b"<VERSION>2.0"), "GB18030", "version 2.0"),
        (
            re.sub(rb"<SEND_TIME>[0-9]+", b"<SEND_TIME>20261340250000", envelope_bytes()),
            "GB18030",
            "SEND_TIME is not a real date",
        ),
        (
            envelope_bytes().replace(b"<CODE>0000</CODE>", b"<CODE>OK</CODE>"),
            "GB18030",
            "RECORD CODE is not four digits",
        ),
    ],
)
def test_bad_envelopes_name_what_is_wrong(body: bytes, charset: str | None, detail: str) -> None:
    with pytest.raises(MalformedMessage) as caught:
        decode_envelope(body, charset)
    assert caught.value.code == "validation_failed"
    assert detail in caught.value.detail


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<PACKAGE>&lol2;</PACKAGE>"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><PACKAGE>&xxe;</PACKAGE>"""
PARAMETER_ENTITY = """<!DOCTYPE p [<!ENTITY % remote SYSTEM "http://127.0.0.1:1/x">%remote;]>
<PACKAGE/>"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, XXE, PARAMETER_ENTITY])
def test_dtds_and_entities_are_refused(text: str) -> None:
    with pytest.raises(MalformedMessage, match="DTD or entities"):
        parse_xml(text)


def test_deep_nesting_is_refused() -> None:
    deep = "<A>" * (MAX_DEPTH + 1) + "</A>" * (MAX_DEPTH + 1)
    with pytest.raises(MalformedMessage, match="nested deeper"):
        parse_xml(deep)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([None, "GB18030", "UTF-8", "gb18030"]))
def test_any_bytes_give_an_envelope_or_a_typed_error(body: bytes, charset: str | None) -> None:
    with contextlib.suppress(MalformedMessage):
        decode_envelope(body, charset)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_envelopes_give_an_envelope_or_a_typed_error(data: st.DataObject) -> None:
    body = bytearray(envelope_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(MalformedMessage):
        decode_envelope(bytes(body), "GB18030")


_xml_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=40,
).map(str.strip)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[A-Z]{2,6}", fullmatch=True),
        _xml_text | st.lists(_xml_text, min_size=1, max_size=4),
        max_size=5,
    ),
    # table values may hold anything but surrogates: what XML cannot carry goes as JSON
    st.dictionaries(
        st.text(min_size=1, max_size=10).filter(str.isalnum),
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
        max_size=4,
    ),
)
def test_record_data_round_trips(fields: dict[str, Any], table: dict[str, str]) -> None:
    data: dict[str, Any] = dict(fields)
    if table:
        data["TABLE"] = table
    data = {k: v for k, v in data.items() if v not in ("", [])}
    body = encode_envelope(Envelope(header(), (Record(OK, "", data),)))
    assert decode_envelope(body, "GB18030").first.data == data


# ---------------------------------------------------------------- the callback route


def callback_body(request_id: str, status: str = "accepted", **over: Any) -> bytes:
    event = StatusEvent(request_id, status, "2026-01-15T02:30:00.000Z", "予以受理")  # type: ignore[arg-type]
    return encode_envelope(Envelope(header(**over), (event_record(event),)))


async def post(url: str, body: bytes, sign: str | None) -> tuple[int, bytes, str]:
    headers = {"Content-Type": CONTENT_TYPE}
    if sign is not None:
        headers[SIGN_HEADER] = sign
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.read(), resp.headers.get("Content-Type", "")


async def problem_code(url: str, body: bytes, sign: str | None) -> str:
    status, answer, ctype = await post(url, body, sign)
    assert ctype.startswith("application/problem+json"), (status, answer)
    return str(json.loads(answer)["code"])


async def test_a_signed_callback_reaches_the_sink_and_is_answered_in_xml(tree: Tree) -> None:
    jian = tree.config(JIAN)
    key = jian.partner(LONGYAN).hmac_key  # type: ignore[union-attr]
    assert key is not None
    url = f"{jian.public_url}/adapters/{LONGYAN}/callback"
    request_id = str(uuid.uuid4())
    async with running_receiver(jian) as receiver:
        body = callback_body(request_id, "needs_supplement")
        status, answer, ctype = await post(url, body, sign_body(key, body))
        assert status == 200 and "GB18030" in ctype
        ack = decode_envelope(answer, "GB18030")
        assert ack.first.code == OK and ack.header.sender_code == "360800"
        [(partner, event)] = await receiver.take(1)
    assert partner == LONGYAN
    assert (event.request_id, event.status, event.note) == (
        request_id,
        "needs_supplement",
        "予以受理",
    )
    assert event.at == "2026-01-15T02:30:00.000Z"


async def test_bad_callbacks_are_refused_with_exact_codes(tree: Tree) -> None:
    jian = tree.config(JIAN)
    key = jian.partner(LONGYAN).hmac_key  # type: ignore[union-attr]
    assert key is not None
    url = f"{jian.public_url}/adapters/{LONGYAN}/callback"
    rid = str(uuid.uuid4())
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=6)
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=6)
    async with running_receiver(jian) as receiver:
        good = callback_body(rid)
        assert await problem_code(url, good, None) == "token_missing"
        assert await problem_code(url, good, "00" * 32) == "token_signature"
        assert await problem_code(url, good, "not hex") == "token_signature"
        assert (
            await problem_code(url, good, sign_body(b"another secret", good)) == "token_signature"
        )

        def signed(body: bytes) -> tuple[bytes, str]:
            return body, sign_body(key, body)

        cases = [
            (callback_body(rid, send_time=old), "token_expired"),
            (callback_body(rid, send_time=ahead), "token_not_yet_valid"),
            (callback_body(rid, sender_code="430200"), "partner_unknown"),
            (callback_body(rid, receiver_code="330800"), "token_audience"),
            (callback_body(rid, business_class=LICENSE_STATUS), "validation_failed"),
            (callback_body("not-a-uuid"), "validation_failed"),
            (
                callback_body(rid).replace(b"<BJZT>02</BJZT>", b"<BJZT>42</BJZT>"),
                "validation_failed",
            ),
            (b"<PACKAGE>" + b"x" * (70 * 1024) + b"</PACKAGE>", "body_too_large"),
            (b"\xff\xfe not xml", "validation_failed"),
        ]
        for body, code in cases:
            assert await problem_code(url, *signed(body)) == code, code

        status, _, _ = await post(url, good, sign_body(key, good))
        assert status == 200
        assert await problem_code(url, good, sign_body(key, good)) == "token_replayed"
        receiver.refuse = NotFound
        fresh = callback_body(rid)
        assert await problem_code(url, fresh, sign_body(key, fresh)) == "not_found"
        assert receiver.events.qsize() == 1  # only the one good callback got through
