"""Latency summaries and the one JSON line every benchmark ends with."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of an already sorted sequence."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class Latency:
    """p50/p95/p99/max of a set of latencies, in milliseconds."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of_seconds(cls, values: Iterable[float]) -> Latency:
        ms = sorted(v * 1000.0 for v in values)
        return cls(
            count=len(ms),
            p50_ms=round(percentile(ms, 50), 3),
            p95_ms=round(percentile(ms, 95), 3),
            p99_ms=round(percentile(ms, 99), 3),
            max_ms=round(ms[-1], 3) if ms else math.nan,
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        }

    def line(self) -> str:
        return f"p50 {self.p50_ms:.2f} ms  p95 {self.p95_ms:.2f} ms  p99 {self.p99_ms:.2f} ms"


def say(text: str) -> None:
    """A human-readable progress line (the last line is reserved for the JSON)."""
    print(text, flush=True)


def finish(name: str, figures: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> None:
    """Save the raw result under ``bench/results/`` and print the figures as the last line."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    record = {"bench": name, **figures}
    raw = {**record, "raw": dict(extra or {})}
    (RESULTS / f"{name}-{stamp}.json").write_text(
        json.dumps(raw, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    print(json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str), flush=True)
