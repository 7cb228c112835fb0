"""Bench 2: durable audit appends per second with group commit, against raw SQLite.

The store (``gateway.audit.store.AuditStore``) is driven by ``--writers`` concurrent
appenders, each appending the entry a partner's ``license.verify`` call produces
(subject pseudonym, request/response digests, an erasable payload, verdict meta), for
``--seconds``. Every append returns only once its entry is committed (WAL,
``synchronous=FULL``), so the count is of *durable* entries.

The limit is raw SQLite on the same disk with the same sync setting: the very rows the
store wrote (entries, Merkle nodes, subject index, payloads), read back and inserted
into a fresh database with the same schema by one thread with ``executemany``, in
transactions of the store's average batch size. That is what the store would cost if
encoding, hashing, the Merkle accumulator and the asyncio hand-offs were free.
Targets: >= 30,000 entries/s and >= 70 % of the raw figure.

It also reports the CPU time per append of the event-loop thread (what every audited
partner call pays on the loop, whatever the disk does) and of the store's SQLite writer
thread. The loop figure includes the bench's own work (building each event, its task
wake-ups); the cost of building the events alone is measured and printed beside it.

    .venv/bin/python -m bench.audit_append --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.machine import describe
from bench.stats import RESULTS, Latency, finish, say
from gateway.audit.events import AuditEvent
from gateway.audit.store import _SCHEMA, DB_NAME, AuditStore

NODE = "cn-360800"
TARGET_RATE = 30_000
TARGET_RATIO = 0.70


def verify_event(i: int) -> AuditEvent:
    """What the middleware hands the log for one partner ``license.verify`` call."""
    return AuditEvent(
        event="license.verify",
        actor_type="partner",
        actor_id="cn-330800",
        outcome="ok",
        subject=f"1.2.156.3005.2.11100000000013338W032.1136080001423588XW.{i % 5000:07d}.001.F",
        request=b'{"license":"' + b"x" * 1400 + b'%d"}' % i,
        response=b'{"verdict":"valid","reasons":[],"n":%d}' % i + b" " * 900,
        payload=b'{"license":{"holder.name":"\xe5\xbc\xa0\xe4\xb8\x89","n":%d}}' % i,
        meta={
            "route": "licenses.verify",
            "method": "POST",
            "status": 200,
            "request_id": f"{i:016x}",
            "verdict": "valid",
            "reasons": [],
            "source": "license",
            "purpose": None,
            "type_code": "11100000000013338W032",
            "issuer": "1136080001423588XW",
            "checks": {"identifier": "pass", "signature": "pass", "status": "pass"},
        },
    )


def thread_cpu(prefix: str) -> float | None:
    """CPU seconds used so far by the first live thread whose name starts with ``prefix``."""
    for thread in threading.enumerate():
        if thread.name.startswith(prefix) and thread.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return None


def event_build_seconds(count: int = 20_000) -> float:
    """Loop CPU seconds the bench spends building one event (not the store's work)."""
    start = time.thread_time()
    for i in range(count):
        verify_event(i)
    return (time.thread_time() - start) / count


async def drive_store(
    data_dir: Path, seconds: float, writers: int, max_batch: int
) -> dict[str, Any]:
    """Append from ``writers`` tasks for ``seconds``; returns counts, latencies, commits, CPU."""
    store = AuditStore(data_dir, NODE, max_batch=max_batch)
    await store.open()
    build = event_build_seconds()
    latencies: list[float] = []
    counter = itertools.count()
    deadline = time.perf_counter() + seconds

    async def writer() -> None:
        perf = time.perf_counter
        while perf() < deadline:
            event = verify_event(next(counter))
            t0 = perf()
            await store.append(event)
            latencies.append(perf() - t0)

    writer_cpu0 = thread_cpu("audit-writer")
    loop_cpu0 = time.thread_time()
    start = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed = time.perf_counter() - start
    loop_cpu = time.thread_time() - loop_cpu0
    writer_cpu1 = thread_cpu("audit-writer")
    commits = store.commits
    size = store.size
    await store.close()
    appended = max(1, len(latencies))
    return {
        "entries": size,
        "seconds": elapsed,
        "rate": size / elapsed,
        "commits": commits,
        "batch": size / max(1, commits),
        "latency": Latency.of_seconds(latencies),
        "loop_cpu_us": loop_cpu / appended * 1e6,
        "event_build_us": build * 1e6,
        "writer_cpu_us": (
            None
            if writer_cpu0 is None or writer_cpu1 is None
            else (writer_cpu1 - writer_cpu0) / appended * 1e6
        ),
    }


def stored_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the store wrote, table by table, in insert order."""
    conn = sqlite3.connect(db)
    try:
        return {
            "entries": conn.execute("SELECT seq, bytes FROM entries ORDER BY seq").fetchall(),
            "nodes": conn.execute(
                "SELECT level, idx, hash FROM nodes ORDER BY idx, level"
            ).fetchall(),
            "subjects": conn.execute("SELECT tag, seq FROM subjects ORDER BY seq").fetchall(),
            "payloads": conn.execute(
                "SELECT seq, salt, data FROM payloads ORDER BY seq"
            ).fetchall(),
        }
    finally:
        conn.close()


def raw_inserts(db: Path, rows: dict[str, list[tuple[Any, ...]]], batch: int) -> dict[str, Any]:
    """Insert the same rows with the same pragmas, ``batch`` entries per transaction."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA secure_delete=ON")
    conn.executescript(_SCHEMA)
    entries = rows["entries"]
    by_seq: dict[str, dict[int, list[tuple[Any, ...]]]] = {}
    for table, key in (("subjects", 1), ("payloads", 0)):
        grouped: dict[int, list[tuple[Any, ...]]] = {}
        for row in rows[table]:
            grouped.setdefault(row[key], []).append(row)
        by_seq[table] = grouped
    nodes_by_end: dict[int, list[tuple[Any, ...]]] = {}
    for level, idx, digest in rows["nodes"]:
        nodes_by_end.setdefault(((idx + 1) << level) - 1, []).append((level, idx, digest))
    # Group first, so only the database work is timed.
    batches = []
    for start in range(0, len(entries), batch):
        chunk = entries[start : start + batch]
        seqs = [r[0] for r in chunk]
        batches.append(
            (
                chunk,
                [n for s in seqs for n in nodes_by_end.get(s, ())],
                [r for s in seqs for r in by_seq["subjects"].get(s, ())],
                [r for s in seqs for r in by_seq["payloads"].get(s, ())],
            )
        )
    t0 = time.perf_counter()
    for chunk, nodes, subjects, payloads in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO entries(seq, bytes) VALUES (?, ?)", chunk)
        conn.executemany("INSERT INTO nodes(level, idx, hash) VALUES (?, ?, ?)", nodes)
        conn.executemany("INSERT INTO subjects(tag, seq) VALUES (?, ?)", subjects)
        conn.executemany("INSERT INTO payloads(seq, salt, data) VALUES (?, ?, ?)", payloads)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return {"entries": len(entries), "seconds": elapsed, "rate": len(entries) / elapsed}


