"""Reading the small JSON bodies the desk page sends, with a size limit on each."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.encoding import json_loads
from gateway.errors import BodyTooLarge, InvalidJson, ValidationFailed
from gateway.http.context import CTX


def json_body(request: web.Request, limit: int) -> dict[str, Any]:
    """The request's JSON object (the middleware already read the bytes, bounded)."""
    body = request[CTX].body
    if len(body) > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    try:
        data = json_loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidJson("the body is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise InvalidJson("the body must be a JSON object")
    return data


def text_field(data: dict[str, Any], name: str, *, max_len: int, required: bool = True) -> str:
    """A string field; raises ``ValidationFailed`` naming it."""
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ValidationFailed(f"{name} is required", fields={name: "expected a non-empty string"})
    if len(value) > max_len:
        raise ValidationFailed(f"{name} is too long", fields={name: f"at most {max_len} chars"})
    return value
