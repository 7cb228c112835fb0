"""Byte-level formats shared by every concern: base64url, SHA-256 digests, RFC 8785.

Pure functions only; the test vectors and property tests hit these directly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

import rfc8785


def b64u_encode(data: bytes) -> str:
    """Unpadded base64url, as JOSE and the SPEC's digests use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Decode unpadded base64url strictly; raises ``ValueError`` on any other alphabet."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url text")
    if "=" in text or "+" in text or "/" in text or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        return base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url text") from exc


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_b64u(data: bytes) -> str:
    """The SPEC's digest form: unpadded base64url of SHA-256."""
    return b64u_encode(hashlib.sha256(data).digest())


EMPTY_SHA256_B64U = sha256_b64u(b"")


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) canonical UTF-8 bytes; the one serialisation that is ever hashed."""
    return rfc8785.dumps(value)


def json_loads(text: str | bytes, **kwargs: Any) -> Any:
    """``json.loads`` for untrusted input: nesting deeper than the parser's recursion limit
    is a ``JSONDecodeError`` like any other malformed JSON, not a ``RecursionError``
    that no caller expects (a body of 100,000 ``[`` would otherwise be a 500)."""
    try:
        return json.loads(text, **kwargs)
    except RecursionError:
        raise json.JSONDecodeError(
            "nested too deeply", text if isinstance(text, str) else "", 0
        ) from None
