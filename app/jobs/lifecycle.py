"""A job's state changes requested from the server: create, cancel, queue again.

Every change is a conditional UPDATE (`... WHERE status = <expected>`), because a worker claims a queued job
the same way: a cancel racing the worker's start either wins (the job never starts) or sees it running and
raises the flag the worker polls with its heartbeat.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col

from app.core.config import get_settings
from app.models import FINISHED, Job, JobStatus, utcnow


class JobStateError(ValueError):
    """The action does not apply to the job in its current state; the message says why."""


def new_job(
    session: Session,
    *,
    kind: str,
    owner_id: int | None,
    queue: str = "default",
    title: str = "",
    params: dict[str, Any] | None = None,
    unit: str = "",
) -> Job:
    """Insert a queued job and flush (the caller commits, then enqueues)."""
    job = Job(
        kind=kind,
        owner_id=owner_id,
        queue=queue,
        title=title[:300],
        params_json=json.dumps(params or {}, ensure_ascii=False),
        progress_unit=unit,
    )
    session.add(job)
    session.flush()
    return job


def set_if(session: Session, job_id: int, expected: JobStatus, **values: object) -> bool:
    """Change the job only if it is still `expected`; True when it was changed (no commit)."""
    result = session.execute(
        update(Job).where(col(Job.id) == job_id, col(Job.status) == expected).values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


def request_cancel(session: Session, job: Job, *, what: str = "job") -> None:
    """Queued: cancelled at once. Running: flag it; the worker stops the job within a heartbeat.

    Commits, so the worker sees the request on its next check.
    """
    assert job.id is not None
    if set_if(session, job.id, JobStatus.queued, status=JobStatus.cancelled, finished_at=utcnow()):
        session.commit()
        session.refresh(job)
        return
    if set_if(session, job.id, JobStatus.running, cancel_requested=True):
        session.commit()
        session.refresh(job)
        return
    session.rollback()
    session.refresh(job)
    raise JobStateError(f"{what} {job.id} is already {job.status.value}; there is nothing to cancel")


def heard_from(job: Job, now: datetime | None = None) -> float | None:
    """Seconds since a lost job's worker last heartbeat, when that is within heartbeat_timeout; else None.

    The reaper may have marked it lost on a clock running ahead of the worker's, or during a database
    stall: its process may still be running, and a restarted one would share its directory.
    """
    if job.status != JobStatus.lost or job.heartbeat_at is None:
        return None
    beat = job.heartbeat_at if job.heartbeat_at.tzinfo else job.heartbeat_at.replace(tzinfo=UTC)
    ago = ((now or utcnow()) - beat).total_seconds()
    return max(ago, 0.0) if ago < get_settings().heartbeat_timeout else None


def requeue(session: Session, job: Job) -> bool:
    """Move a finished job back to queued, clearing its outcome (no commit); False if it changed meanwhile."""
    assert job.id is not None
    return set_if(
        session,
        job.id,
        job.status,
        status=JobStatus.queued,
        cancel_requested=False,
        finished_at=None,
        exit_code=None,
        error="",
        heartbeat_at=None,
        pid=None,
        # A new wait in the queue: its doorbell backs off from the first interval again.
        sent_at=None,
        sends=0,
    )


def requeue_finished(session: Session, job: Job, *, name: str) -> None:
    """Queue a finished job again (commits; the caller then sends it), refusing with JobStateError one that is
    not finished, or lost while its worker may still run. `name` is how messages call it ("sampling job 3")."""
    if job.status not in FINISHED:
        raise JobStateError(f"{name} is {job.status.value}; only a finished one can be resumed")
    if (ago := heard_from(job)) is not None:
        raise JobStateError(
            f"{name} is lost, but its worker was heard from {ago:.0f} s ago; wait until it is gone"
        )
    if not requeue(session, job):
        session.rollback()
        raise JobStateError(f"{name} changed state meanwhile; reload and try again")
    session.commit()
    session.refresh(job)
