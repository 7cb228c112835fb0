"""RFC 9457 problem+json: the one place errors become HTTP responses (SPEC 3)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.errors import GatewayError, RateLimited

PROBLEM_TYPE = "application/problem+json"


def problem_body(error: GatewayError, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:tongban:error:{error.code}",
        "title": error.title,
        "status": error.status,
        "code": error.code,
        "detail": error.detail,
        "request_id": request_id,
    }
    body.update(error.extra)
    return body


def problem_response(error: GatewayError, request_id: str) -> web.Response:
    """A problem+json response; ``Retry-After`` for rate limits."""
    resp = web.Response(
        status=error.status,
        body=json.dumps(problem_body(error, request_id), ensure_ascii=False).encode(),
        content_type=PROBLEM_TYPE,
    )
    if isinstance(error, RateLimited):
        resp.headers["Retry-After"] = str(error.retry_after)
    return resp


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """Compact UTF-8 JSON; the exact bytes are what the audit entry digests."""
    return web.Response(
        status=status,
        body=json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(),
        content_type="application/json",
    )
