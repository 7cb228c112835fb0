"""Hypothesis fuzzing of every parser that reads bytes from outside the node.

Each parser may answer with a value or with its *typed* error — a ``GatewayError``
subclass, or the module's documented ``ValueError`` subclass (``NoteError``) — and
nothing else: no ``KeyError``, ``TypeError``, ``UnicodeError`` or ``RecursionError``
leaking out of a corner. The strategies build inputs that get past the first checks
(signed tokens with any claims, QR and license JWS with any JSON inside, structured XML,
forms and JSON, export files with valid and broken lines), which plain random bytes
rarely do. Random-bytes fuzzing that helpers already wrote for their own parsers
(``tests/tokens``, ``tests/adapters``, ``tests/audit``) is not repeated here.
"""

from __future__ import annotations

import contextlib
import json
import string
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adapters import form_async_format, sharing_api_format, wire_time, xml_envelope_format
from adapters.wire_errors import MalformedMessage
from gateway.audit.entry import parse_entry
from gateway.audit.export import read_checkpoints
from gateway.audit.note import (
    NoteError,
    parse_add_checkpoint,
    parse_checkpoint_body,
    parse_note,
    parse_verifier_key,
)
from gateway.audit.verify import VerifyReport, verify_export
from gateway.encoding import b64u_encode, json_loads
from gateway.errors import AuthError, GatewayError, TokenMalformed, ValidationFailed
from gateway.licenses.checks import examine_license
from gateway.licenses.document import read_document
from gateway.licenses.license_jws import parse_license_jws
from gateway.licenses.qr import parse_qr
from gateway.licenses.strict_json import load_object
from gateway.licenses.trust import TrustStore
from gateway.tokens import KeyRegistry, RegisteredKey, SigningKey, verify_request_token
from gateway.tokens.mint import sign_jws

HOME, QUZHOU = "cn-360800", "cn-330800"
KEY = SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
REGISTRY = KeyRegistry([RegisteredKey(KEY.kid, QUZHOU, "ES256", KEY.private_key.public_key())])
NOW = 1_800_000_000
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON values of every kind, including the ones that trip naive code: huge and
# negative integers, floats, deep nesting, non-ASCII and control characters.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=12,
)


def seg(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False).encode()
    return b64u_encode(raw)


# ---------------------------------------------------------------- request tokens

claim_values = {
    "iss": st.sampled_from([QUZHOU, HOME, "", "cn-1"]) | json_values,
    "aud": st.sampled_from([HOME, QUZHOU]) | json_values,
    "iat": st.integers(NOW - 400, NOW + 400) | json_values,
    "exp": st.integers(NOW - 100, NOW + 700) | json_values,
    "jti": st.from_regex(r"[A-Za-z0-9_-]{10,70}", fullmatch=True) | json_values,
    "htm": st.sampled_from(["POST", "GET", "post"]) | json_values,
    "htu": st.sampled_from(["/v1/licenses/verify", "/v1/x"]) | json_values,
    "bdh": st.sampled_from(["47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"]) | json_values,
    "sub": json_values,
    "pur": st.text(max_size=250) | json_values,
}


@FUZZ
@given(
    claims=st.fixed_dictionaries({}, optional=claim_values),
    header_extra=st.dictionaries(
        st.sampled_from(["crit", "typ", "x5c", "jku", "b64"]), json_values
    ),
)
def test_signed_tokens_with_any_claims_give_a_token_or_an_auth_error(
    claims: dict[str, Any], header_extra: dict[str, Any]
) -> None:
    header = {"alg": "ES256", "typ": "tongban-req+jwt", "kid": KEY.kid, **header_extra}
    signing_input = f"{seg(header)}.{seg(claims)}"
    token = f"{signing_input}.{b64u_encode(sign_jws(KEY, signing_input.encode()))}"
    try:
        verified = verify_request_token(
            token, registry=REGISTRY, node_id=HOME, method="POST",
            path_qs="/v1/licenses/verify", body=b"", now=NOW,
        )  # fmt: skip
    except AuthError:
        return
    assert verified.iss == QUZHOU and verified.aud == HOME


