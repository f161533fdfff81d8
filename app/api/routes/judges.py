"""LLM judges: configurations (list, form, page, API) and judge jobs (launch, page, cancel, resume, API).

Logic lives in app.judging; routes check input and pick the response. Any researcher may look; only a
configuration's owner (or an admin) changes it or starts, cancels and resumes its jobs. The endpoint key
is accepted here and never sent back: every view is app.judging.configs.public.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from app.api.deps import PostedForm, Researcher, SessionDep, SettingsDep
from app.core.config import Settings
from app.i18n.judges import reason_zh
from app.jobs.lifecycle import JobStateError
from app.judge.prompts import default_template
from app.judge.templates import KINDS
from app.judging import jobs as judge_jobs
from app.judging.configs import ConfigError, create_config, list_configs, parse_config, public, update_config
from app.models import JudgeConfig, JudgeJob, RatingTask, Role, User
from app.web import flash_key, lang_of, render

router = APIRouter()

MAX_ID = 2**31 - 1


def _config(session: Session, config_id: int) -> JudgeConfig:
    config = session.get(JudgeConfig, config_id) if 0 < config_id <= MAX_ID else None
    if config is None:
        raise HTTPException(status_code=404, detail=f"Judge {config_id} does not exist.")
    return config


def _judge_job(session: Session, judge_job_id: int) -> JudgeJob:
    found = session.get(JudgeJob, judge_job_id) if 0 < judge_job_id <= MAX_ID else None
    if found is None:
        raise HTTPException(status_code=404, detail=f"Judge job {judge_job_id} does not exist.")
    return found


def _owned(user: User, owner_id: int) -> None:
    if user.role != Role.admin and user.id != owner_id:
        raise HTTPException(status_code=403, detail="Only the judge's owner or an admin may change it.")


def _form_body(data: FormData) -> dict[str, Any]:
    """The form's fields in the API's shape. An empty key field keeps the stored key; a template left as
    a shipped default (AlignBench's or the rubric's, so a switch of `dimensions` alone edits nothing) is
    not stored as an edit; overrides are lines of `task_type = group`."""
    get = lambda key: str(data.get(key) or "").strip()  # noqa: E731
    lang = get("lang") or "en"
    templates: dict[str, str | None] = {}
    for kind in KINDS:
        text = str(data.get(f"template_{kind}") or "").replace("\r\n", "\n")
        shipped = (
            default_template(kind, lang if lang in ("en", "zh") else "en", rubric=r) for r in (False, True)
        )
        same = text.strip() in {t.text.strip() for t in shipped}
        templates[kind] = None if same or not text.strip() else text
    groups = {}
    for line in get("groups").splitlines():
        task_type, sep, group = line.partition("=")
        if line.strip():
            groups[task_type.strip()] = group.strip() if sep else ""
    key: str | None = str(data.get("key") or "") or None
    if get("clear_key") == "on":
        key = ""
    return {
        "name": get("name"),
        "kind": get("kind") or "endpoint",
        "base_url": get("base_url"),
        "model": get("model"),
        "key": key,
        "model_ref": get("model_ref"),
        "mode": get("mode") or "chat",
        "lang": lang,
        "temperature": get("temperature"),
        "max_tokens": get("max_tokens"),
        "templates": templates,
        "groups": groups,
        "dimensions": get("dimensions"),
    }


def _list_page(request: Request, session: Session, user: User, settings: Settings, values: dict, error=None):  # noqa: ANN001
    rows = [public(session, c, settings=settings) for c in list_configs(session)]
    defaults = {kind: default_template(kind, "en").text for kind in KINDS}
    return render(
        request,
        "pages/judges.html",
        {"user": user, "nav": "rating", "rows": rows, "v": values, "defaults": defaults, "error": error},
        status_code=422 if error else 200,
    )


def _config_page(
    request: Request,
    session: Session,
    user: User,
    settings: Settings,
    config: JudgeConfig,
    error=None,
    ok: str = "",
):  # noqa: ANN001
    tasks = session.exec(select(RatingTask).order_by(col(RatingTask.id).desc())).all()
    return render(
        request,
        "pages/judges_edit.html",
        {
            "user": user,
            "nav": "rating",
            "c": public(session, config, settings=settings),
            "jobs": judge_jobs.list_jobs(session, config=config),
            "tasks": tasks,
            "error": error,
            "ok": flash_key(ok),
        },
        status_code=422 if error else 200,
    )


@router.get("/judges")
def judges_page(request: Request, user: Researcher, session: SessionDep, settings: SettingsDep):
    return _list_page(request, session, user, settings, {"kind": "endpoint", "lang": "en", "mode": "chat"})


@router.post("/judges/new")
def judges_create_form(
    request: Request, user: Researcher, session: SessionDep, settings: SettingsDep, posted: PostedForm
):
    body = _form_body(posted)
    try:
        config = create_config(session, req=parse_config(body), owner_id=user.id or 0, settings=settings)
    except ConfigError as exc:
        return _list_page(request, session, user, settings, {**body, "key": None}, exc)
    return RedirectResponse(f"/judges/{config.id}", status_code=303)


@router.get("/judges/{config_id}")
def judge_page(
    request: Request, config_id: int, user: Researcher, session: SessionDep, settings: SettingsDep
):
    return _config_page(request, session, user, settings, _config(session, config_id))


@router.post("/judges/{config_id}")
def judge_update_form(
    request: Request,
    config_id: int,
    user: Researcher,
    session: SessionDep,
    settings: SettingsDep,
    posted: PostedForm,
):
    config = _config(session, config_id)
    _owned(user, config.owner_id)
    try:
        update_config(
            session, config=config, req=parse_config(_form_body(posted)), settings=settings, by=user.id or 0
        )
    except ConfigError as exc:
        return _config_page(request, session, user, settings, _config(session, config_id), exc)
    return RedirectResponse(f"/judges/{config_id}?ok=judges.saved", status_code=303)


def _launch(session: Session, user: User, settings: Settings, config_id: int, task_id: Any) -> JudgeJob:
    config = _config(session, config_id)
    _owned(user, config.owner_id)
    try:
        tid = int(task_id)
    except (TypeError, ValueError):
        raise ConfigError("task_id", "choose the rating task to judge (task_id)") from None
    task = session.get(RatingTask, tid) if 0 < tid <= MAX_ID else None
    if task is None:
        raise ConfigError("task_id", f"rating task {tid} does not exist")
    return judge_jobs.launch(session, config=config, task=task, owner_id=user.id or 0, settings=settings)


@router.post("/judges/{config_id}/jobs")
def judge_launch_form(
    request: Request,
    config_id: int,
    user: Researcher,
    session: SessionDep,
    settings: SettingsDep,
    posted: PostedForm,
):
    try:
        jj = _launch(session, user, settings, config_id, posted.get("task_id"))
    except ConfigError as exc:
        return _config_page(request, session, user, settings, _config(session, config_id), exc)
    return RedirectResponse(f"/judges/jobs/{jj.id}", status_code=303)


@router.get("/judges/jobs/{judge_job_id}")
def judge_job_page(request: Request, judge_job_id: int, user: Researcher, session: SessionDep, err: str = ""):
    d = judge_jobs.detail(session, _judge_job(session, judge_job_id))
    zh = lang_of(request) == "zh"
    return render(
        request,
        "pages/judges_job.html",
        {"user": user, "nav": "rating", "d": d, "err": flash_key(err), "reason": reason_zh if zh else str},
        partial="partials/judge_job.html",
    )


def _job_action(session: Session, user: User, judge_job_id: int, action: str) -> JudgeJob:
    jj = _judge_job(session, judge_job_id)
    _owned(user, jj.owner_id)
    if action == "cancel":
        judge_jobs.cancel(session, judge_job=jj)
    else:
        judge_jobs.resume(session, judge_job=jj)
    return jj


@router.post("/judges/jobs/{judge_job_id}/{action}")
def judge_job_action_form(judge_job_id: int, action: str, user: Researcher, session: SessionDep):
    if action not in ("cancel", "resume"):
        raise HTTPException(status_code=404, detail=f"No action {action!r}: cancel or resume.")
    try:
        _job_action(session, user, judge_job_id, action)
    except JobStateError:
        return RedirectResponse(f"/judges/jobs/{judge_job_id}?err=judges.state", status_code=303)
    return RedirectResponse(f"/judges/jobs/{judge_job_id}", status_code=303)


@router.get("/api/judges")
def judges_api(user: Researcher, session: SessionDep, settings: SettingsDep) -> list[dict]:
    return [public(session, c, settings=settings) for c in list_configs(session)]


def _error(exc: ConfigError) -> JSONResponse:
    return JSONResponse({"detail": exc.message, "field": exc.field}, status_code=422)


@router.post("/api/judges", status_code=201)
def judges_create_api(user: Researcher, session: SessionDep, settings: SettingsDep, body: Any = Body(None)):  # noqa: B008
    """Create a judge: {"name", "kind": endpoint|local, "base_url", "model", "key" (write-only), "model_ref",
    "mode": chat|continuation, "lang": en|zh, "temperature", "max_tokens", "templates": {kind: text},
    "groups": {task_type: factual|reasoning|writing|advisory}}."""
    try:
        config = create_config(session, req=parse_config(body), owner_id=user.id or 0, settings=settings)
    except ConfigError as exc:
        return _error(exc)
    return JSONResponse(public(session, config, settings=settings), status_code=201)


@router.get("/api/judges/{config_id}")
def judge_api(config_id: int, user: Researcher, session: SessionDep, settings: SettingsDep) -> dict:
    return public(session, _config(session, config_id), settings=settings)


@router.put("/api/judges/{config_id}")
def judge_update_api(
    config_id: int,
    user: Researcher,
    session: SessionDep,
    settings: SettingsDep,
    body: Any = Body(None),  # noqa: B008
):
    """Replace a judge's settings (the body as for creation); without "key" the stored key is kept."""
    config = _config(session, config_id)
    _owned(user, config.owner_id)
    try:
        update_config(session, config=config, req=parse_config(body), settings=settings, by=user.id or 0)
    except ConfigError as exc:
        return _error(exc)
    return public(session, config, settings=settings)


