"""Cancel and resume: the two actions a researcher takes on an existing run.

Both act on the run's job (app.jobs.lifecycle): a cancel racing the worker's start either wins (the run
never starts) or sees the run running and asks the worker to stop it. Resume queues the same run again
with checkpoint.resume on; its events continue where they stopped.
"""

from __future__ import annotations

import json

from sqlmodel import Session

from app.jobs.lifecycle import JobStateError, heard_from, requeue
from app.jobs.lifecycle import request_cancel as cancel_job
from app.models import FINISHED, Run, RunStatus
from app.runs.launch import enqueue_run
from trainer.layout import list_checkpoints


class LifecycleError(ValueError):
    """The action does not apply to the run in its current state; the message says why."""


def request_cancel(session: Session, run: Run) -> None:
    """Queued: cancelled at once. Running: flag it; the worker stops the process group within seconds."""
    try:
        cancel_job(session, run.job, what="run")
    except JobStateError as exc:
        raise LifecycleError(str(exc).replace(f"run {run.job.id}", f"run {run.id}")) from None


def can_resume(run: Run) -> bool:
    """Finished but not succeeded, not possibly still training, and a complete checkpoint exists."""
    job = run.job
    return (
        job.status in FINISHED
        and job.status != RunStatus.succeeded
        and heard_from(job) is None
        and bool(run.run_dir)
        and bool(list_checkpoints(run.run_dir))
    )


def resume(session: Session, run: Run) -> None:
    """Queue the run again with checkpoint.resume on; the trainer continues from its latest checkpoint.

    Commits before enqueueing: a worker that received the task before seeing `queued` would drop it.
    """
    job = run.job
    if not can_resume(run):
        if job.status not in FINISHED:
            raise LifecycleError(f"run {run.id} is {job.status.value}; only a finished run can be resumed")
        if job.status == RunStatus.succeeded:
            raise LifecycleError(f"run {run.id} succeeded; clone it to train further")
        if (ago := heard_from(job)) is not None:
            raise LifecycleError(
                f"run {run.id} is lost, but its worker was heard from {ago:.0f} s ago; wait until it is really gone"
            )
        raise LifecycleError(f"run {run.id} has no complete checkpoint to resume from")
    config = json.loads(run.config_json)
    config.setdefault("checkpoint", {})["resume"] = True
    if not requeue(session, job):
        session.rollback()
        raise LifecycleError(f"run {run.id} changed state meanwhile; reload and try again")
    run.resume = True
    run.config_json = json.dumps(config, ensure_ascii=False)
    session.add(run)
    session.commit()
    session.refresh(run)
    if message := enqueue_run(session, run):
        raise LifecycleError(message)
