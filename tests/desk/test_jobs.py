"""Auditor jobs: one full verification at a time, progress visible, failures reported."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.desk.jobs import Job, Progress, VerifyJobs


async def test_a_second_start_joins_the_running_job_and_progress_shows() -> None:
    jobs = VerifyJobs()
    release = asyncio.Event()
    finished: list[str] = []

    async def work(progress: Progress) -> dict[str, Any]:
        progress(5, 10)
        await release.wait()
        progress(10, 10)
        return {"ok": True, "entries": 10}

    async def finish(job: Job) -> None:
        finished.append(job.state)

    first = jobs.start("audit01", 10, work, finish)
    await asyncio.sleep(0)  # let the task run up to its first wait (no time passes)
    assert (first.state, first.done, first.total) == ("running", 5, 10)
    assert jobs.start("audit02", 10, work, finish) is first
    release.set()
    assert first.task is not None
    await first.task
    assert first.to_json()["result"] == {"ok": True, "entries": 10}
    assert (first.state, first.done, finished) == ("done", 10, ["done"])
    assert jobs.get(first.id) is first and jobs.running() is None


async def test_a_failing_job_is_reported_not_raised() -> None:
    jobs = VerifyJobs(keep=2)

    async def broken(progress: Progress) -> dict[str, Any]:
        raise OSError("disk gone")

    async def finish(job: Job) -> None:
        return None

    made = []
    for _ in range(3):
        job = jobs.start("audit01", 1, broken, finish)
        assert job.task is not None
        await job.task
        made.append(job)
    assert made[-1].state == "failed" and made[-1].error == "OSError"
    assert jobs.get(made[0].id) is None  # only the last two finished jobs are kept
    await jobs.close()
