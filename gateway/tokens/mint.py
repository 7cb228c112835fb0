"""Minting request tokens: the compact JWS a node sends to a partner (SPEC 2).

Signing is done with ``cryptography`` directly so that the mint and the verifier share
one reading of JWS: ES256 signatures are the raw 64-byte ``r || s`` of RFC 7518 3.4,
never DER. The mint refuses to produce a token the verifier would refuse on form
(wrong lifetime, bad ``jti``, over-long ``pur``), so a bug shows up at the caller.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, TypeAlias

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from gateway.encoding import b64u_encode, sha256_b64u
from gateway.tokens.registry import Algorithm, alg_for_key, jwk_thumbprint

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

TOKEN_TYPE = "tongban-req+jwt"  # noqa: S105 (a media type, not a password)
"""The JOSE ``typ`` of a request token (explicit typing, RFC 8725 3.11)."""

MAX_LIFETIME = 300
"""Largest ``exp - iat`` a verifier accepts, in seconds (SPEC 2)."""

MAX_PURPOSE_CHARS = 200
"""Longest ``pur`` (用证事由) a verifier accepts (SPEC 2)."""

JTI_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""Form of a ``jti`` (use with ``fullmatch``)."""


@dataclass(frozen=True)
class SigningKey:
    """This node's request-token private key with the ``kid`` partners know it by."""

    kid: str
    alg: Algorithm
    private_key: PrivateKey

    def __post_init__(self) -> None:
        actual = alg_for_key(self.private_key)
        if actual != self.alg:
            raise ValueError(f"signing key {self.kid}: declared {self.alg} but is a {actual} key")

    @classmethod
    def from_private_key(cls, private_key: PrivateKey, kid: str | None = None) -> SigningKey:
        """Wrap a key, naming it by its RFC 7638 thumbprint unless a ``kid`` is given (SPEC 9)."""
        return cls(
            kid=kid if kid is not None else jwk_thumbprint(private_key.public_key()),
            alg=alg_for_key(private_key),
            private_key=private_key,
        )


def _json_segment(value: dict[str, Any]) -> str:
    # Compact UTF-8 JSON: a 用证事由 in Chinese stays 3 bytes a character, not 6.
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return b64u_encode(text.encode("utf-8"))


def sign_jws(key: SigningKey, signing_input: bytes) -> bytes:
    """The JWS signature over ``header.payload`` in its wire form (raw ``r || s`` for ES256)."""
    if isinstance(key.private_key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return key.private_key.sign(signing_input)


def mint_request_token(
    key: SigningKey,
    *,
    iss: str,
    aud: str,
    method: str,
    path_qs: str,
    body: bytes,
    sub: str | None = None,
    pur: str | None = None,
    lifetime: int = 60,
    now: float | None = None,
    jti: str | None = None,
) -> str:
    """A signed request token binding this exact method, path+query and body to ``aud``.

    ``method`` and ``path_qs`` are put in as given (no case folding, no normalising):
    the receiver compares them byte for byte with what it received.
    """
    if not 0 < lifetime <= MAX_LIFETIME:
        raise ValueError(f"lifetime must be 1 to {MAX_LIFETIME} seconds, not {lifetime}")
    if jti is None:
        jti = secrets.token_urlsafe(18)  # 144 random bits, 24 characters
    elif not JTI_PATTERN.fullmatch(jti):
        raise ValueError("jti must be 16 to 64 characters of [A-Za-z0-9_-]")
    if pur is not None and len(pur) > MAX_PURPOSE_CHARS:
        raise ValueError(f"pur is longer than {MAX_PURPOSE_CHARS} characters")
    iat = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "iat": iat,
        "exp": iat + lifetime,
        "jti": jti,
        "htm": method,
        "htu": path_qs,
        "bdh": sha256_b64u(body),
    }
    if sub is not None:
        claims["sub"] = sub
    if pur is not None:
        claims["pur"] = pur
    header = {"alg": key.alg, "typ": TOKEN_TYPE, "kid": key.kid}
    signing_input = f"{_json_segment(header)}.{_json_segment(claims)}"
    signature = sign_jws(key, signing_input.encode("ascii"))
    return f"{signing_input}.{b64u_encode(signature)}"
