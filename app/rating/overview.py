"""What the researcher sees of rating tasks: progress, per-rater counts, flags and comments, identity flags,
and the gold and adjudicated scores they set.

Every figure computed from the scores (means, intervals, usability under any rubric version, agreement) is
the results page's (app.rating_results), so a task has one set of numbers; `ratings` lists every stored
answer in A/B terms for the exports.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models import (
    Adjudication,
    AssignmentStatus,
    Generation,
    Rating,
    RatingAssignment,
    RatingCase,
    RatingMode,
    RatingTask,
    RatingTaskRater,
    RubricVersion,
    User,
    utcnow,
)
from app.rating.answers import AnswerError, check_scores
from app.rating.rubrics import dimensions_of
from app.sampling_analysis.flags import identity_flags

MAX_LISTED = 500


def list_tasks(session: Session) -> list[dict[str, Any]]:
    """Every task, newest first, with its submitted ratings against its target (cases x overlap)."""
    submitted = dict(session.exec(select(Rating.task_id, func.count()).group_by(col(Rating.task_id))).all())
    raters = dict(
        session.exec(
            select(RatingTaskRater.task_id, func.count()).group_by(col(RatingTaskRater.task_id))
        ).all()
    )
    rows = session.exec(
        select(RatingTask, User.username)
        .join(User, col(User.id) == col(RatingTask.owner_id))
        .order_by(col(RatingTask.id).desc())
    ).all()
    return [
        {
            "id": t.id,
            "name": t.name,
            "mode": t.mode,
            "owner": owner,
            "n_cases": t.n_cases,
            "overlap": t.overlap,
            "raters": int(raters.get(t.id or 0, 0)),
            "done": int(submitted.get(t.id or 0, 0)),
            "target": t.n_cases * t.overlap,
            "created_at": t.created_at.isoformat(),
            "url": f"/rating/tasks/{t.id}",
        }
        for t, owner in rows
    ]


def _per_rater(session: Session, task: RatingTask) -> list[dict[str, Any]]:
    counts: dict[int, dict[str, int]] = defaultdict(lambda: {s.value: 0 for s in AssignmentStatus})
    for rater_id, status, n in session.exec(
        select(RatingAssignment.rater_id, RatingAssignment.status, func.count())
        .where(RatingAssignment.task_id == task.id)
        .group_by(col(RatingAssignment.rater_id), col(RatingAssignment.status))
    ).all():
        counts[rater_id][status] = int(n)
    members = session.exec(
        select(User.id, User.username)
        .join(RatingTaskRater, col(RatingTaskRater.rater_id) == col(User.id))
        .where(RatingTaskRater.task_id == task.id)
        .order_by(col(User.username))
    ).all()
    return [{"rater": name, **counts[uid or 0]} for uid, name in members]


def _flagged_ratings(session: Session, task: RatingTask) -> list[dict[str, Any]]:
    rows = session.exec(
        select(Rating, User.username, RatingCase.sample_id, RatingCase.task_type)
        .join(User, col(User.id) == col(Rating.rater_id))
        .join(RatingCase, col(RatingCase.id) == col(Rating.case_id))
        .where(Rating.task_id == task.id, (col(Rating.flag)) | (col(Rating.comment) != ""))
        .order_by(col(Rating.updated_at).desc())
        .limit(MAX_LISTED)
    ).all()
    return [
        {
            "case_id": r.case_id,
            "sample_id": sid,
            "task_type": tt,
            "rater": name,
            "flag": r.flag,
            "comment": r.comment,
        }
        for r, name, sid, tt in rows
    ]


def _identity(session: Session, task: RatingTask) -> list[dict[str, Any]]:
    """The cases whose answers name a model, with the names found per job (A, B)."""
    cases = session.exec(
        select(RatingCase)
        .where(RatingCase.task_id == task.id, col(RatingCase.identity_flag))
        .limit(MAX_LISTED)
    ).all()
    out = []
    for case in cases:
        found: dict[str, list[str]] = {}
        for side, gid in (("a", case.generation_a_id), ("b", case.generation_b_id)):
            gen = session.get(Generation, gid) if gid is not None else None
            if gen is not None:
                hits = identity_flags(gen.text)
                names = sorted({h["text"] for strength in hits.values() for h in strength})
                if names:
                    found[side] = names
        out.append(
            {"case_id": case.id, "sample_id": case.sample_id, "task_type": case.task_type, "names": found}
        )
    return out


def task_detail(session: Session, task: RatingTask) -> dict[str, Any]:
    """The task page's content: what the task is and how far its raters are."""
    version = session.get(RubricVersion, task.rubric_version_id)
    assert version is not None
    return {
        "id": task.id,
        "name": task.name,
        "mode": task.mode,
        "task_key": task.task_key,
        "sampling_a": task.sampling_a_id,
        "sampling_b": task.sampling_b_id,
        "rubric_version_id": task.rubric_version_id,
        "rubric_version": version.number,
        "dimensions": [d.key for d in dimensions_of(version)],
        "overlap": task.overlap,
        "n_cases": task.n_cases,
        "selection": json.loads(task.selection_json),
        "done": session.exec(select(func.count()).where(Rating.task_id == task.id)).one(),
        "gold": session.exec(
            select(func.count()).where(RatingCase.task_id == task.id, col(RatingCase.gold_json).is_not(None))
        ).one(),
        "raters": _per_rater(session, task),
        "flagged": _flagged_ratings(session, task),
        "identity": _identity(session, task),
    }