@router.post("/api/judges/{config_id}/jobs", status_code=201)
def judge_launch_api(
    config_id: int,
    user: Researcher,
    session: SessionDep,
    settings: SettingsDep,
    body: Any = Body(None),  # noqa: B008
):
    """Start a judge job on a rating task: {"task_id"}."""
    task_id = body.get("task_id") if isinstance(body, dict) else None
    try:
        jj = _launch(session, user, settings, config_id, task_id)
    except ConfigError as exc:
        return _error(exc)
    return JSONResponse(judge_jobs.detail(session, jj), status_code=201)


@router.get("/api/judges/jobs/{judge_job_id}")
def judge_job_api(judge_job_id: int, user: Researcher, session: SessionDep) -> dict:
    """Status, progress, failures with their reasons and, for pairwise tasks, position consistency."""
    return judge_jobs.detail(session, _judge_job(session, judge_job_id))


@router.get("/api/judges/jobs/{judge_job_id}/results")
def judge_job_results_api(judge_job_id: int, user: Researcher, session: SessionDep) -> list[dict]:
    """Per case: outcome, prompt version, verdicts of both orders, explanations; or the failure's reason."""
    return judge_jobs.results(session, _judge_job(session, judge_job_id))


@router.post("/api/judges/jobs/{judge_job_id}/{action}")
def judge_job_action_api(judge_job_id: int, action: str, user: Researcher, session: SessionDep) -> dict:
    if action not in ("cancel", "resume"):
        raise HTTPException(status_code=404, detail=f"No action {action!r}: cancel or resume.")
    try:
        jj = _job_action(session, user, judge_job_id, action)
    except JobStateError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return judge_jobs.detail(session, jj)
