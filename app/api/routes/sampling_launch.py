"""Launching sampling jobs: the form (prefilled from a run's checkpoint), its live estimate, and the API.

Checks and launching live in app.sampling.launch and app.sampling.request, the estimate in
app.sampling.estimate. This router is included before app.api.routes.sampling, whose
/sampling/{sampling_id} would otherwise read "new" as an id.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from app.api.deps import PostedForm, Researcher, SessionDep, SettingsDep
from app.models import Dataset, DatasetVersion, Run, User
from app.sampling import estimate as estimating
from app.sampling import launch as launching
from app.sampling.request import SamplingError, parse_request
from app.web import render

router = APIRouter()


def _versions(session: Session) -> list[tuple[int | None, int, str]]:
    """(dataset id, version, label) of every dataset version, newest datasets first, for the form."""
    rows = session.exec(
        select(Dataset.id, Dataset.name, DatasetVersion.number, DatasetVersion.n_samples)
        .join(DatasetVersion, col(DatasetVersion.dataset_id) == col(Dataset.id))
        .order_by(col(Dataset.id).desc(), col(DatasetVersion.number).desc())
        .limit(500)
    ).all()
    return [(d, v, f"{name} v{v} ({n})") for d, name, v, n in rows]


def _runs(session: Session) -> list[int]:
    return [r for r in session.exec(select(Run.id).order_by(col(Run.id).desc()).limit(50)).all() if r]


def _form_page(
    request: Request, session: Session, user: User, values: dict, error: SamplingError | None = None
):
    return render(
        request,
        "pages/sampling_new.html",
        {
            "user": user,
            "nav": "sampling",
            "v": values,
            "versions": _versions(session),
            "runs": _runs(session),
            "error": error,
        },
        status_code=422 if error else 200,
    )


def _form_values(data: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in data.items() if isinstance(v, str) and k != "csrf_token"}
    dataset, _, version = str(values.pop("dataset", "")).partition(":")
    values.setdefault("dataset_id", dataset)
    values.setdefault("version", version)
    if not values.get("system_prompt"):
        values.pop("system_prompt", None)
    return values


@router.get("/sampling/new")
def sampling_form(
    request: Request,
    user: Researcher,
    session: SessionDep,
    model: str = "",
    dataset_id: int = 0,
    version: int = 0,
):
    """The launch form; `?model=run:<id>/step-N` (from a run's page) and `dataset_id`/`version` prefill it."""
    values = {"model": model[:1000], "dataset": f"{dataset_id}:{version}" if dataset_id else ""}
    return _form_page(request, session, user, values)


@router.post("/sampling/new")
def sampling_submit(
    request: Request, user: Researcher, session: SessionDep, settings: SettingsDep, posted: PostedForm
):
    values = _form_values(posted)
    try:
        sampling = launching.launch(
            session, req=parse_request(values), owner_id=user.id or 0, settings=settings
        )
    except SamplingError as exc:
        shown = {**values, "dataset": f"{values.get('dataset_id', '')}:{values.get('version', '')}"}
        return _form_page(request, session, user, shown, exc)
    return RedirectResponse(f"/sampling/{sampling.id}", status_code=303)


@router.post("/sampling/new/estimate")
def sampling_form_estimate(
    request: Request, user: Researcher, session: SessionDep, settings: SettingsDep, posted: PostedForm
):
    """The form's estimate box (HTMX, as fields change): answers, tokens and times, or why it cannot say."""
    est, error, backend = None, None, ""
    try:
        req = parse_request(_form_values(posted))
        backend = req.backend
        est = estimating.for_request(session, req=req, settings=settings)
    except SamplingError as exc:
        error = exc
    return render(
        request,
        "partials/sampling_estimate.html",
        {"user": user, "est": est, "error": error, "backend": backend},
    )


@router.post("/api/sampling", status_code=201)
def sampling_launch_api(user: Researcher, session: SessionDep, settings: SettingsDep, body: Any = Body(None)):  # noqa: B008
    """Launch a sampling job: {"model", "dataset_id", "version", "filter"?: {task, tag, q}, "params"?: {temperature,
    top_p, top_k, max_new_tokens, n, seed, stop}, "mode"?, "backend"?, "system_prompt"?, "chat_template_file"?}."""
    try:
        sampling = launching.launch(
            session, req=parse_request(body), owner_id=user.id or 0, settings=settings
        )
    except SamplingError as exc:
        return JSONResponse({"detail": exc.message, "field": exc.field}, status_code=422)
    return JSONResponse(
        {"id": sampling.id, "job_id": sampling.job_id, "url": f"/sampling/{sampling.id}"}, status_code=201
    )
