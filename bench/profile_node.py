"""Where one node process spends its time on the verify path: py-spy under load.

Starts Ji'an (the node of ``bench.verify_path``) under ``py-spy record``, drives it
with the closed-loop generator for ``--seconds``, and prints the functions with the
most samples, by own time and by time including callees, per thread. The raw
collapsed stacks are kept next to the summary for flame graphs
(``bench/results/profile-<time>/``). Needs py-spy (``pip install py-spy``) and the
right to trace a child process (root, or ``ptrace_scope`` 0).

    .venv/bin/python -m bench.profile_node --seconds 10
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.node_tree import JIAN, QUZHOU, make_tree, spawn, stop, wait_for_port
from bench.presign import presign
from bench.stats import RESULTS, say
from bench.verify_path import PATH, candidate_licenses, valid_license


def summarise(raw: Path, top: int) -> str:
    """Own and inclusive sample shares of the busiest functions, from collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        threads[frames[0]] += count
        own[frames[-1]] += count
        for frame in set(frames[1:]):
            inclusive[frame] += count
    if not total:
        return "no samples"
    out = [f"{total} samples"]
    out += [f"  thread {n / total:6.1%}  {name}" for name, n in threads.most_common()]
    out.append("own time:")
    out += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    out.append("including callees:")
    out += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of the event loop's thread and of all the others.

    Python does not name its threads for the kernel, so the split is by thread id:
    the main thread's id is the process id."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = "event loop (main thread)" if task.name == str(pid) else "other threads"
        fields = stat[stat.rindex(")") + 2 :].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, help="open loop at this rate (default: closed)")
    parser.add_argument("--top", type=int, default=45, help="functions listed per table")
    parser.add_argument("--redis", action="store_true", help="use a Redis replay cache")
    parser.add_argument("--no-spy", action="store_true", help="only CPU per thread, no py-spy")
    args = parser.parse_args()
    if shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = RESULTS / f"profile-{time.strftime('%Y%m%dT%H%M%S')}"
    work.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        redis_url = None
        if args.redis:
            from bench.node_tree import start_redis

            redis, redis_url = start_redis(work)
            procs.append(redis)
        tree = make_tree(work / "net", redis_url=redis_url)
        candidates = candidate_licenses(tree)
        node = spawn(
            ["-m", "gateway", "serve", "--config", str(tree.config_path()), "--log-level",
             "INFO"],
            work / "node.log",
        )  # fmt: skip
        procs.append(node)
        wait_for_port(tree.port, node)
        _, body, _ = valid_license(tree, candidates)
        (work / "body.json").write_bytes(body)
        count = int((args.rate or 3000) * args.seconds) + 300
        presign(
            work / "tokens.txt", signer_config=tree.config_path(QUZHOU), count=count,
            iss=QUZHOU, aud=JIAN, method="POST", path_qs=PATH, body=body,
        )  # fmt: skip
        raw = work / "stacks.txt"
        spy = None
        if not args.no_spy:
            spy = subprocess.Popen(
                [pyspy, "record", "--pid", str(node.pid), "--rate", "250", "--format", "raw",
                 "--threads", "--output", str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            procs.append(spy)
            time.sleep(1.0)
        gen_args = [
            "-m", "bench.loadgen", "--url", f"{tree.url}{PATH}", "--body",
            str(work / "body.json"), "--tokens", str(work / "tokens.txt"), "--connections",
            str(args.connections), "--seconds", str(args.seconds), "--warmup", "300",
            "--out", str(work / "load.json"),
        ]  # fmt: skip
        if args.rate:
            gen_args += ["--rate", str(args.rate)]
        cpu0 = thread_cpu(node.pid)
        gen = spawn(gen_args, work / "loadgen.log")
        gen.wait(timeout=args.seconds + 120)
        cpu1 = thread_cpu(node.pid)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        load = json.loads((work / "load.json").read_text())
        say(
            f"load: {load['throughput']:,.0f} req/s, p50 {load['p50_ms']:.1f} "
            f"p99 {load['p99_ms']:.1f} ms, statuses {load['statuses']}"
        )
        calls = load["requests"] + 300
        per_thread = {name: (cpu1[name] - cpu0.get(name, 0.0)) / calls * 1e6 for name in cpu1}
        lines = [f"  {us:8.1f} us/call  {name}" for name, us in sorted(
            per_thread.items(), key=lambda kv: -kv[1]) if us >= 0.5]  # fmt: skip
        say(f"server CPU per call by thread (sum {sum(per_thread.values()):.0f} us, "
            "py-spy's sampling included when it ran):\n" + "\n".join(lines))  # fmt: skip
        if spy is not None:
            summary = summarise(raw, args.top)
            (work / "summary.txt").write_text(summary + "\n", encoding="utf-8")
            print(summary)
        say(f"stacks and summary in {work}")
    finally:
        for p in reversed(procs):
            stop(p)


if __name__ == "__main__":
    main()
