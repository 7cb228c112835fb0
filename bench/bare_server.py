"""Reference servers for the verify bench, each in its own process on loopback.

* ``aiohttp``: bare aiohttp answering every POST with a fixed body (the node's own
  verdict bytes) after reading the request body — what the HTTP stack alone costs;
* ``raw``: an asyncio protocol that answers every request with fixed bytes and parses
  nothing but the header end and ``Content-Length`` — so cheap that a run against it
  measures the load generator's own ceiling.

    python -m bench.bare_server --kind aiohttp --port P --body FILE
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from aiohttp import web


def aiohttp_app(answer: bytes) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=answer, content_type="application/json")

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/{tail:.*}", handle)
    return app


class _Fixed(asyncio.Protocol):
    """HTTP/1.1 keep-alive: for each complete request, write the same response."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0 or len(self.buffer) > 1 << 20:
                return
            head = self.buffer[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15 :].split(b"\r\n", 1)[0])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            assert self.transport is not None
            self.transport.write(self.response)


async def serve_raw(port: int, answer: bytes) -> None:
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(answer)
        + answer
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Fixed(response), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("aiohttp", "raw"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", required=True, help="file with the answer body")
    args = parser.parse_args()
    answer = Path(args.body).read_bytes()
    if args.kind == "aiohttp":
        web.run_app(
            aiohttp_app(answer), host="127.0.0.1", port=args.port, access_log=None, print=None
        )
    else:
        asyncio.run(serve_raw(args.port, answer))


if __name__ == "__main__":
    main()
