"""Request-token minting and verification (SPEC 2): one row per way a token is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given
from hypothesis import strategies as st

from gateway.encoding import EMPTY_SHA256_B64U, b64u_decode, b64u_encode, sha256_b64u
from gateway.errors import (
    AuthError,
    PartnerUnknown,
    TokenAlgorithm,
    TokenAudience,
    TokenBinding,
    TokenClaims,
    TokenExpired,
    TokenLifetime,
    TokenMalformed,
    TokenMissing,
    TokenNotYetValid,
    TokenSignature,
)
from gateway.tokens import (
    KeyRegistry,
    RegisteredKey,
    SigningKey,
    alg_for_key,
    jwk_thumbprint,
    mint_request_token,
    public_jwk,
    verify_request_token,
)
from gateway.tokens.mint import sign_jws

NOW = 1_700_000_000
HOME = "cn-360800"  # the receiving node
QUZHOU = "cn-330800"  # signs with ES256
LONGYAN = "cn-350800"  # signs with EdDSA
METHOD = "POST"
PATH_QS = "/v1/licenses/verify?lang=zh&x=%2F"
BODY = b'{"license_id":"x"}'

ES_KEY = SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
ED_KEY = SigningKey.from_private_key(ed25519.Ed25519PrivateKey.generate())
STRANGER = SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))  # unregistered

REGISTRY = KeyRegistry(
    [
        RegisteredKey(ES_KEY.kid, QUZHOU, "ES256", ES_KEY.private_key.public_key()),
        RegisteredKey(ED_KEY.kid, LONGYAN, "EdDSA", ED_KEY.private_key.public_key()),
    ]
)

DROP = object()
"""Marks a member to leave out of a header or claims set."""


def _segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return b64u_encode(raw)


def _header(key: SigningKey = ES_KEY, **changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": key.alg, "typ": "tongban-req+jwt", "kid": key.kid}
    return _apply(header, changes)


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": QUZHOU,
        "aud": HOME,
        "iat": NOW,
        "exp": NOW + 60,
        "jti": "jti-0123456789abcdef",
        "htm": METHOD,
        "htu": PATH_QS,
        "bdh": sha256_b64u(BODY),
    }
    return _apply(claims, changes)


def _apply(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for name, value in changes.items():
        if value is DROP:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def _signed(header: Any = None, claims: Any = None, key: SigningKey = ES_KEY) -> str:
    """A token whose header and claims are exactly as given, validly signed by ``key``."""
    signing_input = f"{_segment(header or _header(key))}.{_segment(claims or _claims())}"
    return f"{signing_input}.{b64u_encode(sign_jws(key, signing_input.encode()))}"


def _resigned(token: str, signature: bytes) -> str:
    return token.rsplit(".", 1)[0] + "." + b64u_encode(signature)


def _der_signature(token: str) -> bytes:
    assert isinstance(ES_KEY.private_key, ec.EllipticCurvePrivateKey)
    return ES_KEY.private_key.sign(token.rsplit(".", 1)[0].encode(), ec.ECDSA(hashes.SHA256()))


def _hs256_with_public_key() -> str:
    """The classic confusion attack: HMAC keyed with the verifier's public key bytes."""
    pem = ES_KEY.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_segment(_header(alg='HS256'))}.{_segment(_claims())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64u_encode(mac)}"


def _flip_last_signature_bit(token: str) -> str:
    head, _, sig = token.rpartition(".")
    raw = bytearray(b64u_decode(sig))
    raw[-1] ^= 1
    return f"{head}.{b64u_encode(bytes(raw))}"


