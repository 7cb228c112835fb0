"""Audit entries: the fast encoder is byte-identical to RFC 8785; parsing is strict."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import inspect
import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

import gateway.audit.entry as entry_module
from gateway.audit.entry import (
    PAYLOAD_DOMAIN,
    ZERO_PREV,
    EntryEncoder,
    EntryInvalid,
    Pseudonymiser,
    canonical_meta,
    commitment,
    format_ts,
    micros_of,
    parse_entry,
    prepare_entry,
    pseudonymise,
    subject_tag,
)
from gateway.audit.events import AuditEvent, AuditReceipt
from gateway.encoding import b64u_encode

from .conftest import NODE, event

SECRET = bytes(range(32))
PSEUDONYM = Pseudonymiser(SECRET)
TS = "2026-11-22T23:59:01.123456Z"

# Text that exercises JSON escaping and UTF-16 key order: controls, quotes, backslashes,
# U+007F, U+2028, CJK, and characters outside the Basic Multilingual Plane.
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",))
    | st.sampled_from('"\\\x00\x1f\x7f\u2028😀𠀀'),
    max_size=12,
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
metas = st.dictionaries(text, json_values, max_size=6)


def reference(ev: AuditEvent, seq: int, prev: str, ts: str = TS) -> bytes:
    """The entry of SPEC 6 built as a dict and canonicalised by the rfc8785 library."""
    return rfc8785.dumps(
        {
            "v": 1,
            "seq": seq,
            "ts": ts,
            "node": NODE,
            "prev": prev,
            "event": ev.event,
            "actor": {"type": ev.actor_type, "id": ev.actor_id, "sub": ev.actor_sub},
            "subject": None if ev.subject is None else pseudonymise(SECRET, ev.subject),
            "request": None
            if ev.request is None
            else b64u_encode(hashlib.sha256(ev.request).digest()),
            "response": None
            if ev.response is None
            else b64u_encode(hashlib.sha256(ev.response).digest()),
            "outcome": ev.outcome,
            "code": ev.code,
            "commit": None,
            "meta": ev.meta,
        }
    )


@settings(max_examples=300, deadline=None)
@given(
    event_name=st.from_regex(r"[a-z][a-z0-9_]{0,8}(\.[a-z][a-z0-9_]{0,8}){0,2}", fullmatch=True),
    actor_type=st.sampled_from(["partner", "staff", "system"]),
    actor_id=text.filter(bool),
    actor_sub=st.none() | text,
    outcome=st.sampled_from(["ok", "rejected", "error"]),
    code=st.none() | text,
    subject=st.none() | text,
    request=st.none() | st.binary(max_size=40),
    response=st.none() | st.binary(max_size=40),
    meta=metas,
    seq=st.integers(min_value=0, max_value=2**53 - 1),
    prev=st.binary(min_size=32, max_size=32),
)
def test_fast_encoder_is_byte_identical_to_rfc8785(
    event_name: str,
    actor_type: Any,
    actor_id: str,
    actor_sub: str | None,
    outcome: Any,
    code: str | None,
    subject: str | None,
    request: bytes | None,
    response: bytes | None,
    meta: dict[str, Any],
    seq: int,
    prev: bytes,
) -> None:
    ev = AuditEvent(
        event=event_name,
        actor_type=actor_type,
        actor_id=actor_id,
        actor_sub=actor_sub,
        outcome=outcome,
        code=code,
        subject=subject,
        request=request,
        response=response,
        meta=meta,
    )
    prev_text = b64u_encode(prev)
    data = EntryEncoder(NODE, PSEUDONYM).prepare(ev, TS).assemble(seq, prev_text.encode())
    assert data == reference(ev, seq, prev_text)
    parsed = parse_entry(data)
    assert parsed.to_bytes() == data
    assert rfc8785.dumps(parsed.to_dict()) == data


@settings(max_examples=300, deadline=None)
@given(meta=metas)
def test_canonical_meta_matches_rfc8785(meta: dict[str, Any]) -> None:
    assert canonical_meta(meta).encode("utf-8") == rfc8785.dumps(meta)


def test_utf16_key_order_differs_from_code_point_order() -> None:
    # U+FF61 sorts after U+1F600 in code points but before it in UTF-16 (surrogates D83D).
    meta = {"\uff61": 1, "😀": 2}
    assert canonical_meta(meta) == '{"😀":2,"｡":1}'
    assert canonical_meta(meta).encode() == rfc8785.dumps(meta)


def test_known_entry_bytes() -> None:
    ev = AuditEvent(
        event="license.verify",
        actor_type="partner",
        actor_id="cn-330800",
        meta={"status": 200},
        request=b"",
    )
    data = prepare_entry(ev, node=NODE, ts=TS, pseudonym=PSEUDONYM).assemble(0, ZERO_PREV.encode())
    assert data == (
        b'{"actor":{"id":"cn-330800","sub":null,"type":"partner"},"code":null,"commit":null,'
        b'"event":"license.verify","meta":{"status":200},"node":"cn-360800","outcome":"ok",'
        b'"prev":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",'
        b'"request":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU","response":null,"seq":0,'
        b'"subject":null,"ts":"2026-11-22T23:59:01.123456Z","v":1}'
    )


def test_payload_commitment_and_salt() -> None:
    ev = AuditEvent(event="license.fetch", actor_type="staff", actor_id="staff01", payload=b"P")
    a = prepare_entry(ev, node=NODE, ts=TS, pseudonym=PSEUDONYM)
    b = prepare_entry(ev, node=NODE, ts=TS, pseudonym=PSEUDONYM)
    assert a.salt is not None and len(a.salt) == 32 and a.salt != b.salt
    entry = parse_entry(a.assemble(3, ZERO_PREV.encode()))
    expected = hashlib.sha256(PAYLOAD_DOMAIN + a.salt + b"P").digest()
    assert entry.commit == b64u_encode(expected) == commitment(a.salt, b"P")
    assert a.payload == b"P"


def test_pseudonymiser_is_hmac_sha256() -> None:
    for secret in (os.urandom(32), os.urandom(64), os.urandom(100)):
        p = Pseudonymiser(secret)
        for value in ("11010519491231002X", "1.2.156.3005.2.x", "", "张三"):
            mac = hmac.new(secret, value.encode(), "sha256").digest()
            assert p(value) == b64u_encode(mac) == pseudonymise(secret, value)
    with pytest.raises(ValueError):
        Pseudonymiser(b"short")


def test_timestamps() -> None:
    moment = datetime(2026, 11, 22, 23, 59, 1, 123456, tzinfo=UTC)
    assert format_ts(micros_of(moment)) == TS
    assert format_ts(micros_of(moment) + 1_000_000) == "2026-11-22T23:59:02.123456Z"
    assert format_ts(0) == "1970-01-01T00:00:00.000000Z"
    with pytest.raises(ValueError):
        micros_of(datetime(2026, 1, 1))  # naive on purpose


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"event": "License.Verify"}, "event"),
        ({"event": "license..verify"}, "event"),
        ({"actor_type": "robot"}, "actor_type"),
        ({"actor_id": ""}, "actor_id"),
        ({"outcome": "maybe"}, "outcome"),
        ({"meta": {"x": object()}}, "JSON"),
        ({"meta": {1: "a"}}, "keys"),
        ({"meta": {"x": float("nan")}}, "nan"),
        ({"meta": {"x": 2**60}}, "integer"),
        ({"actor_id": "\ud800"}, "surrogate"),
        ({"meta": {"x": "\udfff"}}, "surrogate"),
    ],
)
def test_events_that_cannot_be_recorded(changes: dict[str, Any], why: str) -> None:
    base = {"event": "license.verify", "actor_type": "partner", "actor_id": "cn-330800"}
    ev = AuditEvent(**{**base, **changes})
    with pytest.raises(EntryInvalid):
        EntryEncoder(NODE, PSEUDONYM).prepare(ev, TS)


def test_encoder_rejects_bad_node_and_ts() -> None:
    with pytest.raises(ValueError):
        EntryEncoder("360800", PSEUDONYM)
    with pytest.raises(EntryInvalid):
        prepare_entry(event(1), node=NODE, ts="2026-11-22 23:59:01", pseudonym=PSEUDONYM)


def _good() -> bytes:
    return EntryEncoder(NODE, PSEUDONYM).prepare(event(4), TS).assemble(7, ZERO_PREV.encode())


def _mutate(change: Any) -> bytes:
    obj = json.loads(_good())
    change(obj)
    return rfc8785.dumps(obj)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"[]", id="array"),
        pytest.param(_good().replace(b'"v":1}', b'"v":1} '), id="trailing-space"),
        pytest.param(_good().replace(b',"code"', b', "code"'), id="whitespace"),
        pytest.param(json.dumps(json.loads(_good())).encode(), id="not-canonical"),
        pytest.param(_good().replace(b'"v":1}', b'"v":1,"v":1}'), id="duplicate-key"),
        pytest.param(_good()[:-1] + b',"x":1}', id="extra-key"),
        pytest.param(_mutate(lambda o: o.pop("meta")), id="missing-key"),
        pytest.param(_mutate(lambda o: o.update(v=2)), id="version"),
        pytest.param(_mutate(lambda o: o.update(seq=-1)), id="negative-seq"),
        pytest.param(_mutate(lambda o: o.update(seq=True)), id="bool-seq"),
        pytest.param(_mutate(lambda o: o.update(prev="AAAA")), id="short-prev"),
        pytest.param(_mutate(lambda o: o.update(prev=ZERO_PREV[:-1] + "B")), id="noncanon-b64"),
        pytest.param(_mutate(lambda o: o.update(ts="2026-02-30T00:00:00.000000Z")), id="bad-date"),
        pytest.param(_mutate(lambda o: o.update(ts="2026-11-22T23:59:01Z")), id="no-micros"),
        pytest.param(_mutate(lambda o: o.update(node="cn-36080")), id="node"),
        pytest.param(_mutate(lambda o: o["actor"].update(type="robot")), id="actor-type"),
        pytest.param(_mutate(lambda o: o["actor"].pop("sub")), id="actor-keys"),
        pytest.param(_mutate(lambda o: o.update(outcome="fine")), id="outcome"),
        pytest.param(_mutate(lambda o: o.update(meta=[])), id="meta-array"),
        pytest.param(_mutate(lambda o: o.update(code=5)), id="code-number"),
        pytest.param(_mutate(lambda o: o.update(event="A")), id="event"),
        pytest.param(_good().replace(b'"status":', b'"status":1e400,"s":'), id="inf"),
        pytest.param(_good().replace(b'"status":', b'"status":NaN,"s":'), id="nan"),
        pytest.param(_good().replace(b"req-2", b"req-\xff"), id="bad-utf8"),
        pytest.param(_good().replace(b"req-2", b"req-\xed\xa0\x80"), id="encoded-surrogate"),
    ],
)
def test_parse_entry_is_strict(data: bytes) -> None:
    with pytest.raises(EntryInvalid):
        parse_entry(data)


def test_parse_entry_round_trip() -> None:
    data = _good()
    entry = parse_entry(data)
    assert entry.seq == 7 and entry.node == NODE and entry.prev == ZERO_PREV
    assert entry.meta["request_id"] == "req-2"
    assert entry.subject is None and entry.request is not None
    assert entry.to_bytes() == data


# ---------------------------------------------------------------- the hot path's caches
#
# The encoder remembers the key order of every ``meta`` shape and the text of flat
# nested objects (e.g. a verdict's ``checks``), so that appends do not redo that work.
# A cache may only ever give what a fresh canonicalisation gives.


def _clear_meta_caches() -> None:
    entry_module._shapes.clear()
    entry_module._flat_texts.clear()


@settings(max_examples=300, deadline=None)
@given(first=metas, second=metas)
def test_cached_meta_text_equals_a_fresh_canonicalisation(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    _clear_meta_caches()
    cold = [canonical_meta(first), canonical_meta(second)]
    warm = [canonical_meta(first), canonical_meta(second)]  # every shape cached now
    assert cold == warm
    assert [t.encode("utf-8") for t in warm] == [rfc8785.dumps(first), rfc8785.dumps(second)]
    # The same keys with other values (types) must not reuse the cached values.
    swapped = {k: {"v": [True, 1, "1", None]} for k in first}
    assert canonical_meta(swapped).encode("utf-8") == rfc8785.dumps(swapped)


@pytest.mark.parametrize(
    "value",
    ["1", 1, True, False, None, 1.0, 1.5, "true", "null", [], {}, ["1"], {"a": "1"}],
)
def test_flat_object_cache_tells_equal_values_of_other_types_apart(value: Any) -> None:
    # "1", 1, True and 1.0 compare equal in pairs in Python; the cache must not mix them.
    for warm_with in ("1", None, 1, True):
        encoder = EntryEncoder(NODE, PSEUDONYM)
        for meta in ({"checks": {"a": warm_with}}, {"checks": {"a": value}}):
            data = encoder.prepare(AuditEvent("e.v", "system", NODE, meta=meta), TS).assemble(
                0, ZERO_PREV.encode()
            )
            assert parse_entry(data).meta == meta
            assert canonical_meta(meta).encode("utf-8") == rfc8785.dumps(meta)


def test_a_known_shape_still_refuses_what_is_not_json() -> None:
    encoder = EntryEncoder(NODE, PSEUDONYM)
    good = AuditEvent("e.v", "system", NODE, meta={"n": 1, "checks": {"a": "pass"}})
    encoder.prepare(good, TS)
    for bad in ({"n": 2**60, "checks": {}}, {"n": object(), "checks": {}}, {"n": float("inf")}):
        with pytest.raises(EntryInvalid):
            encoder.prepare(AuditEvent("e.v", "system", NODE, meta=bad), TS)
    assert canonical_meta({"n": 0.5, "checks": {"a": "pass"}}) == '{"checks":{"a":"pass"},"n":0.5}'


def test_prepared_entry_carries_the_subject_tag() -> None:
    generic = EntryEncoder(NODE, lambda v: pseudonymise(SECRET, v))  # not a Pseudonymiser
    fast = EntryEncoder(NODE, PSEUDONYM)
    for i in range(50):
        ev = event(2 * i + 1)  # odd events have a subject
        a, b = fast.prepare(ev, TS), generic.prepare(ev, TS)
        assert a.subject == b.subject == pseudonymise(SECRET, str(ev.subject))
        assert a.tag == b.tag == subject_tag(a.subject)
        assert a.assemble(5, ZERO_PREV.encode()) == b.assemble(5, ZERO_PREV.encode())
    assert fast.prepare(event(2), TS).tag is None


def test_audit_event_init_matches_its_fields() -> None:
    # AuditEvent and AuditReceipt write their fields directly (cheaper than a generated
    # frozen __init__); their signatures must stay those a dataclass would generate.
    for cls in (AuditEvent, AuditReceipt):
        params = list(inspect.signature(cls).parameters.values())
        fields = dataclasses.fields(cls)
        assert [p.name for p in params] == [f.name for f in fields]
        for p, f in zip(params, fields, strict=True):
            if f.default is not dataclasses.MISSING:
                assert p.default == f.default
            elif f.default_factory is not dataclasses.MISSING:
                assert p.default is not inspect.Parameter.empty
            else:
                assert p.default is inspect.Parameter.empty
    a = AuditEvent("e.v", "system", NODE)
    b = AuditEvent("e.v", "system", NODE)
    assert a == b and a.meta == {} and a.meta is not b.meta and a.outcome == "ok"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.event = "x"  # type: ignore[misc]
    leaf = bytes(range(32))
    receipt = AuditReceipt(3, leaf)
    assert receipt == AuditReceipt(seq=3, leaf=leaf)
    assert hash(receipt) == hash(AuditReceipt(3, leaf))
    assert repr(receipt) == f"AuditReceipt(seq=3, leaf={leaf!r})"
    with pytest.raises(dataclasses.FrozenInstanceError):
        receipt.seq = 4  # type: ignore[misc]
