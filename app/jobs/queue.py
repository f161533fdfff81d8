"""Sending jobs to workers: the one place app/ talks to Celery.

Jobs are sent by task name (`jobs.run`), so app/ never imports worker/ (Celery's advice for producers that
must not import task code). The database is the source of truth and the broker only a doorbell: a queued
job whose message was lost (a Redis restarted without persistence, a broker file deleted) is sent again by
`resend_queued`, which every worker runs when it starts and every reaper pass runs with a backoff. A
duplicate message is harmless, because a worker starts a job only through the conditional claim.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import Update, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.core.config import Settings, get_settings
from app.models import Job, JobStatus, utcnow

if TYPE_CHECKING:
    from celery import Celery

TASK = "jobs.run"
MAX_RESEND_BACKOFF = 3600.0  # seconds: a job waiting behind a day-long run is rung at most hourly

log = logging.getLogger("sftlab.jobs")


@lru_cache
def _producer(broker: str) -> Celery:
    # Built for the broker of the settings in force, not worker.celery_app's import-time one, so a web
    # server (or test) whose SFTLAB_BROKER_URL changed still reaches the workers that serve it.
    from celery import Celery

    app = Celery("sftlab-producer", broker=broker)
    # A request waits about a second for a broker that is down, then says so (not kombu's long default).
    app.conf.broker_transport_options = {"max_retries": 3, "interval_start": 0, "interval_step": 0.3}
    app.conf.task_publish_retry_policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0.3}
    return app


def send(job: Job, *, settings: Settings | None = None) -> str:
    """Send `jobs.run(job.id)` to the job's queue; returns the message's task id. Raises if the broker is down.

    Never executed in-process: a trainer inside a web request would hold it for minutes. In unit tests the
    message waits in the test's own broker file, or the test replaces this function to run the job itself.
    """
    assert job.id is not None
    task_id = uuid.uuid4().hex
    _producer((settings or get_settings()).celery_broker).send_task(
        TASK, args=[job.id], queue=job.queue, task_id=task_id
    )
    return task_id


def record_sent(job_id: int) -> Update:
    """The UPDATE that records one more doorbell for a job (after its message went to the broker)."""
    return update(Job).where(col(Job.id) == job_id).values(sent_at=utcnow(), sends=col(Job.sends) + 1)


def enqueue_or_fail(session: Session, job: Job) -> str:
    """Send the (committed, queued) job and commit when it was sent; if the broker is unreachable the job
    fails with the reason. Returns "" on success, else the message to show."""
    try:
        send(job)
    except Exception as exc:  # noqa: BLE001 - kombu/redis raise many kinds; all mean "not queued"
        message = f"the task queue is unreachable ({type(exc).__name__}: {exc}); the job was not started"
        session.execute(
            update(Job)
            .where(col(Job.id) == job.id, col(Job.status) == JobStatus.queued)
            .values(status=JobStatus.failed, error=message, finished_at=utcnow())
        )
        session.commit()
        session.refresh(job)
        return message
    assert job.id is not None
    session.execute(record_sent(job.id))
    session.commit()
    session.refresh(job)
    return ""


def resend_due(job: Job, now: datetime, base: float) -> bool:
    """Whether a queued job's doorbell is due again: `base` seconds after the first send, then doubling."""
    if job.sent_at is None:
        return True
    sent = job.sent_at if job.sent_at.tzinfo else job.sent_at.replace(tzinfo=now.tzinfo)
    wait = min(base * 2 ** max(job.sends - 1, 0), MAX_RESEND_BACKOFF)
    return (now - sent).total_seconds() >= wait


def resend_queued(
    engine: Engine,
    *,
    settings: Settings | None = None,
    queues: list[str] | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> list[int]:
    """Send again the queued jobs (of `queues`, or all) whose message may be lost; returns their ids.

    `force`: every one at once (a worker that just started: whatever the broker held before a restart is
    gone or will be served anyway). Otherwise a job is rung `resend_interval` s after its last send, then
    with a doubling backoff. Several processes may run this at once: the conditional UPDATE on `sent_at`
    lets one of them send.
    """
    settings = settings or get_settings()
    now = now or utcnow()
    stmt = select(Job).where(Job.status == JobStatus.queued)
    if queues is not None:
        stmt = stmt.where(col(Job.queue).in_(queues))
    with Session(engine) as session:
        queued = session.exec(stmt.order_by(col(Job.id))).all()
    sent = []
    for job in queued:
        if not force and not resend_due(job, now, settings.resend_interval):
            continue
        with engine.begin() as conn:
            guard = col(Job.sent_at).is_(None) if job.sent_at is None else col(Job.sent_at) == job.sent_at
            won = conn.execute(
                update(Job)
                .where(col(Job.id) == job.id, col(Job.status) == JobStatus.queued, guard)
                .values(sent_at=now, sends=job.sends + 1)
            )
        if won.rowcount != 1:
            continue
        try:
            send(job, settings=settings)
        except Exception as exc:  # noqa: BLE001 - the next pass tries again
            log.warning("job %s: could not send it again: %s", job.id, exc)
            continue
        assert job.id is not None
        sent.append(job.id)
    if sent:
        log.info("sent %d queued job(s) again: %s", len(sent), sent)
    return sent