@FUZZ
@given(header=json_values, claims=json_values, signature=st.binary(max_size=80))
def test_tokens_with_any_json_segments_give_an_auth_error(
    header: Any, claims: Any, signature: bytes
) -> None:
    token = f"{seg(header)}.{seg(claims)}.{b64u_encode(signature)}"
    with pytest.raises(AuthError):
        verify_request_token(
            token, registry=REGISTRY, node_id=HOME, method="POST", path_qs="/", body=b"",
            now=NOW,
        )  # fmt: skip


# ---------------------------------------------------------------- QR (亮证码) and licenses

qr_claims = st.fixed_dictionaries(
    {},
    optional={
        "iss": st.sampled_from([QUZHOU]) | json_values,
        "lid": st.sampled_from(["1.2.156.3005.2.1"]) | json_values,
        "ldh": json_values,
        "sco": st.lists(st.sampled_from(["holder.name", "number", "x y"]), max_size=60)
        | json_values,
        "iat": st.integers() | json_values,
        "exp": st.integers() | json_values,
        "jti": st.from_regex(r"[A-Za-z0-9_-]{4,70}", fullmatch=True) | json_values,
    },
)


@FUZZ
@given(
    header=st.fixed_dictionaries(
        {}, optional={"typ": st.just("tongban-qr+jwt") | json_values, "kid": json_values,
                      "alg": json_values},
    ),
    claims=qr_claims,
    prefix=st.sampled_from(["TB1:", "", " TB1:", "tb1:"]),
    signature=st.binary(max_size=70),
)  # fmt: skip
def test_qr_texts_give_a_token_or_validation_failed(
    header: dict[str, Any], claims: dict[str, Any], prefix: str, signature: bytes
) -> None:
    text = f"{prefix}{seg(header)}.{seg(claims)}.{b64u_encode(signature)}"
    for require_prefix in (True, False):
        try:
            token = parse_qr(text, require_prefix=require_prefix)
        except ValidationFailed:
            continue
        assert isinstance(token.sco, tuple) and token.jws in text


@FUZZ
@given(st.one_of(st.text(max_size=200), json_values, st.binary(max_size=50)))
def test_any_value_as_a_qr_gives_validation_failed(value: Any) -> None:
    with pytest.raises(ValidationFailed):
        parse_qr(value)


_TRUST = TrustStore([])

document_fields = {
    "identifier": json_values,
    "type_code": json_values,
    "type_name": json_values,
    "number": json_values,
    "holder": st.fixed_dictionaries(
        {}, optional={"name": json_values, "id_type": st.sampled_from(["111", "001"]) | json_values,
                      "id": json_values},
    ) | json_values,
    "issuer": st.fixed_dictionaries({}, optional={"name": json_values, "code": json_values})
    | json_values,
    "area_code": st.sampled_from(["360800"]) | json_values,
    "issued_on": st.sampled_from(["2024-02-29", "2023-02-29"]) | json_values,
    "valid_from": st.sampled_from(["2024-01-01"]) | json_values,
    "valid_until": st.none() | json_values,
    "data": st.dictionaries(st.text(max_size=8), json_values, max_size=3) | json_values,
}  # fmt: skip


@FUZZ
@given(
    document=st.fixed_dictionaries({}, optional=document_fields) | json_values,
    header=st.fixed_dictionaries(
        {}, optional={"alg": json_values, "typ": json_values,
                      "x5c": st.lists(st.binary(max_size=40).map(
                          lambda b: __import__("base64").b64encode(b).decode()), max_size=6)
                      | json_values},
    ),
    signature=st.binary(max_size=70),
)  # fmt: skip
def test_license_jws_with_any_content_gives_a_verdict_or_validation_failed(
    document: Any, header: dict[str, Any], signature: bytes
) -> None:
    import datetime as dt

    text = f"{seg(header)}.{seg(document)}.{b64u_encode(signature)}"
    try:
        jws = parse_license_jws(text)
    except ValidationFailed:
        return
    # The offline checks never raise: every problem is a failed check row.
    exam = examine_license(jws, _TRUST, today=dt.date(2026, 11, 23))
    assert not exam.authentic
    assert {row.result for row in exam.checks} <= {"pass", "fail", "unknown"}
    with contextlib.suppress(ValidationFailed):
        read_document(document)


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_strict_json_gives_an_object_or_its_value_error(raw: bytes) -> None:
    try:
        assert isinstance(load_object(raw), dict)
    except ValueError as exc:
        assert type(exc) is ValueError  # the documented error, nothing more exotic


