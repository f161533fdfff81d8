"""The researcher's side of rating: tasks (list, form, page, API), gold cases, rubrics.

Logic lives in app.rating; routes check input and pick the response. Raters get 403 here: they reach
only /rate* and /api/rate* (app.api.routes.rate).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from app.api.deps import PostedForm, Researcher, SessionDep
from app.models import RatingTask, Role, Rubric, User
from app.rating import overview, rubrics
from app.rating.answers import AnswerError
from app.rating.tasks import TaskError, create_task, parse_task
from app.sampling.results import list_jobs
from app.web import flash_key, render

router = APIRouter()

MAX_ID = 2**31 - 1


def _task(session: Session, task_id: int) -> RatingTask:
    task = session.get(RatingTask, task_id) if 0 < task_id <= MAX_ID else None
    if task is None:
        raise HTTPException(status_code=404, detail=f"Rating task {task_id} does not exist.")
    return task


def _owned_task(session: Session, user: User, task_id: int) -> RatingTask:
    """A task whose gold a user may change: their own, or any for an admin (researchers read every task)."""
    task = _task(session, task_id)
    if user.role != Role.admin and task.owner_id != user.id:
        raise HTTPException(
            status_code=403, detail="Only the task's owner or an admin may change its gold cases."
        )
    return task


def _form_body(data: FormData) -> dict[str, Any]:
    """The form's fields in the API's shape (parse_task reads both)."""
    get = lambda key: str(data.get(key) or "").strip()  # noqa: E731
    kind = get("cases") or "all"
    return {
        "name": get("name"),
        "mode": get("mode") or "absolute",
        "sampling_a": get("sampling_a"),
        "sampling_b": get("sampling_b") or None,
        "raters": [str(r) for r in data.getlist("raters")],
        "overlap": get("overlap") or "1",
        "cases": {
            "kind": kind,
            "task_type": get("task_type"),
            "per_type": get("per_type"),
            "level": get("level") or "1",
        },
        "rubric_version_id": get("rubric_version_id") or None,
        "score_sides": get("score_sides") == "on" or get("mode") != "pairwise",
        "seed": get("seed") or "0",
    }


def _form_page(request: Request, session: Session, user: User, values: dict, error: TaskError | None = None):
    return render(
        request,
        "pages/rating_new.html",
        {
            "user": user,
            "nav": "rating",
            "v": values,
            "jobs": list_jobs(session),
            "users": session.exec(select(User).where(User.is_active).order_by(col(User.username))).all(),
            "rubrics": rubrics.list_rubrics(session),
            "error": error,
        },
        status_code=422 if error else 200,
    )


@router.get("/rating/tasks")
def rating_tasks_page(request: Request, user: Researcher, session: SessionDep, ok: str = ""):
    rows = overview.list_tasks(session)
    return render(
        request, "pages/rating_tasks.html", {"user": user, "nav": "rating", "rows": rows, "ok": flash_key(ok)}
    )


@router.get("/rating/tasks/new")
def rating_task_form(request: Request, user: Researcher, session: SessionDep, sampling_a: int = 0):
    return _form_page(
        request, session, user, {"sampling_a": str(sampling_a or ""), "raters": [], "overlap": "1"}
    )


@router.post("/rating/tasks/new")
def rating_task_submit(request: Request, user: Researcher, session: SessionDep, posted: PostedForm):
    body = _form_body(posted)
    try:
        task = create_task(session, req=parse_task(body), owner_id=user.id or 0)
    except TaskError as exc:
        session.rollback()
        shown = {
            **body,
            **{k: v for k, v in body["cases"].items() if k != "kind"},
            "cases": body["cases"]["kind"],
        }
        return _form_page(request, session, user, shown, exc)
    return RedirectResponse(f"/rating/tasks/{task.id}", status_code=303)


def _task_page(request: Request, session: Session, user: User, task: RatingTask, **extra: Any):
    detail = overview.task_detail(session, task)
    ctx = {"user": user, "nav": "rating", "d": detail, "ok": "", "error": "", "v": {}, **extra}
    return render(request, "pages/rating_task.html", ctx, status_code=422 if ctx["error"] else 200)


@router.get("/rating/tasks/{task_id}")
def rating_task_page(
    request: Request,
    task_id: int,
    user: Researcher,
    session: SessionDep,
    ok: str = "",
):
    return _task_page(request, session, user, _task(session, task_id), ok=flash_key(ok))


@router.post("/rating/tasks/{task_id}/gold")
def rating_gold_form(
    request: Request, task_id: int, user: Researcher, session: SessionDep, posted: PostedForm
):
    """The task page's gold form: a case id and scores as JSON in A/B terms (empty scores: unmark)."""
    task = _owned_task(session, user, task_id)
    values = {k: str(posted.get(k) or "").strip() for k in ("case_id", "scores", "preference")}
    try:
        case_id = int(values["case_id"]) if values["case_id"].isdigit() else 0
        case = overview.task_case(session, task, case_id)
        if case is None:
            raise AnswerError(f"task {task_id} has no case {values['case_id'] or '(empty)'}")
        try:
            scores = json.loads(values["scores"]) if values["scores"] else None
        except ValueError:
            raise AnswerError('scores must be JSON, e.g. {"helpfulness": 4}') from None
        body = None if scores is None else {"scores": scores, "preference": values["preference"] or None}
        overview.set_gold(session, task=task, case=case, body=body)
    except AnswerError as exc:
        return _task_page(request, session, user, task, error=exc.message, v=values)
    return RedirectResponse(f"/rating/tasks/{task_id}?ok=rating.gold_saved", status_code=303)


