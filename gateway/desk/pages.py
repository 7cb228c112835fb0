"""The desk's pages and static files, and the security headers every desk answer carries.

Pages are plain HTML files under ``static/`` (no build step); the browser code fetches
``/desk/api/...``. The auditor page is refused on the server, not merely hidden: a
staff session gets 403 and a page saying so, a visitor without a session is sent to
sign in first.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aiohttp import web

from gateway.desk.access import current_caller
from gateway.desk.auth import may
from gateway.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

routes = web.RouteTableDef()


def _page(name: str, *, status: int = 200) -> web.Response:
    response = web.Response(
        status=status,
        body=(STATIC_DIR / name).read_bytes(),
        content_type="text/html",
        charset="utf-8",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.get("/desk", name="desk:root")
async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/desk/")


@routes.get("/desk/", name="desk:index")
async def index(request: web.Request) -> web.Response:
    """The staff desk (sign-in, verify, usage record)."""
    return _page("index.html")


@routes.get("/desk/audit", name="desk:audit_page")
async def audit_page(request: web.Request) -> web.Response:
    """The auditor pages: only for auditor (and admin) sessions."""
    caller = await current_caller(request)
    if caller is None:
        raise web.HTTPFound("/desk/?next=audit")
    if not may(caller.role, "auditor"):
        return _page("forbidden.html", status=403)
    return _page("audit.html")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: strict headers on everything under ``/desk``."""
    if request.path == "/desk" or request.path.startswith("/desk/"):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)


CONTENT_TYPES = {".css": "text/css", ".js": "text/javascript", ".html": "text/html"}


def _load_static() -> dict[str, tuple[bytes, str, str]]:
    """Every static file by name, read once: a fixed set, so no path ever reaches the disk."""
    files: dict[str, tuple[bytes, str, str]] = {}
    for path in sorted(STATIC_DIR.iterdir()):
        kind = CONTENT_TYPES.get(path.suffix)
        if kind is not None and path.is_file():
            data = path.read_bytes()
            files[path.name] = (data, kind, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')
    return files


_STATIC = _load_static()


@routes.get("/desk/static/{name}", name="desk:static")
async def static(request: web.Request) -> web.Response:
    """The desk's CSS and scripts (revalidated by ETag, so an upgrade shows at once)."""
    found = _STATIC.get(request.match_info["name"])
    if found is None:
        raise NotFound("no such desk file")
    data, kind, etag = found
    if request.headers.get("If-None-Match") == etag:
        response = web.Response(status=304)
    else:
        response = web.Response(body=data, content_type=kind, charset="utf-8")
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-cache"
    return response