def ratings(session: Session, task: RatingTask) -> list[dict[str, Any]]:
    """Every stored answer of the task in A/B terms, with its rater and rubric version (for the statistics)."""
    rows = session.exec(
        select(Rating, User.username, RatingCase.sample_id, RatingCase.task_type)
        .join(User, col(User.id) == col(Rating.rater_id))
        .join(RatingCase, col(RatingCase.id) == col(Rating.case_id))
        .where(Rating.task_id == task.id)
        .order_by(col(Rating.case_id), col(Rating.id))
    ).all()
    return [
        {
            "case_id": r.case_id,
            "sample_id": sid,
            "task_type": tt,
            "rater": name,
            "rubric_version_id": r.rubric_version_id,
            "scores": json.loads(r.scores_json),
            "preference": r.preference,
            "flag": r.flag,
            "comment": r.comment,
            "duration_ms": r.duration_ms,
        }
        for r, name, sid, tt in rows
    ]


def _stored_answer(session: Session, task: RatingTask, body: Any) -> tuple[dict[str, Any], str | None]:
    """A researcher's scores in A/B terms: absolute {"scores": {dim: int}}; pairwise {"scores": {"a": {...},
    "b": {...}}, "preference": "a" | "b" | "tie"}."""
    if not isinstance(body, dict):
        raise AnswerError('the body must be {"scores": ..., "preference"?: ...} or null')
    version = session.get(RubricVersion, task.rubric_version_id)
    assert version is not None
    dims = dimensions_of(version)
    raw = body.get("scores")
    if task.mode == RatingMode.pairwise.value:
        if not isinstance(raw, dict) or set(raw) - {"a", "b"}:
            raise AnswerError('pairwise scores must be {"a": {...}, "b": {...}}')
        sides = dims if task.score_sides else []
        pref = body.get("preference")
        if pref not in ("a", "b", "tie"):
            raise AnswerError("preference must be one of a, b, tie")
        return {
            "a": check_scores(raw.get("a", {}), sides, "a"),
            "b": check_scores(raw.get("b", {}), sides, "b"),
        }, pref
    return check_scores(raw, dims, ""), None


def task_case(session: Session, task: RatingTask, case_id: int) -> RatingCase | None:
    case = session.get(RatingCase, case_id) if 0 < case_id <= 2**31 - 1 else None
    return case if case is not None and case.task_id == task.id else None


def set_gold(session: Session, *, task: RatingTask, case: RatingCase, body: Any) -> None:
    """Mark the case gold with the researcher's own scores (None: no longer gold)."""
    if body is None:
        case.gold_json = None
    else:
        scores, pref = _stored_answer(session, task, body)
        case.gold_json = json.dumps({"scores": scores, "preference": pref})
    session.add(case)
    session.commit()


def adjudicate(session: Session, *, task: RatingTask, case: RatingCase, body: Any, by: int) -> None:
    """Settle a disputed case; a second adjudication replaces the first."""
    scores, pref = _stored_answer(session, task, body)
    found = session.exec(select(Adjudication).where(Adjudication.case_id == case.id)).first()
    found = found or Adjudication(case_id=case.id or 0, scores_json="{}", by_id=by)
    found.scores_json, found.preference, found.by_id, found.at = json.dumps(scores), pref, by, utcnow()
    session.add(found)
    session.commit()
