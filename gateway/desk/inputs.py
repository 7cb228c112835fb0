"""What staff put into the verify box: a scanned 亮证码, a pasted license, or a license file.

A USB scanner types the QR text followed by Enter; a license file is a ``.jws``/``.txt``
holding the compact JWS, or JSON ``{"license": "<JWS>"}`` (the answer of
``tongban license issue``). The page sends the text as it is and this module decides
what it is, so the rules live in one tested place rather than in browser code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from gateway.encoding import json_loads
from gateway.errors import ValidationFailed

MAX_INPUT_CHARS = 128 * 1024
"""A license with its certificate chain is a few KiB; anything far larger is not one."""

_JWS_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_NOT_RECOGNISED = "not a 亮证码 (TB1:...), a signed license (compact JWS) or a license file"


@dataclass(frozen=True)
class DeskInput:
    """A recognised input: a QR text (``TB1:...``) or a license compact JWS."""

    kind: Literal["qr", "license"]
    value: str


def classify_input(text: str) -> DeskInput:
    """Recognise scanner or file input; raises ``ValidationFailed`` on field ``input``."""
    if not isinstance(text, str):
        raise ValidationFailed("input must be text", fields={"input": "expected a string"})
    if len(text) > MAX_INPUT_CHARS:
        raise ValidationFailed("input too long", fields={"input": "longer than 128 KiB"})
    value = text.strip().lstrip("\ufeff")
    if not value:
        raise ValidationFailed("nothing to verify", fields={"input": "empty"})
    if value.startswith("TB1:"):
        return DeskInput("qr", value)
    if value.startswith("{"):
        return _from_json(value)
    if _JWS_RE.fullmatch(value):
        return DeskInput("license", value)
    raise ValidationFailed("input not recognised", fields={"input": _NOT_RECOGNISED})


def _from_json(value: str) -> DeskInput:
    try:
        doc = json_loads(value)
    except ValueError:
        raise ValidationFailed(
            "the license file is not valid JSON", fields={"input": "not valid JSON"}
        ) from None
    if isinstance(doc, dict):
        lic, qr = doc.get("license"), doc.get("qr")
        if isinstance(lic, str) and _JWS_RE.fullmatch(lic.strip()):
            return DeskInput("license", lic.strip())
        if isinstance(qr, str) and qr.strip().startswith("TB1:"):
            return DeskInput("qr", qr.strip())
    raise ValidationFailed(
        "input not recognised", fields={"input": 'a JSON file needs {"license": "<JWS>"}'}
    )
