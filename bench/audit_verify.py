"""Bench 3: ``tongban audit verify`` on a 1,000,000-entry export, against raw SHA-256.

The export is built once by ``bench.log_builder`` (through the store's encoder and
``gateway.audit.export.export``) and cached under ``bench/results/cache/``. The
verifier runs as its own process — ``python -m gateway audit verify DIR --vkey FILE --json`` when
the CLI has the command, else ``gateway.audit.verify.verify_export`` in a child.

Time and memory come from separate runs. The timed runs (``--repeat``, median
reported) are not observed while they run. One more run is sampled every 10 ms for
the memory of the process *and its workers*: the proportional set size (PSS: a page
shared by forked workers counts once in total) is the figure, the plain RSS sum is
recorded beside it. Reading ``/proc/<pid>/smaps_rollup`` for three processes every
10 ms costs the kernel about 6 ms each time, a fifth of a core, which on a 2-core
machine slowed the verifier it was watching by 0.6 s; its wall time is recorded as
``seconds_sampled``. The limit is plain ``hashlib.sha256`` over the same
``entries.jsonl`` bytes in one thread (and, for reference, the leaf hash of every
line). Memory is measured at 100k and 1M entries to show it does not grow with the
log.

Targets: >= 200,000 entries/s, peak memory < 150 MB and flat from 100k to 1M.

    .venv/bin/python -m bench.audit_verify --seconds 10
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.log_builder import cached_export
from bench.machine import describe, peak_rss_mib, tree_pss_mib, tree_rss_mib
from bench.node_tree import ROOT
from bench.stats import RESULTS, finish, say

CACHE = RESULTS / "cache"
TARGET_RATE = 200_000
TARGET_MIB = 150.0


def _command(export_dir: Path) -> tuple[list[str], str]:
    if importlib.util.find_spec("gateway.cli.audit_cmd") is not None:
        vkey = export_dir / "log.vkey"  # pinned, as an auditor would (from a trusted copy)
        return [
            sys.executable, "-m", "gateway", "audit", "verify", str(export_dir),
            "--vkey", str(vkey), "--json",
        ], "tongban audit verify DIR --vkey FILE --json"  # fmt: skip
    return [sys.executable, "-m", "bench.audit_verify", "--child", str(export_dir)], (
        "gateway.audit.verify.verify_export (no audit CLI yet)"
    )


def run_verify(export_dir: Path, repeat: int = 3) -> dict[str, Any]:
    """Run the verifier as a process: median wall time of ``repeat`` unobserved runs,
    then one run sampled for the peak memory of its process tree; and its report."""
    cmd, how = _command(export_dir)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
        _check(proc.returncode, proc.stderr)
    t0 = time.perf_counter()
    popen = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak_tree = peak_pss = peak_single = 0.0
    while popen.poll() is None:
        try:
            peak_tree = max(peak_tree, tree_rss_mib(popen.pid))
            peak_pss = max(peak_pss, tree_pss_mib(popen.pid))
            peak_single = max(peak_single, peak_rss_mib(popen.pid))
        except OSError:
            pass
        time.sleep(0.01)
    sampled = time.perf_counter() - t0
    out, err = popen.communicate()
    _check(popen.returncode, err)
    text = out.decode()
    report = json.loads(text[text.index("{") :])
    return {
        "how": how,
        "seconds": statistics.median(times),
        "seconds_all": [round(t, 3) for t in times],
        "seconds_sampled": sampled,
        "peak_tree_mib": round(peak_pss, 1),
        "peak_tree_rss_mib": round(peak_tree, 1),
        "peak_main_mib": round(peak_single, 1),
        "report": report,
    }


def _check(returncode: int, stderr: bytes) -> None:
    if returncode != 0:
        raise RuntimeError(f"verify failed ({returncode}): {stderr.decode()[-500:]}")


def raw_sha256(entries: Path) -> dict[str, float]:
    """One thread: SHA-256 over the file's bytes, and the leaf hash of every line."""
    t0 = time.perf_counter()
    digest = hashlib.sha256()
    with entries.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    stream = time.perf_counter() - t0
    t0 = time.perf_counter()
    sha = hashlib.sha256
    lines = 0
    with entries.open("rb", buffering=1 << 20) as f:
        for line in f:
            sha(b"\x00" + line[:-1]).digest()
            lines += 1
    leaves = time.perf_counter() - t0
    return {"stream_seconds": stream, "leaf_seconds": leaves, "lines": lines}