# ---------------------------------------------------------------- adapter parsers

xml_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
xml_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\ufffe\uffff"), max_size=20
)


def _xml(tree: Any) -> str:
    if isinstance(tree, str):
        return tree.replace("&", "&amp;").replace("<", "&lt;")
    tag, children = tree
    return f"<{tag}>" + "".join(_xml(c) for c in children) + f"</{tag}>"


xml_trees = st.recursive(
    xml_text,
    lambda inner: st.tuples(
        st.sampled_from(["PACKAGE", "HEAD", "BODY", "RECORD", "CODE", "MSG", "DATA", "FIELD",
                         "SENDER", "RECEIVER", "BUSINESS_CLASS", "SEND_TIME", "VALUE", "LIST"])
        | xml_names,
        st.lists(inner, max_size=4),
    ),
    max_leaves=20,
)  # fmt: skip


@FUZZ
@given(
    tree=xml_trees,
    declaration=st.sampled_from(
        ['<?xml version="1.0" encoding="GB18030"?>', '<?xml version="1.0"?>', ""]
    ),
    charset=st.sampled_from([None, "GB18030", "UTF-8", "latin-1", "x-unknown"]),
)
def test_structured_xml_gives_an_envelope_or_malformed_message(
    tree: Any, declaration: str, charset: str | None
) -> None:
    text = declaration + _xml(tree)
    for encoding in ("gb18030", "utf-8"):
        try:
            body = text.encode(encoding)
        except UnicodeEncodeError:
            continue
        with contextlib.suppress(MalformedMessage):
            xml_envelope_format.decode_envelope(body, charset)


form_keys = st.sampled_from(["sign", "appid", "timestamp", "nonce", "data", "lsjl", "code", "msg",
                             "ywlsh", "blzt", "result"]) | st.text(max_size=6)  # fmt: skip


@FUZZ
@given(
    pairs=st.lists(
        st.tuples(form_keys, st.text(max_size=20) | json_values.map(json.dumps)), max_size=8
    ),
    junk=st.sampled_from(["", "&", "=", "&&=", "%", "%zz", "+", "%E4%B8"]),
)
def test_structured_forms_give_params_or_malformed_message(
    pairs: list[tuple[str, str]], junk: str
) -> None:
    from urllib.parse import quote

    body = ("&".join(f"{quote(k)}={quote(v)}" for k, v in pairs) + junk).encode()
    for parse in (form_async_format.decode_form, form_async_format.decode_reply):
        try:
            parsed = parse(body)
        except MalformedMessage:
            continue
        assert isinstance(parsed, dict)
    try:
        params = form_async_format.decode_form(body)
    except MalformedMessage:
        return
    for name in ("data", "lsjl"):
        with contextlib.suppress(MalformedMessage):
            form_async_format.json_field(params, name)


@FUZZ
@given(
    answer=st.fixed_dictionaries(
        {}, optional={"code": json_values, "msg": json_values, "data": json_values,
                      "timestamp": json_values},
    ) | json_values,
)  # fmt: skip
def test_structured_sharing_api_answers_give_a_value_or_malformed_message(answer: Any) -> None:
    body = json.dumps(answer, ensure_ascii=False).encode()
    try:
        code, data = sharing_api_format.decode_answer(body)
    except MalformedMessage:
        return
    assert isinstance(code, int) and isinstance(data, dict)


@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(["X-App-Id", "X-Timestamp", "X-Nonce", "X-Signature", "X-Body-Digest"])
        | st.text(max_size=8),
        st.text(max_size=60),
        max_size=6,
    )
)
def test_signed_headers_give_a_value_or_a_typed_error(headers: dict[str, str]) -> None:
    with contextlib.suppress(GatewayError):
        sharing_api_format.read_signed_headers(headers)


@FUZZ
@given(json_values | st.text(max_size=40))
def test_wire_times_give_a_datetime_or_malformed_message(value: Any) -> None:
    for parse in (
        wire_time.parse_rfc3339,
        wire_time.from_compact_beijing,
        wire_time.from_dashed_beijing,
        wire_time.from_epoch_ms,
    ):
        with contextlib.suppress(MalformedMessage):
            parse(value)


# ---------------------------------------------------------------- audit export reader

