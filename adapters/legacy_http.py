"""The HTTP leg to one legacy partner: one ``ClientSession``, explicit timeouts, and
transport failures turned into ``upstream_*`` errors before any format code sees them.

Unlike ``gateway.http.client.PartnerClient`` it signs nothing: each legacy style signs
in its own way. The reply is read up to ``max_reply_bytes`` and returned raw, with its
declared content type and charset, for the style's parser to judge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from gateway.errors import UpstreamError, UpstreamTimeout

DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_REPLY_BYTES = 1 << 20


@dataclass(frozen=True)
class RawReply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    content_type: str
    charset: str | None


def timeout_from_options(options: Mapping[str, Any]) -> aiohttp.ClientTimeout:
    """``timeout_seconds`` from the partner's ``options`` table (default 10 s)."""
    raw = options.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
    total = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else 0.0
    if not 0 < total <= 120:
        total = DEFAULT_TIMEOUT_SECONDS
    return aiohttp.ClientTimeout(total=total, connect=min(3.0, total))


class LegacyHttp:
    """Raw requests to one partner; the session opens on first use, inside the loop."""

    def __init__(
        self,
        partner_id: str,
        base_url: str,
        timeout: aiohttp.ClientTimeout,
        *,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        self.partner_id = partner_id
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_reply_bytes = max_reply_bytes
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, raise_for_status=False)
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawReply:
        """Send one request; ``UpstreamTimeout`` / ``UpstreamError`` for transport failures."""
        session = self._open()
        try:
            async with session.request(
                method, self.base_url + path, data=body, headers=dict(headers or {})
            ) as resp:
                data = await resp.content.read(self.max_reply_bytes + 1)
                if len(data) > self.max_reply_bytes:
                    raise UpstreamError(f"{self.partner_id} answered with an oversized body")
                return RawReply(
                    status=resp.status,
                    headers=resp.headers,
                    body=data,
                    content_type=resp.content_type,
                    charset=resp.charset,
                )
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{self.partner_id} did not answer in time") from exc
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            raise UpstreamError(
                f"{self.partner_id} cannot be reached or dropped the connection"
            ) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