def child(export_dir: str) -> None:
    """The verifier process when the CLI has no ``audit verify`` yet."""
    from gateway.audit.verify import verify_export
    from gateway.encoding import b64u_encode

    report = verify_export(export_dir)
    print(
        json.dumps(
            {
                "ok": report.ok,
                "entries": report.entries,
                "root": b64u_encode(report.root),
                "checkpoints": report.checkpoints,
                "first_bad": None if report.first_bad is None else vars(report.first_bad),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="unused; runs are by size")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="size for the flatness check")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size (median)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    runs = {}
    for n in (args.small, args.entries):
        export_dir = cached_export(CACHE, n, say)
        run = run_verify(export_dir, args.repeat)
        if not run["report"]["ok"] or run["report"]["entries"] != n:
            raise SystemExit(f"verify did not accept the export: {run['report']}")
        run["rate"] = n / run["seconds"]
        runs[n] = run
        say(
            f"  verify {n:,} entries: {run['seconds']:.2f} s = {run['rate']:,.0f} entries/s "
            f"(median of {run['seconds_all']}; {run['seconds_sampled']:.2f} s while sampled), "
            f"peak {run['peak_tree_mib']:.0f} MiB PSS (all processes; RSS sum "
            f"{run['peak_tree_rss_mib']:.0f}), "
            f"{run['peak_main_mib']:.0f} MiB (main); {run['report']['checkpoints']} checkpoints"
        )
    big = runs[args.entries]
    entries_file = cached_export(CACHE, args.entries, say) / "entries.jsonl"
    raw = raw_sha256(entries_file)
    size_mib = entries_file.stat().st_size / (1 << 20)
    stream_rate = args.entries / raw["stream_seconds"]
    leaf_rate = args.entries / raw["leaf_seconds"]
    say(
        f"  raw SHA-256 of the same {size_mib:,.0f} MiB: {raw['stream_seconds']:.2f} s = "
        f"{stream_rate:,.0f} entries/s; leaf hash per line: {leaf_rate:,.0f} entries/s"
    )
    ratio = big["rate"] / stream_rate
    small_run = runs[args.small]
    # Start-up (imports, line offsets, checkpoint signatures) is paid once per run; the
    # rate between the two sizes is what each further entry costs.
    marginal = (args.entries - args.small) / (big["seconds"] - small_run["seconds"])
    say(f"  marginal rate between {args.small:,} and {args.entries:,}: {marginal:,.0f} entries/s")
    growth = big["peak_tree_mib"] - runs[args.small]["peak_tree_mib"]
    met = big["rate"] >= TARGET_RATE and big["peak_tree_mib"] < TARGET_MIB and growth < 20
    finish(
        "audit_verify",
        {
            "throughput": round(big["rate"]),
            "p50_ms": None,
            "p95_ms": None,
            "p99_ms": None,
            "limit": round(stream_rate),
            "ratio": round(ratio, 3),
            "leaf_hash_rate": round(leaf_rate),
            "marginal_rate": round(marginal),
            "peak_mib": big["peak_tree_mib"],
            "peak_main_mib": big["peak_main_mib"],
            "peak_mib_small": runs[args.small]["peak_tree_mib"],
            "memory_growth_mib": round(growth, 1),
            "entries": args.entries,
            "export_mib": round(size_mib, 1),
            "seconds": round(big["seconds"], 2),
            "seconds_sampled": round(big["seconds_sampled"], 2),
            "how": big["how"],
            "met": met,
        },
        {"machine": describe(), "runs": runs, "raw": raw},
    )


if __name__ == "__main__":
    main()