async def main_async(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="audit-append-", dir=RESULTS))
    try:
        say(f"audit append: {args.writers} writers, max batch {args.max_batch}, {args.seconds} s")
        store = await drive_store(work / "store", args.seconds, args.writers, args.max_batch)
        lat: Latency = store["latency"]
        say(
            f"  store: {store['entries']} entries in {store['seconds']:.2f} s = "
            f"{store['rate']:,.0f} entries/s; {store['commits']} commits "
            f"(avg batch {store['batch']:.0f}); append {lat.line()}"
        )
        writer_cpu = store["writer_cpu_us"]
        say(
            f"  CPU per append: event loop {store['loop_cpu_us']:.1f} us (of which the bench "
            f"building the event {store['event_build_us']:.1f} us), SQLite writer thread "
            + ("n/a" if writer_cpu is None else f"{writer_cpu:.1f} us")
        )
        rows = stored_rows(work / "store" / "audit" / DB_NAME)
        raw = raw_inserts(work / "raw.sqlite3", rows, max(1, round(store["batch"])))
        say(
            f"  raw SQLite, same rows and sync: {raw['entries']} rows in {raw['seconds']:.2f} s "
            f"= {raw['rate']:,.0f} entries/s"
        )
        ratio = store["rate"] / raw["rate"]
        met = store["rate"] >= TARGET_RATE and ratio >= TARGET_RATIO
        say(
            f"  ratio {ratio:.0%} (target >= {TARGET_RATIO:.0%}); "
            f"target {TARGET_RATE:,}/s {'met' if met else 'MISSED'}"
        )
        finish(
            "audit_append",
            {
                "throughput": round(store["rate"]),
                **lat.as_dict(),
                "limit": round(raw["rate"]),
                "ratio": round(ratio, 3),
                "target_rate": TARGET_RATE,
                "target_ratio": TARGET_RATIO,
                "met": met,
                "entries": store["entries"],
                "commits": store["commits"],
                "avg_batch": round(store["batch"], 1),
                "loop_cpu_us_per_append": round(store["loop_cpu_us"], 1),
                "event_build_us": round(store["event_build_us"], 1),
                "writer_cpu_us_per_append": (
                    None if store["writer_cpu_us"] is None else round(store["writer_cpu_us"], 1)
                ),
                "writers": args.writers,
                "seconds": args.seconds,
            },
            {"machine": describe()},
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--writers", type=int, default=2048, help="concurrent appenders")
    parser.add_argument("--max-batch", type=int, default=1024, help="the store's max batch")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    if not 0 < args.seconds <= 600 or not 0 < args.writers <= 100_000:
        parser.error("--seconds must be in (0, 600] and --writers in (0, 100000]")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
