"""Long auditor tasks (a full verification of the chain) run on the server, not the page.

The page starts a job and polls its progress; closing the page does not stop it, and
only one full verification runs at a time per node (a second request joins the running
one), because each reads the whole log. The last few finished jobs are kept so a page
that polls late still sees the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from gateway.logs import get_logger

Progress = Callable[[int, int], None]
"""``progress(done, total)``; may be called from a worker thread."""
Work = Callable[[Progress], Awaitable[dict[str, Any]]]
Finish = Callable[["Job"], Awaitable[None]]

KEEP_FINISHED = 8
_log = get_logger("tongban.desk")


@dataclass
class Job:
    """One running or finished job; mutable because its progress moves."""

    id: str
    started_by: str
    total: int
    done: int = 0
    state: Literal["running", "done", "failed"] = "running"
    result: dict[str, Any] | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, max(total, done)

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.id,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "started_by": self.started_by,
            "result": self.result,
            "error": self.error,
        }


class VerifyJobs:
    """The node's auditor jobs (in memory: a restart ends them, and they can be rerun)."""

    def __init__(self, keep: int = KEEP_FINISHED) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._keep = keep

    def running(self) -> Job | None:
        for job in self._jobs.values():
            if job.state == "running":
                return job
        return None

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def start(self, started_by: str, total: int, work: Work, finish: Finish) -> Job:
        """Start ``work`` unless a job runs already (then that one is returned)."""
        current = self.running()
        if current is not None:
            return current
        job = Job(id=secrets.token_urlsafe(12), started_by=started_by, total=total)
        job.task = asyncio.create_task(self._run(job, work, finish), name=f"desk-job-{job.id}")
        self._jobs[job.id] = job
        while len(self._jobs) > self._keep:
            oldest = next(iter(self._jobs))
            if self._jobs[oldest].state == "running":
                break
            del self._jobs[oldest]
        return job

    async def _run(self, job: Job, work: Work, finish: Finish) -> None:
        try:
            job.result = await work(job.progress)
            job.state = "done"
        except asyncio.CancelledError:
            job.state, job.error = "failed", "stopped"
            raise
        except Exception as exc:  # reported on the page; the node keeps running
            _log.exception("desk job failed", job=job.id)
            job.state, job.error = "failed", type(exc).__name__
        try:
            await finish(job)
        except Exception:  # the result stands on the page even if its entry failed
            _log.exception("desk job could not record its end", job=job.id)

    async def close(self) -> None:
        """Stop running jobs (node shutdown)."""
        for job in self._jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job.task


DESK_JOBS = web.AppKey("desk_jobs", VerifyJobs)
