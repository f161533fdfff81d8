"""Cancel and resume: the two actions a researcher takes on an existing run.

Status changes are conditional UPDATEs (`... WHERE status = <expected>`), because the worker claims a
queued run the same way: a cancel racing the worker's start either wins (the run never starts) or
sees the run running and asks the executor to stop it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import update
from sqlmodel import Session, col

from app.core.config import get_settings
from app.models import FINISHED, Run, RunStatus, utcnow
from app.runs.launch import enqueue_or_fail
from trainer.layout import list_checkpoints


class LifecycleError(ValueError):
    """The action does not apply to the run in its current state; the message says why."""


def _set_if(session: Session, run: Run, expected: RunStatus, **values: object) -> bool:
    result = session.execute(
        update(Run).where(col(Run.id) == run.id, col(Run.status) == expected).values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


def request_cancel(session: Session, run: Run) -> None:
    """Queued: cancelled at once. Running: flag it; the executor stops the process group within seconds.

    Commits, so the worker sees the request on its next check.
    """
    if _set_if(session, run, RunStatus.queued, status=RunStatus.cancelled, finished_at=utcnow()):
        session.commit()
        session.refresh(run)
        return
    if _set_if(session, run, RunStatus.running, cancel_requested=True):
        session.commit()
        session.refresh(run)
        return
    session.rollback()
    session.refresh(run)
    raise LifecycleError(f"run {run.id} is already {run.status.value}; there is nothing to cancel")


def heard_from(run: Run, now: datetime | None = None) -> float | None:
    """Seconds since a lost run's worker last heartbeat, when that is within heartbeat_timeout; else None.

    The reaper may have marked it lost on a clock running ahead of the worker's, or during a database
    stall: its trainer may still be running, and a resumed one would share its run directory.
    """
    if run.status != RunStatus.lost or run.heartbeat_at is None:
        return None
    beat = run.heartbeat_at if run.heartbeat_at.tzinfo else run.heartbeat_at.replace(tzinfo=UTC)
    ago = ((now or utcnow()) - beat).total_seconds()
    return max(ago, 0.0) if ago < get_settings().heartbeat_timeout else None


def can_resume(run: Run) -> bool:
    """Finished but not succeeded, not possibly still training, and a complete checkpoint exists."""
    return (
        run.status in FINISHED
        and run.status != RunStatus.succeeded
        and heard_from(run) is None
        and bool(run.run_dir)
        and bool(list_checkpoints(run.run_dir))
    )


def resume(session: Session, run: Run) -> None:
    """Queue the run again with checkpoint.resume on; the trainer continues from its latest checkpoint.

    Commits before enqueueing: a worker that received the task before seeing `queued` would drop it.
    """
    if not can_resume(run):
        if run.status not in FINISHED:
            raise LifecycleError(f"run {run.id} is {run.status.value}; only a finished run can be resumed")
        if run.status == RunStatus.succeeded:
            raise LifecycleError(f"run {run.id} succeeded; clone it to train further")
        if (ago := heard_from(run)) is not None:
            raise LifecycleError(
                f"run {run.id} is lost, but its worker was heard from {ago:.0f} s ago; "
                "wait until it is really gone"
            )
        raise LifecycleError(f"run {run.id} has no complete checkpoint to resume from")
    config = json.loads(run.config_json)
    config.setdefault("checkpoint", {})["resume"] = True
    if not _set_if(
        session,
        run,
        run.status,
        status=RunStatus.queued,
        resume=True,
        config_json=json.dumps(config, ensure_ascii=False),
        cancel_requested=False,
        finished_at=None,
        exit_code=None,
        error="",
        heartbeat_at=None,
        pid=None,
    ):
        session.rollback()
        raise LifecycleError(f"run {run.id} changed state meanwhile; reload and try again")
    session.commit()
    session.refresh(run)
    if message := enqueue_or_fail(session, run):
        raise LifecycleError(message)
