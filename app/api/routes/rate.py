"""The rater's JSON API (docs: the rating contract): next case, one case by token, submit, skip, undo, queue, history.

Blind by construction: a rater names tasks by `task_key` and cases by assignment `token`, both random, and
an unknown key, another rater's token and a task the rater is not on all answer the same 404, so nothing
tells whether it exists. The pages /rate, /rate/{task_key} and /rate/history render shells that call this.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException, Request
from sqlmodel import Session

from app.api.deps import Rater, SessionDep, SettingsDep
from app.models import RatingAssignment, RatingTask, RatingTaskRater
from app.rating import answers, assign, queue
from app.web import lang_of

router = APIRouter()

NO_TASK = "No such rating task."
NO_CASE = "No such case: it was never yours, or it went back to the pool after being left too long."
MAX_EXCLUDE = 10


def _task(session: Session, task_key: str, rater_id: int) -> RatingTask:
    task = assign.rater_task(session, task_key=task_key, rater_id=rater_id)
    if task is None:
        raise HTTPException(status_code=404, detail=NO_TASK)
    return task


def _assignment(session: Session, token: str, rater_id: int) -> tuple[RatingAssignment, RatingTask]:
    found = assign.rater_assignment(session, token=token, rater_id=rater_id)
    task = session.get(RatingTask, found.task_id) if found is not None else None
    # A rater taken off the task since loses its tokens with it.
    if found is None or task is None or session.get(RatingTaskRater, (task.id, rater_id)) is None:
        raise HTTPException(status_code=404, detail=NO_CASE)
    return found, task


def _exclude(body: Any) -> set[str]:
    if body is None:
        return set()
    tokens = body.get("exclude", []) if isinstance(body, dict) else None
    if (
        not isinstance(tokens, list)
        or len(tokens) > MAX_EXCLUDE
        or not all(isinstance(t, str) for t in tokens)
    ):
        raise HTTPException(
            status_code=422,
            detail=f'the body must be {{"exclude": [token, ...]}} with at most {MAX_EXCLUDE} tokens',
        )
    return set(tokens)


@router.get("/api/rate")
def rate_queue_api(user: Rater, session: SessionDep) -> list[dict]:
    """The rater's tasks: name, mode, done/total, and the page's URL."""
    return queue.rater_tasks(session, rater_id=user.id or 0)


@router.get("/api/rate/history")
def rate_history_api(user: Rater, session: SessionDep, limit: int = 200) -> list[dict]:
    """The rater's submitted ratings, newest first, each with the URL that reopens it for an edit."""
    return queue.rater_history(session, rater_id=user.id or 0, limit=max(1, min(limit, 1000)))


@router.post("/api/rate/a/{token}/skip")
def rate_skip(token: str, user: Rater, session: SessionDep) -> dict:
    assignment, _ = _assignment(session, token, user.id or 0)
    try:
        assign.skip(session, assignment=assignment)
    except ValueError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return {"ok": True}


@router.get("/api/rate/a/{token}")
def rate_case(token: str, request: Request, user: Rater, session: SessionDep) -> dict:
    assignment, task = _assignment(session, token, user.id or 0)
    return answers.case_view(session, assignment=assignment, task=task, lang=lang_of(request))


@router.post("/api/rate/a/{token}")
def rate_submit(token: str, user: Rater, session: SessionDep, body: Any = Body(None)) -> dict:  # noqa: B008
    """Store the answer ({scores, preference, flag, comment, duration_ms}); a submitted token is updated."""
    assignment, task = _assignment(session, token, user.id or 0)
    try:
        answers.submit(session, assignment=assignment, task=task, body=body)
    except answers.AnswerError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message) from None
    return {"ok": True, "progress": assign.progress(session, task=task, rater_id=user.id or 0)}


@router.post("/api/rate/{task_key}/next")
def rate_next(
    task_key: str,
    request: Request,
    user: Rater,
    session: SessionDep,
    settings: SettingsDep,
    body: Any = Body(None),  # noqa: B008
) -> dict:
    """One of the rater's open cases not in `exclude`, else a newly claimed one; `case: null` when none is left."""
    task = _task(session, task_key, user.id or 0)
    found = assign.next_assignment(
        session,
        task=task,
        rater_id=user.id or 0,
        exclude=_exclude(body),
        abandon_after=settings.rating_abandon_after,
    )
    view = None
    if found is not None:
        view = answers.case_view(session, assignment=found, task=task, lang=lang_of(request))
    return {"case": view, "progress": assign.progress(session, task=task, rater_id=user.id or 0)}


@router.post("/api/rate/{task_key}/undo")
def rate_undo(task_key: str, request: Request, user: Rater, session: SessionDep) -> dict:
    """Reopen the rater's most recent submission in the task, to be rated again."""
    task = _task(session, task_key, user.id or 0)
    found = assign.undo(session, task=task, rater_id=user.id or 0)
    view = None
    if found is not None:
        view = answers.case_view(session, assignment=found, task=task, lang=lang_of(request))
    return {"case": view, "progress": assign.progress(session, task=task, rater_id=user.id or 0)}
