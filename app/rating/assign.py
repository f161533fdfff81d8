"""Who rates what next: claiming a case's slot, skipping, undoing, and taking back abandoned cases.

Every rule that keeps overlap exact is a database constraint (app.models.rating): a claim is an INSERT
of (case, slot, rater) that either commits or hits uq_assignment_slot / uq_assignment_rater, after which
the next candidate is tried. No row is read, checked and then updated, so two raters (or two tabs of one
rater) asking at the same moment can never both take the last slot, on SQLite or PostgreSQL. The
candidates query only spares useless INSERTs; it decides nothing.

A case claimed and left alone for `rating_abandon_after` seconds goes back to the pool: the next rater
asking for work in that task deletes the stale assignment (its token then answers 404). Raters ask often,
so no background job is needed.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from app.models import (
    AssignmentStatus,
    Rating,
    RatingAssignment,
    RatingCase,
    RatingTask,
    RatingTaskRater,
    utcnow,
)
from app.rating.writes import write_turn

MAX_ACTIVE = 2  # the case on screen and the one prefetched behind it
CANDIDATES = 32  # cases fetched per round of claim attempts
ROUNDS = 4  # rounds of candidates before a rater is told nothing is left (each round sees fresher rows)

ACTIVE = AssignmentStatus.active.value
SUBMITTED = AssignmentStatus.submitted.value
SKIPPED = AssignmentStatus.skipped.value


def clock() -> datetime:
    """Now; tests replace it to age assignments past the abandonment limit."""
    return utcnow()


def rater_task(session: Session, *, task_key: str, rater_id: int) -> RatingTask | None:
    """The task if this user rates it; None for an unknown key and for a task of others alike (so: 404)."""
    if not task_key or len(task_key) > 64:
        return None
    return session.exec(
        select(RatingTask)
        .join(RatingTaskRater, col(RatingTaskRater.task_id) == col(RatingTask.id))
        .where(RatingTask.task_key == task_key, RatingTaskRater.rater_id == rater_id)
    ).first()


def rater_assignment(session: Session, *, token: str, rater_id: int) -> RatingAssignment | None:
    """The rater's own assignment by token; another rater's token is as unknown as a made-up one."""
    if not token or len(token) > 64:
        return None
    return session.exec(
        select(RatingAssignment).where(RatingAssignment.token == token, RatingAssignment.rater_id == rater_id)
    ).first()


def release_abandoned(
    session: Session, *, task: RatingTask, rater_id: int, abandon_after: float, now: datetime
) -> int:
    """Delete other raters' assignments of the task still active `abandon_after` seconds after their claim.

    Looked up first and deleted by id only when there are any: a DELETE matching nothing would still take
    SQLite's write lock on every request for work.
    """
    cutoff = now - timedelta(seconds=abandon_after)
    stale: list[Any] = [
        RatingAssignment.task_id == task.id,
        RatingAssignment.rater_id != rater_id,  # the rater's own old case is still theirs to finish
        RatingAssignment.status == ACTIVE,
        col(RatingAssignment.claimed_at) < cutoff,
    ]
    ids = session.exec(select(RatingAssignment.id).where(*stale)).all()
    if not ids:
        return 0
    with write_turn(session):
        result = session.exec(delete(RatingAssignment).where(col(RatingAssignment.id).in_(ids), *stale))
        session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _taken():
    return (
        select(RatingAssignment.case_id, func.count().label("n"))
        .where(col(RatingAssignment.slot).is_not(None))
        .group_by(col(RatingAssignment.case_id))
        .subquery()
    )


def _open_cases(task: RatingTask, rater_id: int):
    """Cases of the task with a free slot that this rater has never held (rated, skipped or holding)."""
    taken = _taken()
    used = func.coalesce(taken.c.n, 0)
    mine = select(RatingAssignment.case_id).where(
        RatingAssignment.task_id == task.id, RatingAssignment.rater_id == rater_id
    )
    return (
        select(RatingCase.id, used)
        .outerjoin(taken, taken.c.case_id == RatingCase.id)
        .where(RatingCase.task_id == task.id, used < task.overlap, col(RatingCase.id).not_in(mine))
    ), used


def claim(session: Session, *, task: RatingTask, rater_id: int, now: datetime) -> RatingAssignment | None:
    """A new assignment of a case with a free slot, or None when no case is left for this rater.

    Cases nearest to their N ratings go first (agreement needs complete cases); among equals each rater
    starts at a different place in the list, so twenty raters asking at once rarely race for one row.
    """
    for _ in range(ROUNDS):
        query, used = _open_cases(task, rater_id)
        rows = session.exec(query.order_by(used.desc(), col(RatingCase.id)).limit(CANDIDATES)).all()
        if not rows:
            return None
        start = rater_id % len(rows)
        for case_id, _n in rows[start:] + rows[:start]:
            slots = set(
                session.exec(
                    select(RatingAssignment.slot).where(
                        RatingAssignment.case_id == case_id, col(RatingAssignment.slot).is_not(None)
                    )
                ).all()
            )
            free = next((s for s in range(task.overlap) if s not in slots), None)
            if free is None:
                continue
            assignment = RatingAssignment(
                token=secrets.token_urlsafe(16),
                task_id=task.id or 0,
                case_id=case_id,
                rater_id=rater_id,
                slot=free,
                status=ACTIVE,
                claimed_at=now,
            )
            session.add(assignment)
            try:
                with write_turn(session):
                    session.commit()
            except IntegrityError:  # another claim took that slot, or this rater's other tab took the case
                session.rollback()
                continue
            return assignment
    return None


def next_assignment(
    session: Session, *, task: RatingTask, rater_id: int, exclude: set[str], abandon_after: float
) -> RatingAssignment | None:
    """The rater's oldest active assignment not in `exclude` (the page's current and prefetched cases),
    else a newly claimed case while the rater holds fewer than MAX_ACTIVE; None when nothing is left."""
    now = clock()
    release_abandoned(session, task=task, rater_id=rater_id, abandon_after=abandon_after, now=now)
    active = session.exec(
        select(RatingAssignment)
        .where(
            RatingAssignment.task_id == task.id,
            RatingAssignment.rater_id == rater_id,
            RatingAssignment.status == ACTIVE,
        )
        .order_by(col(RatingAssignment.claimed_at), col(RatingAssignment.id))
    ).all()
    for assignment in active:
        if assignment.token not in exclude:
            return assignment
    if len(active) >= MAX_ACTIVE:
        return None
    return claim(session, task=task, rater_id=rater_id, now=now)


def skip(session: Session, *, assignment: RatingAssignment) -> None:
    """The rater passes: the row stays (never offered again), the slot goes back to the pool."""
    if assignment.status == SUBMITTED:
        raise ValueError("this case is already submitted: undo it first, or edit it from the history")
    assignment.status = SKIPPED
    assignment.slot = None
    session.add(assignment)
    with write_turn(session):
        session.commit()


def undo(session: Session, *, task: RatingTask, rater_id: int) -> RatingAssignment | None:
    """Reopen the rater's most recent submission in the task: its rating removed, the assignment active."""
    last = session.exec(
        select(RatingAssignment)
        .where(
            RatingAssignment.task_id == task.id,
            RatingAssignment.rater_id == rater_id,
            RatingAssignment.status == SUBMITTED,
        )
        .order_by(col(RatingAssignment.submitted_at).desc(), col(RatingAssignment.id).desc())
    ).first()
    if last is None:
        return None
    last.status = ACTIVE
    last.submitted_at = None
    last.claimed_at = clock()
    with write_turn(session):
        session.exec(delete(Rating).where(col(Rating.assignment_id) == last.id))
        session.add(last)
        session.commit()
    return last


def progress(session: Session, *, task: RatingTask, rater_id: int) -> dict[str, int]:
    """done: the rater's submissions in the task; total: done plus what the rater holds or could still claim.

    The total shrinks as other raters fill the cases, and equals done once nothing is left for this rater.
    """
    counts = dict(
        session.exec(
            select(RatingAssignment.status, func.count())
            .where(RatingAssignment.task_id == task.id, RatingAssignment.rater_id == rater_id)
            .group_by(col(RatingAssignment.status))
        ).all()
    )
    query, _ = _open_cases(task, rater_id)
    open_now = session.exec(select(func.count()).select_from(query.subquery())).one()
    done = int(counts.get(SUBMITTED, 0))
    return {"done": done, "total": done + int(counts.get(ACTIVE, 0)) + int(open_now)}
