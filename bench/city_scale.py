"""Bench 5: the headroom one node has at the peak hour of a busy city.

Tongliao (通辽) reported 49.51 million e-license calls in ten months: about 1.9 per
second averaged over every second of those months. Calls are not spread evenly, so
the bench states its peak assumption and measures against it:

* office hours only: 21 working days a month, 8 hours a day -> 49.51M / (10 x 21 x 8 x
  3600 s) = 8.2 calls/s on average while the halls are open;
* the busiest hour carries 3x that office-hour average (Monday mornings, the first day
  after a holiday): ~25 calls/s — the *peak hour*;
* inside that hour, bursts of 4x the peak-hour rate for seconds at a time: ~100 calls/s.

Every call is a partner ``POST /v1/licenses/verify`` with its own token and a durable
audit entry (the most expensive call a partner makes). The node (one process, default
configuration: embedded replay cache) is driven open-loop at the peak-hour and burst
rates; the bench reports latency, the node's CPU share at those rates, and its peak
(closed loop). Headroom = peak / peak-hour rate.

    .venv/bin/python -m bench.city_scale --seconds 20
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.machine import describe
from bench.node_tree import make_tree, spawn, stop, wait_for_port
from bench.stats import RESULTS, finish, say
from bench.verify_path import Phase, candidate_licenses, valid_license

CALLS = 49_510_000
MONTHS = 10
AVERAGE = CALLS / (MONTHS * 30.44 * 86_400)
OFFICE = CALLS / (MONTHS * 21 * 8 * 3600)
PEAK_HOUR_FACTOR = 3.0
BURST_FACTOR = 4.0
PEAK_HOUR = OFFICE * PEAK_HOUR_FACTOR
BURST = PEAK_HOUR * BURST_FACTOR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if not 0 < args.seconds <= 120:
        parser.error("--seconds must be in (0, 120]")
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="city-scale-", dir=RESULTS))
    node = None
    try:
        say(
            f"city scale: Tongliao {CALLS:,} calls / {MONTHS} months = {AVERAGE:.2f}/s average, "
            f"{OFFICE:.1f}/s in office hours, peak hour {PEAK_HOUR:.0f}/s, bursts {BURST:.0f}/s"
        )
        tree = make_tree(work / "net")
        candidates = candidate_licenses(tree)
        node = spawn(
            ["-m", "gateway", "serve", "--config", str(tree.config_path()), "--log-level", "INFO"],
            work / "node.log",
        )
        wait_for_port(tree.port, node)
        _, body, _ = valid_license(tree, candidates)
        (work / "body.json").write_bytes(body)
        phase = Phase(work, tree, work / "body.json", body)
        runs: dict[str, dict[str, Any]] = {}
        for label, rate in (("peak_hour", PEAK_HOUR), ("burst", BURST)):
            r = phase.run(
                f"{label} at {rate:.0f}/s", tree.port, seconds=args.seconds, connections=64,
                rate=rate, tokens=int(rate * args.seconds) + 10, server_pids=(node.pid,),
            )  # fmt: skip
            r["cpu_share"] = round(r["server_cpu_per_request_us"] * r["throughput"] / 1e6, 3)
            runs[label] = r
            say(f"    node CPU share at {rate:.0f}/s: {r['cpu_share']:.0%} of one core")
        peak = phase.run(
            "peak (closed loop)", tree.port, seconds=args.seconds, connections=64,
            tokens=int(6000 * args.seconds), warmup=200, server_pids=(node.pid,),
        )  # fmt: skip
        headroom = peak["ok_throughput"] / PEAK_HOUR
        say(
            f"  headroom: peak {peak['ok_throughput']:,.0f}/s = {headroom:.1f}x the peak hour "
            f"({PEAK_HOUR:.0f}/s), {peak['ok_throughput'] / BURST:.1f}x the bursts, "
            f"{peak['ok_throughput'] / AVERAGE:,.0f}x the ten-month average"
        )
        for r in (*runs.values(), peak):
            r.pop("receipts", None)
        hour = runs["peak_hour"]
        finish(
            "city_scale",
            {
                "throughput": round(peak["ok_throughput"]),
                "p50_ms": hour["p50_ms"],
                "p95_ms": hour["p95_ms"],
                "p99_ms": hour["p99_ms"],
                "limit": round(PEAK_HOUR, 1),
                "ratio": round(headroom, 2),
                "headroom": round(headroom, 2),
                "average_rate": round(AVERAGE, 2),
                "office_hours_rate": round(OFFICE, 2),
                "peak_hour_rate": round(PEAK_HOUR, 1),
                "burst_rate": round(BURST, 1),
                "peak_hour_cpu_share": hour["cpu_share"],
                "burst": {k: runs["burst"][k] for k in ("p50_ms", "p95_ms", "p99_ms", "cpu_share")},
                "errors": {k: v for r in runs.values() for k, v in r["codes"].items()},
            },
            {"machine": describe(), "runs": runs, "peak": peak},
        )
    finally:
        if node is not None:
            stop(node)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
