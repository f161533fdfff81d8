"""A rater's own view across tasks: the queue (tasks with progress) and the history of their submissions.

Only opaque keys and tokens, task names, task types and the rater's own times leave here.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from app.models import AssignmentStatus, Rating, RatingAssignment, RatingCase, RatingTask, RatingTaskRater
from app.rating.assign import progress


def rater_tasks(session: Session, *, rater_id: int) -> list[dict[str, Any]]:
    """The tasks this user rates, newest first, with done/total (app.rating.assign.progress)."""
    tasks = session.exec(
        select(RatingTask)
        .join(RatingTaskRater, col(RatingTaskRater.task_id) == col(RatingTask.id))
        .where(RatingTaskRater.rater_id == rater_id)
        .order_by(col(RatingTask.id).desc())
    ).all()
    out = []
    for task in tasks:
        p = progress(session, task=task, rater_id=rater_id)
        out.append(
            {
                "task_key": task.task_key,
                "name": task.name,
                "mode": task.mode,
                "done": p["done"],
                "total": p["total"],
                "url": f"/rate/{task.task_key}",
            }
        )
    return out


def rater_history(session: Session, *, rater_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """The rater's submitted ratings, newest first, each linking back to its case for an edit."""
    rows = session.exec(
        select(  # type: ignore[call-overload]  # sqlmodel's select has no overload for this mix of five
            Rating, RatingAssignment.token, RatingTask.task_key, RatingTask.name, RatingCase.task_type
        )
        .join(RatingAssignment, col(RatingAssignment.id) == col(Rating.assignment_id))
        .join(RatingTask, col(RatingTask.id) == col(Rating.task_id))
        .join(RatingCase, col(RatingCase.id) == col(Rating.case_id))
        .join(
            RatingTaskRater,
            (col(RatingTaskRater.task_id) == col(RatingTask.id))
            & (col(RatingTaskRater.rater_id) == rater_id),
        )
        .where(Rating.rater_id == rater_id, RatingAssignment.status == AssignmentStatus.submitted.value)
        .order_by(col(Rating.updated_at).desc(), col(Rating.id).desc())
        .limit(limit)
    ).all()
    return [
        {
            "task_key": key,
            "task_name": name,
            "task_type": task_type,
            "token": token,
            "flag": rating.flag,
            "comment": rating.comment,
            "submitted_at": rating.updated_at.isoformat(),
            "url": f"/rate/{key}?token={token}",
        }
        for rating, token, key, name, task_type in rows
    ]
