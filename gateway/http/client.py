"""Outbound calls to a native (Tongban) partner, signed with this node's token key.

One ``aiohttp.ClientSession`` per partner, with explicit timeouts, so a slow partner
cannot exhaust a shared pool; transport failures become ``upstream_*`` errors.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from gateway.encoding import json_loads
from gateway.errors import UpstreamError, UpstreamTimeout
from gateway.tokens import SigningKey, mint_request_token

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3, sock_read=8)
MAX_RESPONSE_BYTES = 4 << 20


@dataclass(frozen=True)
class PartnerResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        try:
            return json_loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UpstreamError("the partner answered with something that is not JSON") from exc


class PartnerClient:
    """Signs and sends ``/v1`` calls to one partner node."""

    def __init__(
        self,
        *,
        node_id: str,
        partner_id: str,
        base_url: str,
        key: SigningKey,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.node_id = node_id
        self.partner_id = partner_id
        self.base_url = base_url.rstrip("/")
        self.key = key
        self._session = aiohttp.ClientSession(timeout=timeout, raise_for_status=False)

    async def close(self) -> None:
        await self._session.close()

    async def call(
        self,
        method: str,
        path_qs: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        sub: str | None = None,
        pur: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> PartnerResponse:
        """Send one signed call; the token binds method, path and body (SPEC 2)."""
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
        raw = body or b""
        token = mint_request_token(
            self.key,
            iss=self.node_id,
            aud=self.partner_id,
            method=method.upper(),
            path_qs=path_qs,
            body=raw,
            sub=sub,
            pur=pur,
        )
        hdrs = {"Authorization": f"Bearer {token}"}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        try:
            async with self._session.request(
                method.upper(),
                self.base_url + path_qs,
                data=raw if body is not None else None,
                headers=hdrs,
            ) as resp:
                data = await resp.content.read(MAX_RESPONSE_BYTES + 1)
                if len(data) > MAX_RESPONSE_BYTES:
                    raise UpstreamError(f"{self.partner_id} answered with an oversized body")
                return PartnerResponse(resp.status, resp.headers, data)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{self.partner_id} did not answer in time") from exc
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            raise UpstreamError(f"{self.partner_id} cannot be reached") from exc
