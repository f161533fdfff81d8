"""Sampling jobs: the list, one job's results with filters and their live updates, analysis, cancel, resume,
exports. Launching (the form, its estimate, the API) is app.api.routes.sampling_launch.

Routes stay thin: queries in app.sampling.results, live updates in app.sampling.live, analysis in
app.sampling.analysis. Researchers and admins view; raters get 403 (they see answers only through rating
tasks, blind).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlmodel import Session

from app.api.deps import Researcher, SessionDep, SettingsDep
from app.core.db import get_engine
from app.datasets.export import export_filename
from app.jobs.lifecycle import JobStateError
from app.models import FINISHED, SamplingJob, User
from app.sampling import analysis, live, results
from app.sampling import launch as launching
from app.web import flash_key, render

router = APIRouter()

MAX_ID = 2**31 - 1
FINISH_REASONS = ("stop", "length")


def _sampling(session: Session, sampling_id: int) -> SamplingJob:
    found = session.get(SamplingJob, sampling_id) if 0 < sampling_id <= MAX_ID else None
    if found is None:
        raise HTTPException(status_code=404, detail=f"Sampling job {sampling_id} does not exist.")
    return found


def _flt(task_type: str = "", finish_reason: str = "", q: str = "") -> results.GenerationFilter:
    if finish_reason and finish_reason not in FINISH_REASONS:
        raise HTTPException(
            status_code=422, detail=f"finish_reason must be one of {', '.join(FINISH_REASONS)}"
        )
    if len(q) > 200 or len(task_type) > 401:
        raise HTTPException(status_code=422, detail="q is limited to 200 characters, task_type to 401")
    return results.GenerationFilter(task_type=task_type, finish_reason=finish_reason, q=q)


Flt = Annotated[results.GenerationFilter, Depends(_flt)]


def _after(after: int = 0) -> int:
    if not 0 <= after <= MAX_ID:
        raise HTTPException(status_code=422, detail="after must be a sample id")
    return after


After = Annotated[int, Depends(_after)]


@router.get("/sampling")
def sampling_list_page(request: Request, user: Researcher, session: SessionDep, ok: str = ""):
    rows = results.list_jobs(session)
    return render(
        request,
        "pages/sampling_list.html",
        {"user": user, "nav": "sampling", "rows": rows, "ok": flash_key(ok)},
    )


@router.get("/api/sampling")
def sampling_list_api(user: Researcher, session: SessionDep) -> list[dict]:
    """Sampling jobs, newest first: model, dataset version, parameters, status and progress."""
    return [dataclasses.asdict(s) for s in results.list_jobs(session)]


def _facts(session: Session, sampling_id: int) -> dict[str, Any]:
    summary = results.summary(session, _sampling(session, sampling_id).id or 0)
    assert summary is not None
    counts = results.finish_counts(session, sampling_id)
    total = sum(counts.values())
    return {
        "summary": summary,
        "counts": counts,
        "cut_share": counts.get("length", 0) / total if total else 0.0,
    }


def _detail(session: Session, sampling_id: int, flt: results.GenerationFilter, after: int) -> dict[str, Any]:
    facts = _facts(session, sampling_id)
    # the cursor first: answers stored while the page is built come with the first poll, not twice
    since = live.cursor(session, sampling_id)
    return {
        **facts,
        "since": since,
        "task_types": results.task_types(session, sampling_id),
        "page": results.page(session, sampling_id, flt=flt, after=after, max_id=since),
    }


def _page_context(user: User, detail: dict[str, Any]) -> dict[str, Any]:
    s = detail["summary"]
    return {
        "user": user,
        "s": s,
        "counts": detail["counts"],
        "cut_share": detail["cut_share"],
        "finished": s.status in FINISHED,
        "may_change": user.role == "admin" or s.owner == user.username,
    }


def _live(
    sampling_id: int, flt: results.GenerationFilter, after: int, upto: int | None, since: int, polling: bool
) -> dict[str, Any]:
    """The poller's state: the URL of the next poll (the page's filters and window, the new cursor)."""
    query = {**dataclasses.asdict(flt), "after": after, "since": since}
    if upto is not None:
        query["upto"] = upto
    return {"since": since, "polling": polling, "url": f"/sampling/{sampling_id}/live?{urlencode(query)}"}


@router.get("/sampling/{sampling_id}")
def sampling_page(
    request: Request,
    sampling_id: int,
    user: Researcher,
    session: SessionDep,
    flt: Flt,
    after: After,
    ok: str = "",
):
    detail = _detail(session, sampling_id, flt, after)
    ctx = _page_context(user, detail)
    upto = detail["page"].next_after
    return render(
        request,
        "pages/sampling.html",
        {
            **ctx,
            "nav": "sampling",
            "page": detail["page"],
            "task_types": detail["task_types"],
            "flt": flt,
            "ok": flash_key(ok),
            "live": _live(sampling_id, flt, after, upto, detail["since"], not ctx["finished"]),
        },
    )


def _id_or_none(value: int | None, name: str) -> int | None:
    if value is not None and not 0 <= value <= MAX_ID:
        raise HTTPException(status_code=422, detail=f"{name} must be a generation or sample id")
    return value


@router.get("/sampling/{sampling_id}/live")
def sampling_live_partial(
    request: Request,
    sampling_id: int,
    user: Researcher,
    session: SessionDep,
    flt: Flt,
    after: After,
    since: int = 0,
    upto: int | None = None,
):
    """A running job's page polls this: the answers stored after Generation id `since` that belong on it
    (app.sampling.live), the head with progress and counters, and the poller; it stops once the job ended."""
    since = _id_or_none(since, "since") or 0
    upto = _id_or_none(upto, "upto")
    # status before answers: a job seen finished has every answer stored, so stopping loses none
    ctx = _page_context(user, _facts(session, sampling_id))
    update = live.since(session, sampling_id, flt=flt, since_id=since, after=after, upto=upto)
    polling = not ctx["finished"] or update.more
    return render(
        request,
        "partials/sampling_live.html",
        {
            **ctx,
            "oob": True,
            "live": {**_live(sampling_id, flt, after, upto, update.cursor, polling), "changes": update},
        },
    )


@router.get("/api/sampling/{sampling_id}")
def sampling_api(sampling_id: int, user: Researcher, session: SessionDep, flt: Flt, after: After) -> dict:
    """One sampling job: its summary, finish-reason counts, and a page of prompts with their answers
    (filters task_type, finish_reason, q; `after` = the page's `next_after`); `since` is the highest answer id
    the page includes, the cursor of /sampling/<id>/live."""
    detail = _detail(session, sampling_id, flt, after)
    return {
        **detail,
        "summary": dataclasses.asdict(detail["summary"]),
        "page": dataclasses.asdict(detail["page"]),
    }


@router.get("/sampling/{sampling_id}/analysis")
def sampling_analysis_partial(request: Request, sampling_id: int, user: Researcher, session: SessionDep):
    """The analysis section of the results page, fetched by HTMX after the answers have shown."""
    sampling = _sampling(session, sampling_id)
    return render(
        request,
        "partials/sampling_analysis.html",
        {"user": user, "sid": sampling.id, "a": analysis.analyse(session, sampling)},
    )


@router.get("/api/sampling/{sampling_id}/analysis")
def sampling_analysis_api(sampling_id: int, user: Researcher, session: SessionDep) -> dict:
    """Accuracy per task_type (inferred scorer, Wilson 95% interval), lengths, cut share, repeated answers,
    identity claims and the latency fit, over all of the job's answers."""
    return analysis.analyse(session, _sampling(session, sampling_id))


def _change(session: Session, user: User, sampling_id: int, action: str) -> None:
    sampling = _sampling(session, sampling_id)
    try:
        if action == "cancel":
            launching.cancel(session, sampling=sampling, user=user)
        else:
            launching.resume(session, sampling=sampling, user=user)
    except PermissionError as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    except JobStateError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


@router.post("/sampling/{sampling_id}/cancel")
def sampling_cancel_form(sampling_id: int, user: Researcher, session: SessionDep):
    _change(session, user, sampling_id, "cancel")
    return RedirectResponse(f"/sampling/{sampling_id}?ok=sampling.cancelled", status_code=303)


@router.post("/sampling/{sampling_id}/resume")
def sampling_resume_form(sampling_id: int, user: Researcher, session: SessionDep):
    _change(session, user, sampling_id, "resume")
    return RedirectResponse(f"/sampling/{sampling_id}?ok=sampling.resumed", status_code=303)


@router.post("/api/sampling/{sampling_id}/cancel")
def sampling_cancel_api(sampling_id: int, user: Researcher, session: SessionDep) -> dict:
    """Queued: cancelled at once. Running: flagged; the worker stops it within a heartbeat. Finished: 409."""
    _change(session, user, sampling_id, "cancel")
    return {"id": sampling_id, "cancelled": True}


@router.post("/api/sampling/{sampling_id}/resume")
def sampling_resume_api(sampling_id: int, user: Researcher, session: SessionDep) -> dict:
    """Queue a failed, cancelled or lost sampling job again; prompts already answered are skipped."""
    _change(session, user, sampling_id, "resume")
    return {"id": sampling_id, "queued": True}


EXPORT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def _download(
    session: Session, sampling_id: int, ext: str, body: Iterator[bytes] | Iterator[str]
) -> Response:
    """A streamed export of the job's answers, named after its dataset and version."""
    s = results.summary(session, _sampling(session, sampling_id).id or 0)
    assert s is not None
    name = export_filename(f"sampling-{sampling_id}-{s.dataset}", s.version).replace(".jsonl", f".{ext}")
    return StreamingResponse(
        body, media_type=EXPORT_TYPES[ext], headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/api/sampling/{sampling_id}/export.jsonl")
def sampling_export_jsonl(
    sampling_id: int, user: Researcher, session: SessionDep, settings: SettingsDep
) -> Response:
    """Every answer as JSONL (prompt, answer, tokens, finish reason, timings, reference)."""
    return _download(session, sampling_id, "jsonl", results.export_jsonl(get_engine(settings), sampling_id))


@router.get("/api/sampling/{sampling_id}/export.csv")
def sampling_export_csv(
    sampling_id: int, user: Researcher, session: SessionDep, settings: SettingsDep
) -> Response:
    """Every answer as CSV, one row per answer, with a header line."""
    return _download(session, sampling_id, "csv", results.export_csv(get_engine(settings), sampling_id))