_ENTRY = (
    b'{"actor":{"id":"cn-330800","sub":null,"type":"partner"},"code":null,"commit":null,'
    b'"event":"license.verify","meta":{},"node":"cn-360800","outcome":"ok",'
    b'"prev":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","request":null,"response":null,'
    b'"seq":0,"subject":null,"ts":"2026-11-22T23:59:01.123456Z","v":1}'
)


@FUZZ
@given(data=st.data())
def test_mutated_entries_parse_or_raise_entry_invalid(data: st.DataObject) -> None:
    body = bytearray(_ENTRY)
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.sampled_from(b'{}[]",:0123456789aeflnrstu\\\x00\xff '))
    try:
        entry = parse_entry(bytes(body))
    except GatewayError as exc:
        assert exc.code == "entry_invalid"
        return
    # A mutation may still be a well-formed entry (another node id, say); then it must
    # give back exactly its bytes, as every stored entry does.
    assert entry.to_bytes() == bytes(body)


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_notes_parse_or_raise_note_error(raw: bytes) -> None:
    for parse in (parse_note, parse_checkpoint_body, parse_add_checkpoint):
        with contextlib.suppress(NoteError):
            parse(raw)
    with contextlib.suppress(NoteError):
        parse_verifier_key(raw.decode("utf-8", "replace"))


line_parts = st.sampled_from(
    [_ENTRY, b"", b"{}", b"not json", _ENTRY.replace(b'"seq":0', b'"seq":1'), b"\xff\xfe",
     _ENTRY + b" ", b'{"seq":0,"prev":"x"}', b"9" * 50]
)  # fmt: skip
note_parts = st.sampled_from(
    [b"tongban/cn-360800/audit\n1\nAAAA\n\n\xe2\x80\x94 x AAAA\n", b"\n", b"\n\n", b"x\n",
     b"tongban/cn-360800/audit\n1\n" + b"A" * 44 + b"\n\n", b"\xe2\x80\x94 \n"]
)  # fmt: skip


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(line_parts | st.binary(max_size=60), max_size=6),
    notes=st.lists(note_parts | st.binary(max_size=60), max_size=4),
    vkey=st.sampled_from(["tongban/cn-360800/audit+0a1b2c3d+AQ" + "A" * 43, "garbage", ""]),
)
def test_export_directories_give_a_report_or_a_typed_error(
    tmp_path: Path, lines: list[bytes], notes: list[bytes], vkey: str
) -> None:
    assume(all(b"\n" not in line for line in lines))
    out = tmp_path / "export"
    out.mkdir(exist_ok=True)
    (out / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    (out / "checkpoints").write_bytes(b"".join(notes))
    (out / "log.vkey").write_text(vkey + "\n", encoding="utf-8")
    for note in read_checkpoints(out / "checkpoints"):
        assert isinstance(note, bytes)
    try:
        report = verify_export(out, workers=1)
    except GatewayError:
        return
    assert isinstance(report, VerifyReport)
    if lines:
        assert not report.ok or report.entries == len(lines)


def test_the_strategies_reach_past_the_first_checks() -> None:
    """Guard against a fuzz suite that only ever exercises the first refusal."""
    text = string.ascii_letters
    assert parse_qr(
        "TB1:" + seg({"typ": "tongban-qr+jwt", "kid": "k", "alg": "ES256"}) + "."
        + seg({"iss": QUZHOU, "lid": "1", "ldh": "x", "sco": ["number"], "iat": 1, "exp": 2,
               "jti": text[:16]}) + "." + b64u_encode(b"s")
    ).iss == QUZHOU  # fmt: skip
    assert sharing_api_format.decode_answer(b'{"code":0,"data":{}}')[0] == 0


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested_json_is_a_value_error(opener: bytes) -> None:
    with pytest.raises(ValueError):
        load_object(opener * 100_000)
    with pytest.raises(ValueError):
        json_loads(opener * 100_000)


def test_deeply_nested_token_header_is_token_malformed() -> None:
    token = b64u_encode(b"[" * 3000) + "." + b64u_encode(b"{}") + "." + b64u_encode(bytes(64))
    with pytest.raises(TokenMalformed):
        verify_request_token(
            token, registry=KeyRegistry(), node_id="cn-360800", method="GET", path_qs="/", body=b""
        )
