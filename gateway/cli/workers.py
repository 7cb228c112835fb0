"""The supervisor of ``tongban serve --workers N``: one node, N processes, one port.

A Python process serves from one event loop on one core; a node that must use every
core of its machine runs several. The supervisor does no request work itself: it
starts ``tongban serve --reuse-port`` N times (the kernel spreads connections between
sockets bound with ``SO_REUSEPORT``), restarts a worker that dies, and stops them all
on SIGINT or SIGTERM. The first worker is started alone and must be listening before
the others start, so schema set-up and the start-up audit entry (``config.change``)
happen once, not in a race. A worker says it is listening by writing one byte to the
pipe named by ``TONGBAN_READY_FD`` (the port alone cannot tell, since every worker
shares it): only then does the supervisor count it as running.

Several processes share the node's SQLite files (audit log, license register, outbox),
which are written to be safe for that. The replay cache and the rate limits must be
shared too, so more than one worker needs ``redis_url`` (SPEC 9): the embedded replay
cache would let a token be replayed against a second process.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from collections import deque
from types import FrameType

from gateway.cli.common import fail
from gateway.config import NodeConfig
from gateway.logs import get_logger

MAX_WORKERS = 64
START_WITHIN = 60.0
"""Seconds a worker has to start listening."""
READY_FD = "TONGBAN_READY_FD"
"""Environment variable naming the pipe a worker writes one byte to once it listens."""
STOP_WITHIN = 30.0
"""Seconds workers have to finish their requests after SIGTERM before SIGKILL."""
RESTARTS_PER_MINUTE = 5
"""More restarts than this in a minute is a crash loop: stop everything and exit 1."""

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_log = get_logger("tongban.workers")


def worker_command(args: argparse.Namespace, cfg: NodeConfig) -> list[str]:
    """The command line of one worker: this very ``serve``, one process, port shared."""
    node = ["--config", str(args.config.resolve())] if args.config else ["--node", args.node]
    return [
        sys.executable, "-m", "gateway", "serve", *node, "--port", str(cfg.port),
        "--log-level", args.log_level, "--reuse-port",
    ]  # fmt: skip


def tell_ready() -> None:
    """In a worker: tell the supervisor (if any) that this process now listens."""
    fd = os.environ.pop(READY_FD, None)
    if fd is None or not fd.isdigit():
        return
    try:
        os.write(int(fd), b"1")
    except OSError:
        pass  # the supervisor went away; it is not ours to fail over that
    finally:
        os.close(int(fd))


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM this worker when the supervisor dies.

    Without it a supervisor killed with SIGKILL leaves its workers serving with nobody
    to stop them, and a restarted supervisor would start a second set beside them.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Worker:
    """One worker process and the read end of its readiness pipe."""

    def __init__(self, command: list[str]) -> None:
        ready_r, ready_w = os.pipe()
        try:
            self.proc = subprocess.Popen(  # noqa: S603 (this interpreter, our arguments)
                command,
                pass_fds=(ready_w,),
                env={**os.environ, READY_FD: str(ready_w)},
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except BaseException:
            os.close(ready_r)
            raise
        finally:
            os.close(ready_w)
        self.ready_fd: int | None = ready_r
        self.ready = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float) -> bool:
        """True once the worker said it listens; False if it died or time ran out."""
        if self.ready or self.ready_fd is None:
            return self.ready
        readable, _, _ = select.select([self.ready_fd], [], [], timeout)
        if readable:
            self.ready = os.read(self.ready_fd, 1) == b"1"
            self.close_pipe()
        return self.ready

    def close_pipe(self) -> None:
        if self.ready_fd is not None:
            os.close(self.ready_fd)
            self.ready_fd = None


class Supervisor:
    """Keeps N workers running until told to stop."""

    def __init__(self, command: list[str], count: int, cfg: NodeConfig) -> None:
        self.command = command
        self.count = count
        self.cfg = cfg
        self.workers: list[Worker] = []
        self.stopping = False
        self._restarts: deque[float] = deque()

    def _spawn(self) -> Worker:
        worker = Worker(self.command)
        _log.info("worker.started", node=self.cfg.id, pid=worker.pid)
        return worker

    def _stop(self, signum: int, _: FrameType | None) -> None:
        self.stopping = True

    def _until_ready(self, worker: Worker) -> bool:
        """True once ``worker`` listens, False if told to stop meanwhile (not an error)."""
        deadline = time.monotonic() + START_WITHIN
        while not worker.wait_ready(0.2):
            if self.stopping:  # Ctrl-C during start: the workers got it too
                return False
            if worker.proc.poll() is not None:
                self.shutdown()
                fail(f"a worker exited with {worker.proc.returncode} before listening", 1)
            if time.monotonic() > deadline:
                self.shutdown()
                fail(f"a worker did not listen on port {self.cfg.port} in time", 1)
        return True

    def start(self) -> None:
        """Start the first worker, then the others once it listens; return when all do
        (or when told to stop: ``watch`` then stops them at once)."""
        self.workers.append(self._spawn())
        if not self._until_ready(self.workers[0]):
            return
        self.workers += [self._spawn() for _ in range(self.count - 1)]
        if not all(self._until_ready(worker) for worker in self.workers[1:]):
            return
        _log.info(
            "workers.running",
            node=self.cfg.id,
            port=self.cfg.port,
            pids=[w.pid for w in self.workers],
        )

    def watch(self) -> int:
        """Restart workers that die until stopped; 0 after a clean stop, 1 on a crash loop."""
        while not self.stopping:
            time.sleep(0.2)
            for i, worker in enumerate(self.workers):
                if not worker.ready and worker.wait_ready(0):
                    _log.info("worker.listening", node=self.cfg.id, pid=worker.pid)
                if self.stopping or worker.proc.poll() is None:
                    continue
                worker.close_pipe()
                code = worker.proc.returncode
                _log.warning("worker.exited", node=self.cfg.id, pid=worker.pid, code=code)
                now = time.monotonic()
                self._restarts.append(now)
                while self._restarts and self._restarts[0] < now - 60:
                    self._restarts.popleft()
                if len(self._restarts) > RESTARTS_PER_MINUTE:
                    _log.error("workers.crash_loop", node=self.cfg.id)
                    self.shutdown()
                    return 1
                self.workers[i] = self._spawn()
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        """SIGTERM every worker, wait for them, SIGKILL the ones that do not stop."""
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.proc.terminate()
        deadline = time.monotonic() + STOP_WITHIN
        for worker in self.workers:
            try:
                worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
            worker.close_pipe()
        _log.info("workers.stopped", node=self.cfg.id)


def supervise(args: argparse.Namespace, cfg: NodeConfig) -> int:
    """Run ``args.workers`` processes of the node ``cfg`` until SIGINT or SIGTERM."""
    if not 1 <= args.workers <= MAX_WORKERS:
        fail(f"--workers must be between 1 and {MAX_WORKERS}")
    if args.reuse_port:
        fail("--reuse-port is for the workers a supervisor starts, not with --workers")
    if cfg.redis_url is None:
        fail(
            f"--workers {args.workers} needs redis_url in [node] of the node's file: "
            "several processes must share one replay cache (SPEC 9)"
        )
    supervisor = Supervisor(worker_command(args, cfg), args.workers, cfg)
    previous = {
        sig: signal.signal(sig, supervisor._stop) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        supervisor.start()
        return supervisor.watch()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
