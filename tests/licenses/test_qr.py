"""The 亮证码 (SPEC 4.4): claims, lifetime, single text that fits a version 15 QR code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import segno
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.config import DEMO_NODE_IDS, demo_config_path, load_node_config
from gateway.encoding import b64u_decode, b64u_encode
from gateway.errors import ValidationFailed
from gateway.licenses.license_jws import es256_verify
from gateway.licenses.qr import (
    MAX_QR_VERSION,
    mint_qr,
    parse_qr,
    qr_version,
    write_qr_png,
)
from gateway.licenses.samples import sample_licenses
from gateway.tokens.mint import SigningKey

KEY = SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
LDH = b64u_encode(bytes(32))
LID = "1.2.156.3005.2.11100000MB0341032Y001.113308000026472540.2430599.001.E"


def test_a_qr_token_carries_the_spec_claims_and_verifies() -> None:
    text = mint_qr(KEY, iss="cn-330800", lid=LID, ldh=LDH, sco=["*"], now=1_800_000_000)
    assert text.startswith("TB1:")
    header_b64, claims_b64, _ = text[4:].split(".")
    header = json.loads(b64u_decode(header_b64))
    claims = json.loads(b64u_decode(claims_b64))
    assert header == {"alg": "ES256", "typ": "tongban-qr+jwt", "kid": KEY.kid}
    assert set(claims) == {"iss", "lid", "ldh", "sco", "iat", "exp", "jti"}
    assert claims["exp"] - claims["iat"] == 120
    token = parse_qr(text)
    assert (token.iss, token.lid, token.ldh, token.sco) == ("cn-330800", LID, LDH, ("*",))
    public = KEY.private_key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    es256_verify(public, token.signing_input, token.signature)


@pytest.mark.parametrize("lifetime", [0, 181, -5])
def test_lifetime_is_at_most_180_seconds(lifetime: int) -> None:
    with pytest.raises(ValueError, match="180"):
        mint_qr(KEY, iss="cn-330800", lid=LID, ldh=LDH, sco=["*"], lifetime=lifetime)


@pytest.mark.parametrize("length", [17, 18, 230, 231, 458, 459, 520, 521, 587])
def test_the_version_formula_agrees_with_segno(length: int) -> None:
    text = "TB1:" + "x" * (length - 4)
    assert qr_version(text) == segno.make(text, error="l", boost_error=False, micro=False).version


@pytest.mark.parametrize("node_id", DEMO_NODE_IDS)
def test_every_demo_license_fits_a_version_15_qr_code(node_id: str) -> None:
    cfg = load_node_config(demo_config_path(node_id), require_keys=False)
    texts = [
        mint_qr(KEY, iss=node_id, lid=sample.document["identifier"], ldh=LDH, sco=sco)
        for sample in sample_licenses(cfg)
        for sco in (["*"], ["holder", "data"], ["holder.name"])
    ]
    longest = max(texts, key=len)
    assert segno.make(longest, error="l").version <= MAX_QR_VERSION


def test_a_text_too_long_for_version_15_is_refused_before_it_is_printed() -> None:
    many = [f"data.field_number_{i}" for i in range(6)]
    with pytest.raises(ValueError, match=r"version 1[6-9]"):
        mint_qr(KEY, iss="cn-330800", lid=LID, ldh=LDH, sco=many)


def test_the_png_is_a_real_png_of_the_qr_code(tmp_path: Path) -> None:
    text = mint_qr(KEY, iss="cn-330800", lid=LID, ldh=LDH, sco=["*"])
    out = tmp_path / "qr.png"
    write_qr_png(text, out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(data[16:20], "big")
    modules = 17 + 4 * qr_version(text)
    assert width == (modules + 8) * 4  # scale 4, quiet zone of 4 modules each side


def _segment(value: object) -> str:
    return b64u_encode(json.dumps(value).encode())


GOOD_HEADER = _segment({"alg": "ES256", "typ": "tongban-qr+jwt", "kid": "k"})
GOOD_CLAIMS = {
    "iss": "n",
    "lid": LID,
    "ldh": LDH,
    "sco": ["*"],
    "iat": 1,
    "exp": 2,
    "jti": "a" * 12,
}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "must be a string"),
        ("eyJ.eyJ.sig", "must start with TB1:"),
        ("TB1:not-a-jws", "not a compact JWS"),
        ("TB1:" + "a" * 2000, "longer than"),
        (f"TB1:{_segment({'alg': 'ES256', 'typ': 'JWT', 'kid': 'k'})}.{_segment(GOOD_CLAIMS)}.AA",
         "typ must be tongban-qr+jwt"),
        (f"TB1:{_segment({'typ': 'tongban-qr+jwt'})}.{_segment(GOOD_CLAIMS)}.AA", "kid and alg"),
        (f"TB1:{GOOD_HEADER}.{_segment({**GOOD_CLAIMS, 'sco': []})}.AA", "claim sco"),
        (f"TB1:{GOOD_HEADER}.{_segment({**GOOD_CLAIMS, 'sco': ['x;y']})}.AA", "claim sco"),
        (f"TB1:{GOOD_HEADER}.{_segment({**GOOD_CLAIMS, 'jti': 'short'})}.AA", "claim jti"),
        (f"TB1:{GOOD_HEADER}.{_segment({**GOOD_CLAIMS, 'exp': '2'})}.AA", "claim exp"),
        (f"TB1:{GOOD_HEADER}.{_segment({**GOOD_CLAIMS, 'iss': None})}.AA", "claim iss"),
        (f"TB1:{GOOD_HEADER}.{b64u_encode(b'[]')}.AA", "not a JSON object"),
    ],
)  # fmt: skip
def test_what_is_not_a_qr_token_is_a_validation_error(text: object, reason: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_qr(text)
    assert caught.value.code == "validation_failed"
    assert reason in caught.value.fields["qr"]


def test_between_nodes_the_prefix_is_optional_and_scanner_whitespace_is_dropped() -> None:
    text = mint_qr(KEY, iss="cn-330800", lid=LID, ldh=LDH, sco=["holder"])
    assert parse_qr(text[4:], require_prefix=False).sco == ("holder",)
    assert parse_qr(f"  {text}\r\n").lid == LID
