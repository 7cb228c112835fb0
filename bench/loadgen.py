"""The load generator: a separate process sending pre-signed partner calls over loopback.

Every request carries its own request token, signed before the clock starts (the
driver writes one token per line), so signing never limits the rate. The generator
keeps at most ``--connections`` connections open (one ``aiohttp`` connector) and runs
in one of two modes:

* closed loop (no ``--rate``): each connection sends its next request as soon as the
  last one is answered — the peak rate the server sustains;
* open loop (``--rate R``): request *i* is due at ``start + i / R`` whatever happened
  before; its latency counts from when it was due, so a server that falls behind is
  charged for the queue it builds (no coordinated omission).

It stops at ``--seconds`` or when the tokens run out, and writes a JSON summary:
counts by status and error code, latencies (p50/p95/p99/max), and the
``Tongban-Audit`` receipts of every 2xx answer (``--receipts``) so the driver can check
that each acknowledged entry is in the log.

    python -m bench.loadgen --url URL --body FILE --tokens FILE --seconds 10 --out OUT
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench.stats import Latency

_MAX_BODY = 1 << 20


class Run:
    """What one run saw: latencies, statuses, error codes, receipts."""

    def __init__(self, keep_receipts: bool) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.codes: Counter[str] = Counter()
        self.receipts: list[str] = []
        self.keep_receipts = keep_receipts
        self.transport_errors: Counter[str] = Counter()
        self.timeline: list[tuple[float, float]] = []

    def record(
        self, status: int, body: bytes, audit: str | None, latency: float, due: float
    ) -> None:
        self.latencies.append(latency)
        self.timeline.append((due, latency))
        self.statuses[status] += 1
        if status >= 400:
            try:
                self.codes[str(json.loads(body).get("code"))] += 1
            except (ValueError, AttributeError):
                self.codes["unparsable"] += 1
        elif self.keep_receipts and audit:
            self.receipts.append(audit)


async def _send(
    session: aiohttp.ClientSession, url: str, body: bytes, token: str, run: Run, due: float
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            data = await resp.content.read(_MAX_BODY)
            audit = resp.headers.get("Tongban-Audit")
            run.record(resp.status, data, audit, time.perf_counter() - due, due)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        run.transport_errors[type(exc).__name__] += 1


async def closed_loop(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    tokens: list[str],
    connections: int,
    seconds: float,
    run: Run,
) -> float:
    """``connections`` workers back to back until time or tokens run out; elapsed s."""
    it = iter(tokens)
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> None:
        perf = time.perf_counter
        for token in it:  # a shared iterator: every token is used once
            if perf() >= deadline:
                return
            await _send(session, url, body, token, run, perf())

    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - start


async def open_loop(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    tokens: list[str],
    connections: int,
    seconds: float,
    rate: float,
    run: Run,
) -> float:
    """Request *i* due at ``start + i / rate``, at most ``connections`` in flight."""
    total = min(len(tokens), int(seconds * rate))
    slots = asyncio.Semaphore(connections)
    start = time.perf_counter()
    pending: set[asyncio.Task[None]] = set()
    tasks: list[asyncio.Task[None]] = []

    async def one(token: str, due: float) -> None:
        async with slots:
            await _send(session, url, body, token, run, due)

    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(tokens[i], due))
        tasks.append(task)
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=seconds + 30)
    for task in tasks:  # a bug in the generator must not pass for a quiet run
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise RuntimeError("a generator task failed") from task.exception()
    return time.perf_counter() - start


async def main_async(args: argparse.Namespace, body: bytes, tokens: list[str]) -> dict[str, Any]:
    run = Run(args.receipts)
    connector = aiohttp.TCPConnector(limit=args.connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if args.warmup:
            warm, tokens = tokens[: args.warmup], tokens[args.warmup :]
            await closed_loop(session, args.url, body, warm, args.connections, 30, Run(False))
        if args.rate:
            elapsed = await open_loop(
                session, args.url, body, tokens, args.connections, args.seconds, args.rate, run
            )
        else:
            elapsed = await closed_loop(
                session, args.url, body, tokens, args.connections, args.seconds, run
            )
    done = len(run.latencies)
    ok = sum(n for s, n in run.statuses.items() if s < 300)
    return {
        "requests": done,
        "ok": ok,
        "seconds": elapsed,
        "throughput": done / elapsed if elapsed else 0.0,
        "ok_throughput": ok / elapsed if elapsed else 0.0,
        "tokens_exhausted": done >= len(tokens),
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "codes": dict(run.codes),
        "transport_errors": dict(run.transport_errors),
        **Latency.of_seconds(run.latencies).as_dict(),
        "receipts": run.receipts,
        "timeline": run.timeline if args.timeline else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Tongban load generator (loopback only)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", help="file with the request body")
    parser.add_argument("--tokens", required=True, help="file with one pre-signed token a line")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, help="open loop at this many requests/s")
    parser.add_argument("--warmup", type=int, default=0, help="requests sent before measuring")
    parser.add_argument("--receipts", action="store_true", help="keep Tongban-Audit headers")
    parser.add_argument("--timeline", action="store_true", help="keep (due, latency) pairs")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if not args.url.startswith(("http://127.0.0.1:", "http://localhost:")):
        parser.error("loopback only: --url must be http://127.0.0.1:PORT/...")
    if not 0 < args.connections <= 1024 or not 0 < args.seconds <= 600:
        parser.error("--connections must be in (0, 1024] and --seconds in (0, 600]")
    body = Path(args.body).read_bytes() if args.body else b"{}"
    tokens = Path(args.tokens).read_text(encoding="ascii").split()
    result = asyncio.run(main_async(args, body, tokens))
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
