"""A rating task's results for its owner (or an admin): the page, its JSON, the exports, adjudication.

The numbers come from app.rating_results; routes check who asks and what they ask for. Another
researcher's task answers 403 (its existence is no secret: the task list shows every task), a rater 403
from the role guard, a task or case that does not exist 404.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, StreamingResponse
from sqlmodel import Session
from starlette.datastructures import FormData

from app.api.deps import Researcher, SessionDep
from app.models import RatingCase, RatingMode, RatingTask, Role, User
from app.rating.answers import AnswerError
from app.rating.overview import adjudicate
from app.rating_results.adjudication import form_body
from app.rating_results.data import VersionError, load
from app.rating_results.export import export_csv, export_jsonl
from app.rating_results.results import task_results
from app.web import render

router = APIRouter()

MAX_ID = 2**31 - 1
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _owned(session: Session, user: User, task_id: int) -> RatingTask:
    task = session.get(RatingTask, task_id) if 0 < task_id <= MAX_ID else None
    if task is None:
        raise HTTPException(status_code=404, detail=f"Rating task {task_id} does not exist.")
    if user.role != Role.admin and task.owner_id != user.id:
        raise HTTPException(status_code=403, detail="Only the task's owner or an admin may see its results.")
    return task


def _version(raw: str) -> int | None:
    """The `version` query parameter: empty for the task's own version, else a rubric version id."""
    if not raw.strip():
        return None
    if not re.fullmatch(r"[0-9]{1,9}", raw.strip()):
        raise HTTPException(status_code=422, detail=f"version must be a rubric version id, got {raw[:40]!r}")
    return int(raw)


def _results(session: Session, task: RatingTask, version: str, adjudicated: bool) -> dict[str, Any]:
    try:
        return task_results(session, task, version_id=_version(version), use_adjudicated=adjudicated)
    except VersionError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None


def _page(
    request: Request, user: User, results: dict[str, Any], *, errors: dict | None = None, status: int = 200
):
    return render(
        request,
        "pages/rating_results.html",
        {"user": user, "nav": "rating", "r": results, "errors": errors or {}},
        partial="partials/rating_results_body.html",
        status_code=status,
    )


@router.get("/rating/{task_id}/results")
def rating_results_page(
    request: Request,
    task_id: int,
    user: Researcher,
    session: SessionDep,
    version: str = "",
    adjudicated: bool = False,
):
    """The results page; with HX-Request, only its body (the version selector and toggle swap it)."""
    task = _owned(session, user, task_id)
    return _page(request, user, _results(session, task, version, adjudicated))


@router.get("/api/rating/{task_id}/results")
def rating_results_api(
    task_id: int, user: Researcher, session: SessionDep, version: str = "", adjudicated: bool = False
) -> dict:
    """Usability and dimensions per task_type with intervals, pairwise win/tie/loss, agreement, disputed
    cases and raters against gold; `version` scores under another version of the rubric, `adjudicated`
    lets adjudicated scores replace the raters' mean."""
    return _results(session, _owned(session, user, task_id), version, adjudicated)


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/api/rating/{task_id}/results.csv")
def rating_results_csv(
    task_id: int, user: Researcher, session: SessionDep, version: str = "", adjudicated: bool = False
):
    """One row per case (and side): each rater's scores, the case's mean, usability, adjudicated."""
    task = _owned(session, user, task_id)
    try:
        data = load(session, task, version_id=_version(version))
    except VersionError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return PlainTextResponse(
        export_csv(data, use_adjudicated=adjudicated),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(f"rating-{task_id}-results.csv"),
    )


@router.get("/api/rating/{task_id}/ratings.jsonl")
def rating_results_jsonl(task_id: int, user: Researcher, session: SessionDep):
    """Every rating in A/B terms (the sampling jobs, never the screen's left and right), one a line."""
    task = _owned(session, user, task_id)
    lines = list(export_jsonl(session, task))  # read while the request's session is open
    return StreamingResponse(
        iter(lines), media_type="application/x-ndjson", headers=_attachment(f"rating-{task_id}-ratings.jsonl")
    )


async def posted_body(request: Request) -> FormData | bytes:
    """The posted form, or the raw JSON bytes (parsed in the route, off the event loop)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(FORM_TYPES):
        return await request.form()
    if ctype.split(";")[0].strip() == "application/json":
        return await request.body()
    raise HTTPException(
        status_code=415, detail="Send the adjudication as JSON or as the results page's form."
    )


@router.post("/api/rating/cases/{case_id}/adjudication")
def rating_adjudication(
    request: Request,
    case_id: int,
    user: Researcher,
    session: SessionDep,
    posted: FormData | bytes = Depends(posted_body),  # noqa: B008
):
    """Settle a disputed case: {"scores": {dim: int} | {"a": {...}, "b": {...}}, "preference"?: a|b|tie};
    a second adjudication replaces the first. The results page's form gets a redirect back to the page."""
    case = session.get(RatingCase, case_id) if 0 < case_id <= MAX_ID else None
    if case is None:
        raise HTTPException(status_code=404, detail=f"Rating case {case_id} does not exist.")
    task = _owned(session, user, case.task_id)
    is_form = isinstance(posted, FormData)
    version = ""  # the form comes back to the version it was posted from
    if isinstance(posted, FormData):
        fields = {k: v for k, v in posted.items() if isinstance(v, str)}
        version = str(_version(fields.get("version", "")) or "")
        body: Any = form_body(fields, pairwise=task.mode == RatingMode.pairwise.value)
    else:
        try:
            body = json.loads(posted)
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(status_code=422, detail="The body is not valid JSON.") from None
    try:
        adjudicate(session, task=task, case=case, body=body, by=user.id or 0)
    except AnswerError as exc:
        session.rollback()
        if not is_form:
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        results = _results(session, task, version, True)
        return _page(request, user, results, errors={case.id: exc.message}, status=exc.status)
    if is_form:
        query = f"version={version}&" if version else ""
        return RedirectResponse(
            f"/rating/{task.id}/results?{query}adjudicated=true#case-{case.id}", status_code=303
        )
    return {"ok": True, "task_id": task.id, "case_id": case.id}
