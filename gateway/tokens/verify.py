"""Verifying an inbound request token: every check of SPEC section 2 except replay.

The order is chosen so that nothing from the token is trusted before it is
authenticated, and the cheap refusals come first:

1. form of the compact JWS (size, three canonical base64url segments, header JSON,
   ``typ``, no ``crit``) -> ``token_missing`` / ``token_malformed``;
2. the key named by ``kid`` -> ``partner_unknown``; its *registered* algorithm must equal
   the header's ``alg`` -> ``token_algorithm`` (so ``none``, ``HS256`` and a missing
   ``alg`` are refused without any signature code running);
3. the signature with that key -> ``token_signature``;
4. only then the claims are parsed: form -> ``token_claims``, ``iss`` owns ``kid`` ->
   ``partner_unknown``, then lifetime, expiry, not-before, audience and the binding to
   this very request.

Replay (``jti`` once per issuer) is the caller's next, asynchronous step: see
``gateway.tokens.replay`` and ``VerifiedToken.replay_expires_at``.

Error details name the check that failed in plain words and never repeat token
content, so a refusal can be logged and shown to the partner as is.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from gateway.encoding import b64u_decode, sha256_b64u
from gateway.errors import (
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
from gateway.tokens.mint import JTI_PATTERN, MAX_LIFETIME, MAX_PURPOSE_CHARS, TOKEN_TYPE
from gateway.tokens.registry import KeyRegistry, RegisteredKey

MAX_TOKEN_BYTES = 8 * 1024
"""Longest compact token accepted (SPEC 2: oversized is ``token_malformed``)."""

CLOCK_LEEWAY = 30
"""Clock leeway in seconds (SPEC 2)."""

# One pass over the whole token proves "three unpadded base64url segments" and ASCII.
# ``gateway.encoding.b64u_decode`` alone would let stray characters through, because
# the standard library's decoder skips characters outside the alphabet.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_SHA256_B64U = re.compile(r"[A-Za-z0-9_-]{43}")
# Canonical last characters of a segment of length 2 or 3 mod 4 (unused low bits zero).
_LAST_OF_2 = frozenset("AQgw")
_LAST_OF_3 = frozenset("AEIMQUYcgkosw048")
_SIGNATURE_BYTES = 64  # ES256 (r || s, RFC 7518 3.4) and Ed25519 (RFC 8037) alike
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


@dataclass(frozen=True)
class VerifiedToken:
    """The claims of a token that passed every check but replay; ``iss`` is the partner."""

    iss: str
    aud: str
    sub: str | None
    pur: str | None
    jti: str
    iat: int
    exp: int
    kid: str
    replay_expires_at: int
    """Until when the ``jti`` must stay claimed: ``exp`` plus the leeway it was checked
    with, the last moment this token could still be accepted."""


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7515 4 / RFC 7519 4: duplicate member names must be rejected (or the last
    # taken); rejecting closes the door on parsers that disagree about which one wins.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_JSON = json.JSONDecoder(object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)


def _decode_segment(segment: str, what: str) -> bytes:
    """Base64url-decode one segment (alphabet already checked), refusing non-canonical forms.

    A last character with stray low bits decodes to the same bytes as the canonical
    one; refusing it keeps "one token, one spelling".
    """
    tail = len(segment) % 4
    if (tail == 2 and segment[-1] not in _LAST_OF_2) or (
        tail == 3 and segment[-1] not in _LAST_OF_3
    ):
        raise TokenMalformed(f"the token {what} is not canonical base64url")
    try:
        return b64u_decode(segment)
    except ValueError:  # length 1 mod 4
        raise TokenMalformed(f"the token {what} is not base64url") from None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse one decoded segment; anything but a UTF-8 JSON object is ``token_malformed``."""
    try:
        value = _JSON.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UTF-8, JSON and too-deep nesting alike
        raise TokenMalformed(f"the token {what} is not UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise TokenMalformed(f"the token {what} is not a JSON object")
    return value


def _check_signature(key: RegisteredKey, signing_input: bytes, signature: bytes) -> None:
    if len(signature) != _SIGNATURE_BYTES:
        # DER-encoded ECDSA (70-72 bytes) lands here too: JWS wants raw r || s.
        raise TokenSignature(f"the {key.alg} signature must be 64 bytes")
    try:
        if isinstance(key.public_key, ec.EllipticCurvePublicKey):
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            key.public_key.verify(encode_dss_signature(r, s), signing_input, _ECDSA_SHA256)
        else:
            key.public_key.verify(signature, signing_input)
    except InvalidSignature:
        raise TokenSignature("the signature does not verify with the registered key") from None


def _required_str(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str):
        raise TokenClaims(f"claim {name} is required and must be a string")
    return value


def _required_int(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    # bool is an int subclass in Python; JSON true is not a NumericDate.
    if type(value) is not int:
        raise TokenClaims(f"claim {name} is required and must be an integer NumericDate")
    return value


def _optional_text(claims: dict[str, Any], name: str) -> str | None:
    if name not in claims:
        return None
    value = claims[name]
    if not isinstance(value, str):
        raise TokenClaims(f"claim {name} must be a string when present")
    try:
        # A lone surrogate ("\ud800") parses but cannot be logged or hashed as UTF-8.
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise TokenClaims(f"claim {name} is not valid Unicode text") from None
    return value


def verify_request_token(
    token: str | None,
    *,
    registry: KeyRegistry,
    node_id: str,
    method: str,
    path_qs: str,
    body: bytes,
    now: float | None = None,
    leeway: int = CLOCK_LEEWAY,
) -> VerifiedToken:
    """Check a bearer token against SPEC 2 for this request, or raise the matching error.

    ``path_qs`` is the path and query exactly as received (aiohttp's
    ``request.raw_path``); ``body`` is the raw body bytes (``b""`` when there is none).
    Replay is not checked here: claim ``jti`` in the replay cache next.
    """
    if not token:
        raise TokenMissing("no bearer token was sent")
    # len() counts characters, which equals bytes for the ASCII-only tokens that can pass.
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenMalformed(f"the token is longer than {MAX_TOKEN_BYTES} bytes")
    if not _COMPACT_JWS.fullmatch(token):
        raise TokenMalformed("the token is not a compact JWS (three base64url segments)")

    header_b64, payload_b64, signature_b64 = token.split(".")
    header = _json_object(_decode_segment(header_b64, "header"), "header")
    payload = _decode_segment(payload_b64, "claims set")
    signature = _decode_segment(signature_b64, "signature")
    if header.get("typ") != TOKEN_TYPE:
        raise TokenMalformed(f"the token header typ must be {TOKEN_TYPE}")
    if "crit" in header:
        # RFC 7515 4.1.11: we understand no extensions, so none may be critical.
        raise TokenMalformed("the token header lists critical extensions this node does not use")

    kid = header.get("kid")
    key = registry.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise PartnerUnknown("the token's kid does not name a key registered with this node")
    if header.get("alg") != key.alg:
        raise TokenAlgorithm(f"the token alg must be {key.alg}, the algorithm registered for kid")

    signing_input = token[: len(header_b64) + 1 + len(payload_b64)].encode("ascii")
    _check_signature(key, signing_input, signature)

    claims = _json_object(payload, "claims set")
    iss = _required_str(claims, "iss")
    aud = _required_str(claims, "aud")
    iat = _required_int(claims, "iat")
    exp = _required_int(claims, "exp")
    jti = _required_str(claims, "jti")
    if not JTI_PATTERN.fullmatch(jti):
        raise TokenClaims("claim jti must be 16 to 64 characters of A-Z a-z 0-9 _ -")
    htm = _required_str(claims, "htm")
    htu = _required_str(claims, "htu")
    bdh = _required_str(claims, "bdh")
    if not _SHA256_B64U.fullmatch(bdh):
        raise TokenClaims("claim bdh must be an unpadded base64url SHA-256 (43 characters)")
    sub = _optional_text(claims, "sub")
    pur = _optional_text(claims, "pur")
    if pur is not None and len(pur) > MAX_PURPOSE_CHARS:
        raise TokenClaims(f"claim pur is longer than {MAX_PURPOSE_CHARS} characters")

    if iss != key.partner:
        raise PartnerUnknown("claim iss is not the partner that owns the token's kid")

    if exp - iat > MAX_LIFETIME:
        raise TokenLifetime(f"exp - iat is more than {MAX_LIFETIME} seconds")
    if exp < iat:
        raise TokenLifetime("exp is before iat")
    current = time.time() if now is None else now
    if exp < current - leeway:
        raise TokenExpired("the token has expired (exp has passed)")
    if iat > current + leeway:
        raise TokenNotYetValid("the token's iat is in the future")

    if aud != node_id:
        raise TokenAudience(f"claim aud is not this node ({node_id})")
    if htm != method:
        raise TokenBinding("claim htm does not match the request method")
    if htu != path_qs:
        raise TokenBinding("claim htu does not match the request path and query")
    if bdh != sha256_b64u(body):
        raise TokenBinding("claim bdh does not match the SHA-256 of the request body")

    return VerifiedToken(
        iss=iss,
        aud=aud,
        sub=sub,
        pur=pur,
        jti=jti,
        iat=iat,
        exp=exp,
        kid=key.kid,
        replay_expires_at=exp + leeway,
    )
