"""Bench 4: inclusion and consistency proof latency at 1M and 10M entries.

The logs are built once by ``bench.log_builder`` (the store's encoder, schema and
Merkle accumulator, bulk-inserted; see its docstring) and cached under
``bench/results/cache/``. Each is opened with the real ``AuditStore``; proofs are asked
through its API (``inclusion_proof``, ``consistency_proof``: a hop to the reader thread,
one SQLite query for the stored nodes, at most two 16-entry tiles re-hashed) for
random positions, for ``--seconds`` per kind and size, one at a time. Every proof is
checked against the root with ``merkle.verify_inclusion``/``verify_consistency``
(outside the timing).

The limit is the same node fetch (``store.fetch_nodes``) on a plain connection in this
thread, without the store's executor hop: what the database alone costs. Logarithmic
growth shows as proof lengths (log2 n) and latencies that grow by about the ratio of
the logarithms (log2 10M / log2 1M = 1.17) — not by 10.

    .venv/bin/python -m bench.proofs --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.log_builder import NODE, cached_log
from bench.machine import describe
from bench.stats import RESULTS, Latency, finish, say
from gateway.audit.merkle import (
    leaf_hash,
    nodes_for_consistency,
    nodes_for_inclusion,
    verify_consistency,
    verify_inclusion,
)
from gateway.audit.store import DB_NAME, AuditStore, fetch_nodes

CACHE = RESULTS / "cache"


async def measure(data_dir: Path, vkey: str, seconds: float, rng: random.Random) -> dict[str, Any]:
    store = AuditStore(data_dir, NODE, log_vkey=vkey)
    await store.open()
    try:
        size = store.size
        root = store.root()
        raw = sqlite3.connect(
            f"{(data_dir / 'audit' / DB_NAME).resolve().as_uri()}?mode=ro", uri=True
        )
        out: dict[str, Any] = {"size": size}
        # inclusion of a random entry in the full tree
        lat, raw_lat, lengths = [], [], []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            index = rng.randrange(size)
            t0 = time.perf_counter()
            proof = await store.inclusion_proof(index, size)
            lat.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            fetch_nodes(raw, nodes_for_inclusion(index, size))
            raw_lat.append(time.perf_counter() - t0)
            entry = await store.entry(index)
            verify_inclusion(leaf_hash(entry), index, size, proof, root)
            lengths.append(len(proof))
        out["inclusion"] = _summary(lat, raw_lat, lengths)
        # consistency from a random earlier size to the full tree
        lat, raw_lat, lengths = [], [], []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            old = rng.randrange(1, size)
            t0 = time.perf_counter()
            proof = await store.consistency_proof(old, size)
            lat.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            fetch_nodes(raw, nodes_for_consistency(old, size))
            raw_lat.append(time.perf_counter() - t0)
            verify_consistency(old, size, await store.root_at(old), root, proof)
            lengths.append(len(proof))
        out["consistency"] = _summary(lat, raw_lat, lengths)
        raw.close()
        return out
    finally:
        await store.close()


def _summary(lat: list[float], raw_lat: list[float], lengths: list[int]) -> dict[str, Any]:
    store = Latency.of_seconds(lat)
    raw = Latency.of_seconds(raw_lat)
    return {
        "count": len(lat),
        "throughput": round(len(lat) / sum(lat)) if lat else 0,
        **store.as_dict(),
        "raw_p50_ms": raw.p50_ms,
        "raw_p99_ms": raw.p99_ms,
        "hashes_mean": round(sum(lengths) / len(lengths), 2) if lengths else 0,
        "hashes_max": max(lengths, default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per proof kind and size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    results: dict[int, dict[str, Any]] = {}
    for n in args.sizes:
        data_dir, vkey = cached_log(CACHE, n, say)
        results[n] = asyncio.run(measure(data_dir, vkey, args.seconds, rng))
        for kind in ("inclusion", "consistency"):
            r = results[n][kind]
            say(
                f"  {kind} at {n:,}: {r['count']} proofs, p50 {r['p50_ms']:.3f} p95 "
                f"{r['p95_ms']:.3f} p99 {r['p99_ms']:.3f} ms ({r['hashes_mean']} hashes); "
                f"raw node fetch p50 {r['raw_p50_ms']:.3f} ms"
            )
    small, big = min(args.sizes), max(args.sizes)
    log_ratio = math.log2(big) / math.log2(small)
    growth = {
        kind: round(results[big][kind]["p50_ms"] / results[small][kind]["p50_ms"], 2)
        for kind in ("inclusion", "consistency")
    }
    say(
        f"  p50 growth {small:,} -> {big:,}: {growth} (log2 ratio {log_ratio:.2f}, "
        f"linear would be {big / small:.0f})"
    )
    inc = results[big]["inclusion"]
    finish(
        "proofs",
        {
            "throughput": inc["throughput"],
            "p50_ms": inc["p50_ms"],
            "p95_ms": inc["p95_ms"],
            "p99_ms": inc["p99_ms"],
            "limit": round(1000 / inc["raw_p50_ms"]) if inc["raw_p50_ms"] else None,
            "ratio": round(inc["raw_p50_ms"] / inc["p50_ms"], 3) if inc["p50_ms"] else None,
            "sizes": {str(n): r for n, r in results.items()},
            "p50_growth": growth,
            "log2_ratio": round(log_ratio, 3),
        },
        {"machine": describe()},
    )


if __name__ == "__main__":
    main()