def _rubrics_page(
    request: Request, session: Session, user: User, error: str = "", v: dict | None = None, ok: str = ""
):
    return render(
        request,
        "pages/rating_rubrics.html",
        {
            "user": user,
            "nav": "rating",
            "rubrics": rubrics.list_rubrics(session),
            "default_json": json.dumps(rubrics.DEFAULT_DIMENSIONS, ensure_ascii=False, indent=1),
            "error": error,
            "v": v or {},
            "ok": ok,
        },
        status_code=422 if error else 200,
    )


@router.get("/rating/rubrics")
def rating_rubrics_page(request: Request, user: Researcher, session: SessionDep, ok: str = ""):
    return _rubrics_page(request, session, user, ok=flash_key(ok))


@router.post("/rating/rubrics")
def rating_rubric_form(request: Request, user: Researcher, session: SessionDep, posted: PostedForm):
    """Create a rubric (no rubric_id) or a new version of one, from dimensions typed as JSON."""
    v = {k: str(posted.get(k) or "").strip() for k in ("rubric_id", "name", "dimensions", "usable_threshold")}
    try:
        try:
            body: dict[str, Any] = {"dimensions": json.loads(v["dimensions"] or "null")}
            if v["usable_threshold"]:
                body["usable_threshold"] = float(v["usable_threshold"])
        except ValueError:
            raise rubrics.RubricError(
                "dimensions", "dimensions must be a JSON list and the threshold a number"
            ) from None
        rubric = session.get(Rubric, int(v["rubric_id"])) if v["rubric_id"].isdigit() else None
        if v["rubric_id"] and rubric is None:
            raise rubrics.RubricError("rubric_id", f"rubric {v['rubric_id']} does not exist")
        if rubric is None:
            rubrics.create_rubric(session, name=v["name"], body=body, owner_id=user.id or 0)
        else:
            rubrics.new_version(session, rubric=rubric, body=body, by=user.id or 0)
    except rubrics.RubricError as exc:
        session.rollback()
        return _rubrics_page(request, session, user, error=f"{exc.field}: {exc.message}", v=v)
    return RedirectResponse("/rating/rubrics?ok=rating.rubric_saved", status_code=303)


@router.get("/api/rating/tasks")
def rating_tasks_api(user: Researcher, session: SessionDep) -> list[dict]:
    return overview.list_tasks(session)


