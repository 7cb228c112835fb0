"""A license as it travels (SPEC 4.3): a compact JWS signed by the issuing authority.

Header ``{"alg": "ES256", "typ": "tongban-license+jwt", "x5c": [...]}`` with the issuer
certificate first and its intermediates after it, each standard base64 DER (RFC 7515
4.1.6 — not base64url); payload the RFC 8785 canonical JSON of the document. The license
digest is the base64url SHA-256 of exactly those payload bytes, so every node computes
the same digest for the same license without re-serialising anything.

Signatures are made and checked with ``cryptography`` directly, in the JWS wire form:
raw 64-byte ``r || s`` (RFC 7518 3.4), never DER.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.encoding import b64u_decode, b64u_encode, canonical_json, sha256_b64u
from gateway.errors import ValidationFailed
from gateway.keys import Issuer
from gateway.licenses.strict_json import load_object

__all__ = [
    "LICENSE_JWS_TYPE",
    "MAX_LICENSE_CHARS",
    "LicenseJws",
    "SignedLicense",
    "es256_sign",
    "es256_verify",
    "license_digest",
    "parse_license_jws",
    "sign_license",
    "x5c_of",
]

LICENSE_JWS_TYPE = "tongban-license+jwt"
"""The JOSE ``typ`` of a signed license (explicit typing, RFC 8725 3.11)."""

MAX_LICENSE_CHARS = 64 * 1024
"""Longest license JWS accepted: a document with a short chain is a few KiB."""

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


def es256_sign(private_key: ec.EllipticCurvePrivateKey, signing_input: bytes) -> bytes:
    """ES256 signature in JWS form: raw ``r || s``, 32 bytes each."""
    r, s = decode_dss_signature(private_key.sign(signing_input, _ECDSA_SHA256))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def es256_verify(
    public_key: ec.EllipticCurvePublicKey, signing_input: bytes, signature: bytes
) -> None:
    """Check a raw ``r || s`` ES256 signature; raises ``InvalidSignature`` (or
    ``ValueError`` for a signature of the wrong length)."""
    if len(signature) != 64:
        raise ValueError("an ES256 signature is 64 bytes (raw r || s)")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public_key.verify(der, signing_input, _ECDSA_SHA256)


def license_digest(payload: bytes) -> str:
    """The license digest (SPEC 4.3): base64url SHA-256 of the payload bytes."""
    return sha256_b64u(payload)


def _segment(value: Mapping[str, Any]) -> str:
    return b64u_encode(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def x5c_of(issuer: Issuer) -> list[str]:
    """The ``x5c`` header value for an issuer's chain: standard base64 DER, leaf first."""
    return [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in issuer.chain]


@dataclass(frozen=True)
class SignedLicense:
    """A freshly signed license: its identifier, the JWS and the license digest."""

    identifier: str
    jws: str
    digest: str


def sign_license(issuer: Issuer, document: Mapping[str, Any]) -> SignedLicense:
    """Sign ``document`` as the issuing authority ``issuer`` (SPEC 4.3).

    The document is signed as given; ``gateway.licenses.issuing`` decides what an
    issuing node may put in it.
    """
    payload = canonical_json(dict(document))
    header = {"alg": "ES256", "typ": LICENSE_JWS_TYPE, "x5c": x5c_of(issuer)}
    signing_input = f"{_segment(header)}.{b64u_encode(payload)}"
    signature = es256_sign(issuer.private_key, signing_input.encode("ascii"))
    return SignedLicense(
        identifier=str(document["identifier"]),
        jws=f"{signing_input}.{b64u_encode(signature)}",
        digest=license_digest(payload),
    )


@dataclass(frozen=True)
class LicenseJws:
    """A compact JWS split into its parts; nothing in it is trusted yet."""

    text: str
    header: Mapping[str, Any]
    payload: bytes
    signature: bytes
    signing_input: bytes

    @property
    def digest(self) -> str:
        return license_digest(self.payload)

    def x5c(self) -> tuple[bytes, ...]:
        """The DER certificates of the ``x5c`` header; ``ValueError`` says what is wrong."""
        return _x5c(self.signing_input[: self.signing_input.index(b".")])


@functools.lru_cache(maxsize=256)
def _x5c(header_segment: bytes) -> tuple[bytes, ...]:
    """Decode a header's ``x5c`` once per header (one authority, one header)."""
    chain = _header(header_segment.decode("ascii")).get("x5c")
    if not isinstance(chain, list) or not chain:
        raise ValueError("the header has no x5c certificate chain")
    if len(chain) > 5:
        raise ValueError("the x5c chain is longer than 5 certificates")
    ders: list[bytes] = []
    for item in chain:
        if not isinstance(item, str):
            raise ValueError("an x5c entry is not a string")
        try:
            ders.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError):
            raise ValueError("an x5c entry is not standard base64 (RFC 7515 4.1.6)") from None
    return tuple(ders)


@functools.lru_cache(maxsize=256)
def _header(segment: str) -> Mapping[str, Any]:
    """A parsed header, read-only. Every license of one authority carries the same header
    (its ``x5c`` chain is most of it), so it is parsed once, not once per license."""
    if not segment or not _SEGMENT.fullmatch(segment):
        raise ValueError("the header is not base64url")
    return MappingProxyType(load_object(b64u_decode(segment)))


def parse_license_jws(text: object, *, field: str = "license") -> LicenseJws:
    """Split a compact JWS; ``ValidationFailed`` (naming ``field``) if it is not one.

    Only the form is checked here: three base64url segments and a JSON object header.
    A payload that is not a license document, or a header that names the wrong
    algorithm, is a *verdict* (the checks report it), not a malformed request.
    """
    if not isinstance(text, str):
        raise ValidationFailed(f"{field} must be a string", fields={field: "must be a string"})
    text = text.strip()
    if len(text) > MAX_LICENSE_CHARS:
        reason = f"longer than {MAX_LICENSE_CHARS} characters"
        raise ValidationFailed(f"{field} is {reason}", fields={field: reason})
    parts = text.split(".")
    if len(parts) != 3 or not parts[1] or not all(_SEGMENT.fullmatch(p) for p in parts[1:]):
        reason = "not a compact JWS (three base64url segments)"
        raise ValidationFailed(f"{field} is {reason}", fields={field: reason})
    header_b64, payload_b64, signature_b64 = parts
    try:
        header = _header(header_b64)
        payload = b64u_decode(payload_b64)
        signature = b64u_decode(signature_b64)
    except ValueError as exc:
        reason = f"not a compact JWS ({exc})"
        raise ValidationFailed(f"{field} is {reason}", fields={field: reason}) from None
    return LicenseJws(
        text=text,
        header=header,
        payload=payload,
        signature=signature,
        signing_input=f"{header_b64}.{payload_b64}".encode("ascii"),
    )