def _noncanonical(index: int) -> str:
    """A valid token with an unused low bit set in the last character of one segment."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for n in range(3):  # pad until the segment's length leaves unused bits
        pad = "x" * n
        parts = _signed(_header(p=pad), _claims(p=pad)).split(".")
        segment = parts[index]
        if len(segment) % 4 in (2, 3):
            break
    parts[index] = segment[:-1] + alphabet[alphabet.index(segment[-1]) + 1]
    assert b64u_decode(parts[index]) == b64u_decode(segment)
    return ".".join(parts)


VALID = _signed()
NOT_UTF8 = b"\xff\xfe"


@dataclass(frozen=True)
class Case:
    id: str
    token: str | None
    error: type[AuthError]
    request: dict[str, Any] = field(default_factory=dict)


CASES = [
    # token_missing
    Case("none", None, TokenMissing),
    Case("empty", "", TokenMissing),
    # token_malformed
    Case("garbage", "not a token at all", TokenMalformed),
    Case("two parts", "eyJhIjoxfQ.eyJhIjoxfQ", TokenMalformed),
    Case("four parts", VALID + ".AAAA", TokenMalformed),
    Case("padding", VALID.replace(".", "=.", 1), TokenMalformed),
    Case("base64 not url", VALID[:-2] + "+/", TokenMalformed),
    Case("non-ascii", "é" + VALID, TokenMalformed),
    Case("whitespace", " " + VALID, TokenMalformed),
    Case("oversized", _signed(claims=_claims(pad="x" * 8192)), TokenMalformed),
    Case("header not json", f"{_segment(b'{alg')}.{VALID.split('.', 1)[1]}", TokenMalformed),
    Case("header not object", f"{_segment([1])}.{VALID.split('.', 1)[1]}", TokenMalformed),
    Case("header not utf-8", f"{_segment(NOT_UTF8)}.{VALID.split('.', 1)[1]}", TokenMalformed),
    Case("header non-canonical base64", _noncanonical(0), TokenMalformed),
    Case("claims non-canonical base64", _noncanonical(1), TokenMalformed),
    Case("signature non-canonical base64", _noncanonical(2), TokenMalformed),
    Case("typ JWT", _signed(_header(typ="JWT")), TokenMalformed),
    Case("typ missing", _signed(_header(typ=DROP)), TokenMalformed),
    Case("typ case", _signed(_header(typ="Tongban-Req+JWT")), TokenMalformed),
    Case("crit", _signed(_header(crit=["exp"], exp=1)), TokenMalformed),
    Case(
        "duplicate header member",
        _signed(b'{"alg":"ES256","typ":"x","typ":"tongban-req+jwt"}'),
        TokenMalformed,
    ),
    Case("claims not json", _signed(claims=b"{nope"), TokenMalformed),
    Case("claims not object", _signed(claims=["iss"]), TokenMalformed),
    Case("claims NaN", _signed(claims=b'{"iat": NaN}'), TokenMalformed),
    Case(
        "duplicate claim",
        _signed(claims=json.dumps(_claims()).replace('"aud"', '"aud": "x", "aud"').encode()),
        TokenMalformed,
    ),
    # partner_unknown
    Case("unknown kid", _signed(_header(STRANGER), key=STRANGER), PartnerUnknown),
    Case("kid missing", _signed(_header(kid=DROP)), PartnerUnknown),
    Case("kid not a string", _signed(_header(kid=7)), PartnerUnknown),
    Case("iss not owner of kid", _signed(_header(ED_KEY), key=ED_KEY), PartnerUnknown),
    Case("iss unknown", _signed(claims=_claims(iss="cn-999999")), PartnerUnknown),
    # token_algorithm: decided by the registered key, never the header
    Case("alg none", f"{_segment(_header(alg='none'))}.{_segment(_claims())}.", TokenAlgorithm),
    Case("alg None case", _signed(_header(alg="None")), TokenAlgorithm),
    Case("alg missing", _signed(_header(alg=DROP)), TokenAlgorithm),
    Case("alg HS256 with public key", _hs256_with_public_key(), TokenAlgorithm),
    Case("alg ES384", _signed(_header(alg="ES384")), TokenAlgorithm),
    Case("alg EdDSA for an ES256 key", _signed(_header(alg="EdDSA")), TokenAlgorithm),
    Case("alg ES256 for an EdDSA key", _signed(_header(ED_KEY, alg="ES256")), TokenAlgorithm),
    Case("alg list", _signed(_header(alg=["ES256"])), TokenAlgorithm),
    # token_signature
    Case("bit flipped", _flip_last_signature_bit(VALID), TokenSignature),
    Case("DER signature", _resigned(VALID, _der_signature(VALID)), TokenSignature),
    Case(
        "63-byte signature", _resigned(VALID, b64u_decode(VALID.split(".")[2])[:63]), TokenSignature
    ),
    Case("empty signature", VALID.rsplit(".", 1)[0] + ".", TokenSignature),
    Case("zero signature", _resigned(VALID, bytes(64)), TokenSignature),
    Case("signed by another key", _signed(_header(ES_KEY), key=STRANGER), TokenSignature),
    # Quzhou signs with its own key but names Longyan's kid (and its alg).
    Case("kid of another partner", _signed(_header(ED_KEY), key=ES_KEY), TokenSignature),
    Case(
        "kid and iss of another partner",
        _signed(_header(ED_KEY), _claims(iss=LONGYAN), key=ES_KEY),
        TokenSignature,
    ),
    Case(
        "payload swapped",
        VALID.split(".")[0] + "." + _segment(_claims(aud="cn-330800")) + "." + VALID.split(".")[2],
        TokenSignature,
    ),
    # token_claims: each required claim missing ...
    *(
        Case(f"{name} missing", _signed(claims=_claims(**{name: DROP})), TokenClaims)
        for name in ("iss", "aud", "iat", "exp", "jti", "htm", "htu", "bdh")
    ),
    # ... or of the wrong form
    Case("aud list", _signed(claims=_claims(aud=[HOME])), TokenClaims),
    Case("iss number", _signed(claims=_claims(iss=330800)), TokenClaims),
    Case("iat bool", _signed(claims=_claims(iat=True)), TokenClaims),
    Case("iat float", _signed(claims=_claims(iat=NOW + 0.5)), TokenClaims),
    Case("exp string", _signed(claims=_claims(exp=str(NOW + 60))), TokenClaims),
    Case("exp null", _signed(claims=_claims(exp=None)), TokenClaims),
    Case("jti 15 chars", _signed(claims=_claims(jti="a" * 15)), TokenClaims),
    Case("jti 65 chars", _signed(claims=_claims(jti="a" * 65)), TokenClaims),
    Case("jti with dot", _signed(claims=_claims(jti="abcdefgh.ijklmnop")), TokenClaims),
    Case("jti with newline", _signed(claims=_claims(jti="abcdefghijklmnop\n")), TokenClaims),
    Case("jti number", _signed(claims=_claims(jti=12345678901234567)), TokenClaims),
    Case("htm number", _signed(claims=_claims(htm=1)), TokenClaims),
    Case("htu null", _signed(claims=_claims(htu=None)), TokenClaims),
    Case("bdh 42 chars", _signed(claims=_claims(bdh=sha256_b64u(BODY)[:42])), TokenClaims),
    Case("bdh padded", _signed(claims=_claims(bdh=sha256_b64u(BODY) + "=")), TokenClaims),
    Case("bdh hex", _signed(claims=_claims(bdh=hashlib.sha256(BODY).hexdigest())), TokenClaims),
    Case("sub number", _signed(claims=_claims(sub=42)), TokenClaims),
    Case("sub null", _signed(claims=_claims(sub=None)), TokenClaims),
    Case("pur 201 chars", _signed(claims=_claims(pur="办" * 201)), TokenClaims),
    Case("pur object", _signed(claims=_claims(pur={"zh": "x"})), TokenClaims),
    Case("pur lone surrogate", _signed(claims=_claims(pur="\ud800")), TokenClaims),
    # token_lifetime
    Case("lifetime 301", _signed(claims=_claims(exp=NOW + 301)), TokenLifetime),
    Case("exp before iat", _signed(claims=_claims(exp=NOW - 1)), TokenLifetime),
    # token_expired / token_not_yet_valid (30 s leeway)
    Case(
        "expired",
        _signed(claims=_claims(iat=NOW - 100, exp=NOW - 31)),
        TokenExpired,
    ),
    Case("iat in future", _signed(claims=_claims(iat=NOW + 31, exp=NOW + 90)), TokenNotYetValid),
    # token_audience
    Case("aud other node", _signed(claims=_claims(aud="cn-330800")), TokenAudience),
    Case("aud empty", _signed(claims=_claims(aud="")), TokenAudience),
    # token_binding
    Case("method changed", VALID, TokenBinding, {"method": "PUT"}),
    Case("method case", _signed(claims=_claims(htm="post")), TokenBinding),
    Case("path changed", VALID, TokenBinding, {"path_qs": "/v1/licenses/fetch?lang=zh&x=%2F"}),
    Case("query changed", VALID, TokenBinding, {"path_qs": "/v1/licenses/verify?lang=en&x=%2F"}),
    Case("query re-encoded", VALID, TokenBinding, {"path_qs": "/v1/licenses/verify?lang=zh&x=/"}),
    Case("query dropped", VALID, TokenBinding, {"path_qs": "/v1/licenses/verify"}),
    Case("body changed", VALID, TokenBinding, {"body": BODY + b" "}),
    Case("body dropped", VALID, TokenBinding, {"body": b""}),
]


def _verify(token: str | None, **request: Any) -> Any:
    args: dict[str, Any] = {"method": METHOD, "path_qs": PATH_QS, "body": BODY, "now": NOW}
    args.update(request)
    return verify_request_token(token, registry=REGISTRY, node_id=HOME, **args)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_with_exact_code(case: Case) -> None:
    with pytest.raises(AuthError) as caught:
        _verify(case.token, **case.request)
    assert type(caught.value) is case.error, caught.value
    assert caught.value.code == case.error.code
    assert caught.value.status == 401
    # The detail names the problem, never token content.
    for part in (case.token or "").split("."):
        if len(part) >= 8:
            assert part not in caught.value.detail
    assert "jti-0123456789abcdef" not in caught.value.detail


def test_every_auth_code_but_replay_is_covered() -> None:
    assert {c.error.code for c in CASES} == {
        "token_missing",
        "token_malformed",
        "partner_unknown",
        "token_algorithm",
        "token_signature",
        "token_claims",
        "token_lifetime",
        "token_expired",
        "token_not_yet_valid",
        "token_audience",
        "token_binding",
    }


def test_oversized_is_refused_before_parsing() -> None:
    token = "a" * 8193
    with pytest.raises(TokenMalformed, match="longer than 8192"):
        _verify(token)


@pytest.mark.parametrize("key", [ES_KEY, ED_KEY], ids=["ES256", "EdDSA"])
def test_minted_token_verifies(key: SigningKey) -> None:
    partner = REGISTRY[key.kid].partner
    token = mint_request_token(
        key,
        iss=partner,
        aud=HOME,
        method=METHOD,
        path_qs=PATH_QS,
        body=BODY,
        sub="窗口-017",
        pur="异地办理营业执照变更",
        lifetime=300,
        now=NOW,
    )
    verified = _verify(token)
    assert verified.iss == partner
    assert verified.aud == HOME
    assert verified.kid == key.kid
    assert (verified.iat, verified.exp) == (NOW, NOW + 300)
    assert verified.replay_expires_at == NOW + 300 + 30
    assert verified.sub == "窗口-017"
    assert verified.pur == "异地办理营业执照变更"
    assert len(verified.jti) >= 22


def test_empty_body_binds_to_empty_digest() -> None:
    token = mint_request_token(
        ES_KEY, iss=QUZHOU, aud=HOME, method="GET", path_qs="/v1/x", body=b"", now=NOW
    )
    claims = json.loads(b64u_decode(token.split(".")[1]))
    assert claims["bdh"] == EMPTY_SHA256_B64U
    assert _verify(token, method="GET", path_qs="/v1/x", body=b"").sub is None


@pytest.mark.parametrize(
    ("now", "ok"),
    [
        (NOW + 60 + 30, True),  # exactly at exp + leeway
        (NOW + 60 + 30.5, False),
        (NOW - 30, True),  # iat exactly at now + leeway
        (NOW - 30.5, False),
    ],
)
def test_leeway_boundaries(now: float, ok: bool) -> None:
    if ok:
        _verify(VALID, now=now)
    else:
        with pytest.raises((TokenExpired, TokenNotYetValid)):
            _verify(VALID, now=now)


def test_lifetime_of_exactly_300_is_accepted() -> None:
    _verify(_signed(claims=_claims(exp=NOW + 300)))


def test_unknown_claims_are_ignored() -> None:
    assert _verify(_signed(claims=_claims(nbf=NOW, extra={"a": 1}))).jti == "jti-0123456789abcdef"


def test_pyjwt_tokens_verify_here_and_ours_verify_with_pyjwt() -> None:
    """Interop with an independent JOSE implementation, in both directions."""
    for key in (ES_KEY, ED_KEY):
        partner = REGISTRY[key.kid].partner
        theirs = jwt.encode(
            _claims(iss=partner),
            key.private_key,
            algorithm=key.alg,
            headers={"typ": "tongban-req+jwt", "kid": key.kid},
        )
        assert _verify(theirs).iss == partner
        ours = mint_request_token(
            key, iss=partner, aud=HOME, method=METHOD, path_qs=PATH_QS, body=BODY, now=NOW
        )
        decoded = jwt.decode(
            ours,
            key.private_key.public_key(),
            algorithms=[key.alg],
            audience=HOME,
            options={"verify_exp": False, "verify_iat": False},
        )
        assert decoded["bdh"] == sha256_b64u(BODY)
        assert jwt.get_unverified_header(ours) == {
            "alg": key.alg,
            "typ": "tongban-req+jwt",
            "kid": key.kid,
        }


@given(st.text(max_size=300))
def test_arbitrary_text_is_refused_with_an_auth_error(text: str) -> None:
    with pytest.raises(AuthError):
        _verify(text)


@given(st.integers(min_value=0), st.characters(categories=["L", "N", "P"]))
def test_any_one_character_change_is_refused(position: int, char: str) -> None:
    index = position % len(VALID)
    mutated = VALID[:index] + char + VALID[index + 1 :]
    if mutated != VALID:
        with pytest.raises(AuthError):
            _verify(mutated)


# -- mint ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"lifetime": 0},
        {"lifetime": 301},
        {"jti": "short"},
        {"jti": "x" * 16 + "!"},
        {"pur": "p" * 201},
    ],
)
def test_mint_refuses_what_verify_would_refuse(changes: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "iss": QUZHOU,
        "aud": HOME,
        "method": "GET",
        "path_qs": "/",
        "body": b"",
    }
    with pytest.raises(ValueError):
        mint_request_token(ES_KEY, **(args | changes))


def test_minted_jtis_are_fresh() -> None:
    tokens = {
        _verify(
            mint_request_token(
                ES_KEY, iss=QUZHOU, aud=HOME, method=METHOD, path_qs=PATH_QS, body=BODY, now=NOW
            )
        ).jti
        for _ in range(50)
    }
    assert len(tokens) == 50


def test_es256_signature_is_raw_r_s() -> None:
    token = mint_request_token(
        ES_KEY, iss=QUZHOU, aud=HOME, method=METHOD, path_qs=PATH_QS, body=BODY, now=NOW
    )
    assert len(b64u_decode(token.split(".")[2])) == 64


# -- registry -----------------------------------------------------------------------


def test_rfc8037_ed25519_thumbprint() -> None:
    """RFC 8037 appendix A.3 known answer."""
    x = b64u_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
    key = ed25519.Ed25519PublicKey.from_public_bytes(x)
    assert jwk_thumbprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_es256_thumbprint_matches_pyjwt_jwk() -> None:
    public = ES_KEY.private_key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    members = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
    canonical = json.dumps(
        {k: members[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    assert jwk_thumbprint(public) == b64u_encode(hashlib.sha256(canonical.encode()).digest())
    assert ES_KEY.kid == jwk_thumbprint(public)


def test_public_jwk_has_use_sig() -> None:
    jwk = public_jwk(ED_KEY.private_key.public_key(), ED_KEY.kid, "EdDSA")
    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": jwk["x"],
        "kid": ED_KEY.kid,
        "alg": "EdDSA",
        "use": "sig",
    }
    with pytest.raises(ValueError):
        public_jwk(ED_KEY.private_key.public_key(), ED_KEY.kid, "ES256")


@pytest.mark.parametrize(
    ("alg", "public_key"),
    [
        ("ES256", ed25519.Ed25519PrivateKey.generate().public_key()),
        ("EdDSA", ec.generate_private_key(ec.SECP256R1()).public_key()),
        ("ES256", ec.generate_private_key(ec.SECP384R1()).public_key()),
        ("HS256", ec.generate_private_key(ec.SECP256R1()).public_key()),
    ],
)
def test_registered_key_must_fit_its_alg(alg: Any, public_key: Any) -> None:
    with pytest.raises(ValueError):
        RegisteredKey("k1", QUZHOU, alg, public_key)


def test_registry_refuses_a_kid_twice() -> None:
    public = ES_KEY.private_key.public_key()
    assert alg_for_key(public) == "ES256"
    with pytest.raises(ValueError, match="twice"):
        KeyRegistry([RegisteredKey("k", QUZHOU, "ES256", public)] * 2)
    assert REGISTRY.get("nope") is None
    assert REGISTRY.for_partner(LONGYAN) == (REGISTRY[ED_KEY.kid],)
