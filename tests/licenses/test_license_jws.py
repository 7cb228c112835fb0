"""The signed license format (SPEC 4.3): compact JWS, x5c, canonical payload, digest."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.encoding import b64u_decode, b64u_encode, canonical_json
from gateway.errors import ValidationFailed
from gateway.licenses.license_jws import MAX_LICENSE_CHARS, parse_license_jws, sign_license
from tests.licenses.factory import document, new_pki


def test_a_signed_license_is_the_spec_jws() -> None:
    issuer = new_pki().issuer()
    doc = document()
    out = sign_license(issuer, doc)
    header_b64, payload_b64, sig_b64 = out.jws.split(".")
    header = json.loads(b64u_decode(header_b64))
    assert header["alg"] == "ES256"
    assert header["typ"] == "tongban-license+jwt"
    # x5c is standard base64 DER (RFC 7515 4.1.6), leaf first
    assert header["x5c"] == [base64.b64encode(issuer.chain[0].public_bytes(Encoding.DER)).decode()]
    payload = b64u_decode(payload_b64)
    assert payload == canonical_json(doc)
    assert out.digest == b64u_encode(hashlib.sha256(payload).digest())
    assert len(b64u_decode(sig_b64)) == 64  # raw r || s, not DER
    assert out.identifier == doc["identifier"]
    parsed = parse_license_jws(out.jws)
    assert parsed.digest == out.digest
    assert parsed.x5c()[0] == issuer.chain[0].public_bytes(Encoding.DER)


DUPLICATE = b64u_encode(b'{"a":1,"a":2}')


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (42, "must be a string"),
        ("", "not a compact JWS"),
        ("a.b", "not a compact JWS"),
        ("a.b.c.d", "not a compact JWS"),
        ("a$.b.c", "not a compact JWS"),
        (f"{b64u_encode(b'not json')}.e30.", "not a compact JWS (not JSON"),
        (f"{b64u_encode(b'[1]')}.e30.", "not a JSON object"),
        (f"{DUPLICATE}.e30.", "duplicate member"),
        ("x" * (MAX_LICENSE_CHARS + 1), "longer than"),
    ],
)
def test_what_is_not_a_jws_is_a_validation_error_naming_the_field(
    text: object, reason: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_license_jws(text, field="license")
    assert caught.value.code == "validation_failed"
    assert reason in caught.value.fields["license"]
