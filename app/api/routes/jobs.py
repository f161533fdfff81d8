"""Jobs: the list of every kind of background work, one job's page with its live log, cancel; JSON twins.

Routes stay thin: rows and the page's data come from app.jobs.listing, cancel from app.jobs.lifecycle.
Everyone with the researcher role sees every job; only the owner (or an admin) may cancel one.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.api.deps import Researcher, SessionDep
from app.jobs import listing
from app.jobs.lifecycle import JobStateError, request_cancel
from app.models import FINISHED, Job, Role, User
from app.web import flash_key, render

router = APIRouter()


def _job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(status_code=404, detail=f"Job {job_id} does not exist.")
    return job


def _may_cancel(user: User, owner_id: int | None, status: str) -> bool:
    return (user.role == Role.admin or owner_id == user.id) and status not in FINISHED


def _filter(
    kind: str = "",
    status: str = "",
    queue: str = "",
    owner: str = "",
    sort: str = "created",
    dir: str = "desc",
) -> listing.JobFilter:
    """The list's query parameters, declared once for the page and its JSON twin."""
    return listing.JobFilter(
        kind=kind,
        status=status,
        queue=queue,
        owner=owner,
        sort=sort if sort in listing.SORTS else "created",
        desc=dir != "asc",
    )


Filter = Annotated[listing.JobFilter, Depends(_filter)]


@router.get("/jobs")
def jobs_page(request: Request, user: Researcher, session: SessionDep, flt: Filter, ok: str = ""):
    rows = listing.list_jobs(session, flt=flt)
    kept = {"kind": flt.kind, "status": flt.status, "queue": flt.queue, "owner": flt.owner}
    return render(
        request,
        "pages/jobs.html",
        {
            "user": user,
            "nav": "jobs",
            "rows": rows,
            "cancellable": {r.id for r in rows if _may_cancel(user, r.owner_id, r.status)},
            "flt": flt,
            "qs": urlencode(kept),
            "options": listing.filter_options(session),
            "ok": flash_key(ok),
        },
    )


@router.get("/api/jobs", response_model=list[listing.JobRow])
def jobs_api(user: Researcher, session: SessionDep, flt: Filter):
    """Jobs of every kind, newest first unless sorted otherwise; at most 500."""
    return listing.list_jobs(session, flt=flt)


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: int, user: Researcher, session: SessionDep, ok: str = ""):
    """The page; with HX-Request, only its live part (what the page polls every 2 s until the job ends)."""
    return _render_job(request, session, user, _job(session, job_id), ok=flash_key(ok))


def _render_job(
    request: Request,
    session: Session,
    user: User,
    job: Job,
    *,
    ok: str = "",
    error: str = "",
    code: int = 200,
) -> Response:
    view = listing.job_view(session, job)
    return render(
        request,
        "pages/job.html",
        {
            "user": user,
            "nav": "jobs",
            "v": view,
            "job": job,
            "may_cancel": _may_cancel(user, job.owner_id, job.status),
            "ok": ok,
            "action_error": error,
        },
        partial="partials/job_live.html",
        status_code=code,
    )


@router.get("/api/jobs/{job_id}", response_model=listing.JobDetail)
def job_api(job_id: int, user: Researcher, session: SessionDep):
    """One job with its error, log tail and result."""
    return listing.job_detail(listing.job_view(session, _job(session, job_id)))


def _cancel(session: Session, user: User, job: Job) -> None:
    if user.role != Role.admin and job.owner_id != user.id:
        raise HTTPException(status_code=403, detail="Only the job's owner or an admin may cancel it.")
    request_cancel(session, job)


@router.post("/jobs/{job_id}/cancel")
def cancel_page(
    request: Request,
    job_id: int,
    user: Researcher,
    session: SessionDep,
    back: Annotated[str, Form(max_length=10)] = "",
):
    """Cancel from the job page, or from the list (back=list, which it returns to)."""
    job = _job(session, job_id)
    try:
        _cancel(session, user, job)
    except JobStateError as exc:
        return _render_job(request, session, user, job, error=str(exc), code=409)
    target = "/jobs" if back == "list" else f"/jobs/{job.id}"
    return RedirectResponse(f"{target}?ok=jobs.cancel.done", status_code=303)


@router.post("/api/jobs/{job_id}/cancel", response_model=listing.JobCancelled)
def cancel_api(job_id: int, user: Researcher, session: SessionDep):
    """Queued: cancelled at once. Running: flagged; the worker stops it within a heartbeat. Finished: 409."""
    job = _job(session, job_id)
    try:
        _cancel(session, user, job)
    except JobStateError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    assert job.id is not None
    return listing.JobCancelled(id=job.id, status=str(job.status), cancel_requested=job.cancel_requested)