@router.post("/api/rating/tasks", status_code=201)
def rating_task_create_api(user: Researcher, session: SessionDep, body: Any = Body(None)):  # noqa: B008
    """Create a task: {"name", "mode": absolute|pairwise, "sampling_a", "sampling_b"?, "raters": [user id],
    "overlap", "cases"?: {"kind": all|task_type|sample, "task_type"?, "per_type"?, "level"?},
    "rubric_version_id"?, "score_sides"?, "seed"?}."""
    try:
        task = create_task(session, req=parse_task(body), owner_id=user.id or 0)
    except TaskError as exc:
        return JSONResponse({"detail": exc.message, "field": exc.field}, status_code=422)
    return JSONResponse(
        {
            "id": task.id,
            "task_key": task.task_key,
            "n_cases": task.n_cases,
            "url": f"/rating/tasks/{task.id}",
        },
        status_code=201,
    )


@router.get("/api/rating/tasks/{task_id}")
def rating_task_api(task_id: int, user: Researcher, session: SessionDep) -> dict:
    """Progress per rater, flagged and commented cases, identity flags and gold count; the results (means,
    intervals, usability under any rubric version, agreement) are GET /api/rating/{task_id}/results."""
    return overview.task_detail(session, _task(session, task_id))


@router.get("/api/rating/tasks/{task_id}/ratings")
def rating_task_ratings_api(task_id: int, user: Researcher, session: SessionDep) -> list[dict]:
    """Every stored answer in A/B terms (the jobs, not the screen's left and right)."""
    return overview.ratings(session, _task(session, task_id))


def _case_action(session: Session, task_id: int, case_id: int, act) -> dict:  # noqa: ANN001
    task = _task(session, task_id)
    case = overview.task_case(session, task, case_id)
    if case is None:
        raise HTTPException(status_code=404, detail=f"Task {task_id} has no case {case_id}.")
    try:
        act(task, case)
    except AnswerError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message) from None
    return {"ok": True}


@router.post("/api/rating/tasks/{task_id}/cases/{case_id}/gold")
def rating_gold_api(
    task_id: int, case_id: int, user: Researcher, session: SessionDep, body: Any = Body(None)
):  # noqa: B008
    """Mark a case gold with your scores in A/B terms ({"scores", "preference"?}); a null body unmarks it."""
    _owned_task(session, user, task_id)
    return _case_action(
        session, task_id, case_id, lambda t, c: overview.set_gold(session, task=t, case=c, body=body)
    )


@router.get("/api/rating/rubrics")
def rating_rubrics_api(user: Researcher, session: SessionDep) -> list[dict]:
    """Every rubric with all its versions (the built-in 3H is created on first use)."""
    return rubrics.list_rubrics(session)


def _rubric_answer(make) -> JSONResponse:  # noqa: ANN001
    try:
        version = make()
    except rubrics.RubricError as exc:
        return JSONResponse({"detail": exc.message, "field": exc.field}, status_code=422)
    return JSONResponse(
        {"rubric_id": version.rubric_id, "version_id": version.id, "number": version.number}, status_code=201
    )


@router.post("/api/rating/rubrics", status_code=201)
def rating_rubric_create_api(user: Researcher, session: SessionDep, body: Any = Body(None)):  # noqa: B008
    """A new rubric: {"name", "dimensions": [{key, name_en, name_zh?, guidance_en?, guidance_zh?, scale, weight}],
    "usable_threshold"?}."""
    body = body if isinstance(body, dict) else {}
    return _rubric_answer(
        lambda: rubrics.create_rubric(
            session, name=str(body.get("name") or ""), body=body, owner_id=user.id or 0
        )
    )


@router.post("/api/rating/rubrics/{rubric_id}", status_code=201)
def rating_rubric_edit_api(rubric_id: int, user: Researcher, session: SessionDep, body: Any = Body(None)):  # noqa: B008
    """Change a rubric: a new version ({"dimensions", "usable_threshold"?}); ratings keep the version they were given under."""
    rubric = session.get(Rubric, rubric_id) if 0 < rubric_id <= MAX_ID else None
    if rubric is None:
        raise HTTPException(status_code=404, detail=f"Rubric {rubric_id} does not exist.")
    body = body if isinstance(body, dict) else {}
    return _rubric_answer(lambda: rubrics.new_version(session, rubric=rubric, body=body, by=user.id or 0))
