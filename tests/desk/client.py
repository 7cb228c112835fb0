"""A desk user's browser, minus the browser: cookies, the CSRF header, JSON calls."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any
    text: str

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


class DeskClient:
    """Holds the desk cookies (``unsafe=True``: the node is on 127.0.0.1) and the token."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def close(self) -> None:
        await self.session.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        csrf: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        allow_redirects: bool = True,
    ) -> Answer:
        hdrs = {"Accept": "application/json"}
        if method != "GET":
            token = self.csrf if csrf is None else csrf
            if token:
                hdrs["X-CSRF-Token"] = token
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        async with self.session.request(
            method, self.base + path, data=data, headers=hdrs, allow_redirects=allow_redirects
        ) as resp:
            text = await resp.text()
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = None
            return Answer(resp.status, parsed, resp.headers, text)

    async def refresh(self) -> Answer:
        """``GET /desk/api/session`` and keep its CSRF token, as the page does on load."""
        answer = await self.call("GET", "/desk/api/session")
        self.csrf = answer.body["csrf"]
        return answer

    async def sign_in(self, user: str, password: str) -> Answer:
        await self.refresh()
        answer = await self.call("POST", "/desk/api/sign-in", {"user": user, "password": password})
        if answer.status == 200:
            self.csrf = answer.body["csrf"]
        return answer
