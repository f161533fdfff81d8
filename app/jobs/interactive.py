"""Short jobs a request waits for (an estimate, a rendered sample): queued on their own queue, bounded.

The web process never runs torch or transformers itself: it queues a job for the interactive worker and
waits for its result in a thread-pool thread. At most `interactive_limit` such jobs are queued or running
at once; past that a request is answered 429 with a retry hint rather than piling up waiting threads.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.core.config import Settings, get_settings
from app.jobs.lifecycle import JobStateError, new_job, request_cancel
from app.jobs.queue import enqueue_or_fail
from app.models import FINISHED, Job, JobStatus


class Busy(Exception):
    """Too many short jobs are waiting; the client should retry after `retry_after` seconds."""

    def __init__(self, retry_after: int, waiting: int):
        super().__init__(f"{waiting} short jobs are waiting for a worker; retry in {retry_after} s")
        self.retry_after = retry_after


class Unavailable(Exception):
    """The job could not be sent, or no worker finished it in time; the message says which."""


def submit(
    engine: Engine,
    *,
    kind: str,
    owner_id: int | None,
    params: dict[str, Any],
    title: str,
    settings: Settings | None = None,
) -> int:
    """Queue a short job on the interactive queue and send it; returns its id. Busy when the queue is full."""
    settings = settings or get_settings()
    with Session(engine, expire_on_commit=False) as session:
        waiting = session.exec(
            select(func.count())
            .select_from(Job)
            .where(
                Job.queue == settings.interactive_queue,
                col(Job.status).in_([JobStatus.queued, JobStatus.running]),
            )
        ).one()
        if waiting >= settings.interactive_limit:
            raise Busy(retry_after=max(2, int(waiting) // 2), waiting=int(waiting))
        job = new_job(
            session,
            kind=kind,
            owner_id=owner_id,
            queue=settings.interactive_queue,
            title=title,
            params=params,
        )
        session.commit()
        if message := enqueue_or_fail(session, job):
            raise Unavailable(message)
        assert job.id is not None
        return job.id


def wait(engine: Engine, job_id: int, *, timeout: float, interval: float = 0.05) -> Job:
    """The job once finished; after `timeout` seconds it is cancelled and Unavailable is raised."""
    deadline = time.monotonic() + timeout
    pause = interval
    while True:
        with Session(engine, expire_on_commit=False) as session:
            job = session.get_one(Job, job_id)
            if job.status in FINISHED:
                return job
            if time.monotonic() >= deadline:
                with Session(engine) as s2:
                    try:
                        request_cancel(s2, s2.get_one(Job, job_id))
                    except JobStateError:
                        pass
                where = "no worker took it" if job.status == JobStatus.queued else "it was still running"
                raise Unavailable(f"job {job_id} did not finish within {timeout:.0f} s ({where})")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)


def run(
    engine: Engine, *, kind: str, owner_id: int | None, params: dict[str, Any], title: str, timeout: float
) -> Job:
    """submit() then wait(): the finished job. Busy, or Unavailable when it could not be sent or finish."""
    return wait(
        engine, submit(engine, kind=kind, owner_id=owner_id, params=params, title=title), timeout=timeout
    )


def result_of(job: Job) -> dict[str, Any]:
    return json.loads(job.result_json) if job.result_json else {}
