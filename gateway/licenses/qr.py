"""The 亮证码 (SPEC 4.4): a short-lived, single-use QR token minted by the holder's city.

``TB1:`` followed by a compact JWS signed with the issuing node's request-token key
(header ``alg``, ``typ: tongban-qr+jwt``, ``kid`` = the key's RFC 7638 thumbprint) over
the claims ``iss`` (node id), ``lid`` (license identifier), ``ldh`` (license digest),
``sco`` (consented fields), ``iat``, ``exp`` (at most 180 s later) and ``jti``.

The text must fit a QR code of version 15 at error correction level L (520 bytes in
byte mode), so the claims are kept compact: a 12-character ``jti`` (72 random bits are
plenty for a token that is single-use and lives three minutes) and consent by group
(``holder``, ``data``, ``*``) rather than by listing every field. ``mint_qr`` refuses
to produce a text that would not fit, so a code that prints is a code that scans.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import segno

from gateway.encoding import b64u_decode, b64u_encode
from gateway.errors import ValidationFailed
from gateway.licenses.strict_json import load_object
from gateway.tokens.mint import SigningKey, sign_jws

__all__ = [
    "DEFAULT_QR_LIFETIME",
    "MAX_QR_LIFETIME",
    "MAX_QR_VERSION",
    "QR_JWS_TYPE",
    "QR_PREFIX",
    "QrToken",
    "mint_qr",
    "parse_qr",
    "qr_version",
    "write_qr_png",
]

QR_PREFIX = "TB1:"
QR_JWS_TYPE = "tongban-qr+jwt"
MAX_QR_LIFETIME = 180
"""Longest ``exp - iat`` of a QR token, in seconds (SPEC 4.4)."""
DEFAULT_QR_LIFETIME = 120
MAX_QR_VERSION = 15
"""Largest QR code version a 亮证码 may need (SPEC 4.4), at error correction level L."""
MAX_QR_CHARS = 1024
"""Longest QR text accepted as input: twice what a version 15 code can hold."""

_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_JTI = re.compile(r"[A-Za-z0-9_-]{8,64}")
_FIELD = re.compile(r"\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")


def _segment(value: Mapping[str, Any]) -> str:
    return b64u_encode(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


_DATA_CODEWORDS_L = (
    19, 34, 55, 80, 108, 136, 156, 194, 232, 274, 324, 370, 428, 461, 523, 589, 647, 721, 795,
    861, 932, 1006, 1094, 1174, 1276, 1370, 1468, 1531, 1631, 1735, 1843, 1955, 2071, 2191, 2306,
    2434, 2566, 2702, 2812, 2956,
)  # fmt: skip
"""Data codewords of QR code versions 1-40 at error correction level L (ISO/IEC 18004)."""


def qr_version(text: str) -> int:
    """The smallest QR code version that holds ``text`` in byte mode at level L.

    Computed from the capacity table rather than by encoding, which takes ~0.1 s in
    pure Python: a mode indicator (4 bits), a character count (8 bits up to version 9,
    16 after) and 8 bits per UTF-8 byte must fit the version's data codewords. The
    tests check this against segno's own choice at every boundary that matters.
    """
    size = len(text.encode("utf-8"))
    for version, codewords in enumerate(_DATA_CODEWORDS_L, start=1):
        if 4 + (8 if version <= 9 else 16) + 8 * size <= 8 * codewords:
            return version
    raise ValueError("too long for any QR code")


def write_qr_png(text: str, path: Path, *, scale: int = 4) -> None:
    """Write the 亮证码 as a PNG (segno: pure Python, no imaging library)."""
    segno.make(text, error="l", boost_error=False).save(
        str(path), kind="png", scale=scale, border=4
    )


def mint_qr(
    key: SigningKey,
    *,
    iss: str,
    lid: str,
    ldh: str,
    sco: Sequence[str],
    lifetime: int = DEFAULT_QR_LIFETIME,
    now: float | None = None,
    jti: str | None = None,
) -> str:
    """The ``TB1:`` text of a new QR token; ``ValueError`` if it breaks a SPEC 4.4 rule."""
    if not 0 < lifetime <= MAX_QR_LIFETIME:
        raise ValueError(f"a QR code lives 1 to {MAX_QR_LIFETIME} seconds, not {lifetime}")
    if not sco or any(not _FIELD.fullmatch(f) for f in sco):
        raise ValueError("sco must name at least one field, group or *")
    iat = int(time.time() if now is None else now)
    claims = {
        "iss": iss,
        "lid": lid,
        "ldh": ldh,
        "sco": list(sco),
        "iat": iat,
        "exp": iat + lifetime,
        "jti": jti if jti is not None else secrets.token_urlsafe(9),
    }
    header = {"alg": key.alg, "typ": QR_JWS_TYPE, "kid": key.kid}
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = sign_jws(key, signing_input.encode("ascii"))
    text = f"{QR_PREFIX}{signing_input}.{b64u_encode(signature)}"
    version = qr_version(text)
    if version > MAX_QR_VERSION:
        raise ValueError(
            f"the QR text needs version {version} (at most {MAX_QR_VERSION}): "
            "consent to fewer fields or to a group such as holder or data"
        )
    return text


@dataclass(frozen=True)
class QrToken:
    """A QR token split and its claims read for form; the signature is not checked yet."""

    jws: str
    kid: str
    alg: str
    iss: str
    lid: str
    ldh: str
    sco: tuple[str, ...]
    iat: int
    exp: int
    jti: str
    signing_input: bytes
    signature: bytes


def _bad(field: str, reason: str) -> ValidationFailed:
    return ValidationFailed(f"{field} is not a 亮证码: {reason}", fields={field: reason})


def _claim_text(claims: Mapping[str, Any], name: str, field: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > 200:
        raise _bad(field, f"claim {name} must be a short string")
    return value


def _claim_int(claims: Mapping[str, Any], name: str, field: str) -> int:
    value = claims.get(name)
    if type(value) is not int:
        raise _bad(field, f"claim {name} must be an integer")
    return value


def parse_qr(text: object, *, field: str = "qr", require_prefix: bool = True) -> QrToken:
    """Read a 亮证码 text for form only; ``ValidationFailed`` naming ``field`` if it is not one.

    Scanners type the text and Enter, so surrounding whitespace is dropped. The
    ``TB1:`` prefix is required from scanners and optional between nodes
    (``require_prefix=False``), which pass the bare JWS as the consent.
    """
    if not isinstance(text, str):
        raise _bad(field, "must be a string")
    text = text.strip()
    if len(text) > MAX_QR_CHARS:
        raise _bad(field, f"longer than {MAX_QR_CHARS} characters")
    if text.startswith(QR_PREFIX):
        text = text[len(QR_PREFIX) :]
    elif require_prefix:
        raise _bad(field, f"must start with {QR_PREFIX}")
    if not _COMPACT.fullmatch(text):
        raise _bad(field, "not a compact JWS")
    header_b64, claims_b64, signature_b64 = text.split(".")
    try:
        header = load_object(b64u_decode(header_b64))
        claims = load_object(b64u_decode(claims_b64))
        signature = b64u_decode(signature_b64)
    except ValueError as exc:
        raise _bad(field, str(exc)) from None
    if header.get("typ") != QR_JWS_TYPE:
        raise _bad(field, f"the header typ must be {QR_JWS_TYPE}")
    kid, alg = header.get("kid"), header.get("alg")
    if not isinstance(kid, str) or not isinstance(alg, str):
        raise _bad(field, "the header must name kid and alg")
    sco = claims.get("sco")
    if (
        not isinstance(sco, list)
        or not sco
        or len(sco) > 50
        or not all(isinstance(f, str) and _FIELD.fullmatch(f) for f in sco)
    ):
        raise _bad(field, "claim sco must list consented fields")
    jti = _claim_text(claims, "jti", field)
    if not _JTI.fullmatch(jti):
        raise _bad(field, "claim jti must be 8 to 64 characters of A-Z a-z 0-9 _ -")
    return QrToken(
        jws=text,
        kid=kid,
        alg=alg,
        iss=_claim_text(claims, "iss", field),
        lid=_claim_text(claims, "lid", field),
        ldh=_claim_text(claims, "ldh", field),
        sco=tuple(sco),
        iat=_claim_int(claims, "iat", field),
        exp=_claim_int(claims, "exp", field),
        jti=jti,
        signing_input=f"{header_b64}.{claims_b64}".encode("ascii"),
        signature=signature,
    )
