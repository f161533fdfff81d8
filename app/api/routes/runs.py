"""Training runs: the list, the run page and its live data, overlay, config diff, sample viewer; JSON twins.

Routes stay thin: page data comes from app.runs.views/listing/compare/samples, curves from
app.runs.series, cancel and resume from app.runs.lifecycle. Everyone with the researcher role sees
every run; only the owner (or an admin) may cancel or resume one.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.api.deps import FunctionSessionDep, Researcher, SessionDep, SettingsDep, StreamingResearcher
from app.core.config import Settings
from app.core.db import get_engine
from app.models import Role, Run, User
from app.runs import compare, listing, live, samples, series, views
from app.runs.lifecycle import LifecycleError, can_resume, request_cancel, resume
from app.web import flash_key, render

router = APIRouter()
EVENTS_LIMIT = 5000
MAX_OVERLAY = 12


def _run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise HTTPException(status_code=404, detail=f"Run {run_id} does not exist.")
    return run


def _may_act(user: User, run: Run) -> bool:
    return user.role == Role.admin or run.owner_id == user.id


def _id(text: str) -> int | None:
    """A run or dataset id typed into a query string, else None.

    Strict ASCII digits: str.isdigit() also accepts "²", which int() then refuses (a 500).
    """
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None


def _filter(
    status: str = "",
    owner: str = "",
    dataset: str = "",
    q: str = "",
    sort: str = "created",
    dir: str = "desc",
) -> listing.RunFilter:
    """The list's query parameters, declared once for the page and its JSON twin."""
    return listing.RunFilter(
        status=status,
        owner=owner,
        dataset=_id(dataset.strip()),
        q=q,
        sort=sort if sort in listing.SORTS else "created",
        desc=dir != "asc",
    )


Filter = Annotated[listing.RunFilter, Depends(_filter)]


@router.get("/runs")
def runs_page(request: Request, user: Researcher, session: SessionDep, flt: Filter):
    kept = {"status": flt.status, "owner": flt.owner, "dataset": flt.dataset or "", "q": flt.q}
    return render(
        request,
        "pages/runs.html",
        {
            "user": user,
            "nav": "runs",
            "rows": listing.list_runs(session, flt=flt),
            "flt": flt,
            "qs": urlencode(kept),
            "options": listing.filter_options(session),
            "key_params": [k for k, _, _ in listing.KEY_PARAMS],
        },
    )


@router.get("/api/runs")
def runs_api(user: Researcher, session: SessionDep, flt: Filter) -> list[dict]:
    return listing.list_runs(session, flt=flt)


def _ids(raw: str) -> list[int]:
    ids = [i for p in raw.replace(" ", "").split(",") if (i := _id(p)) is not None]
    if not ids:
        raise HTTPException(status_code=422, detail="Pick at least one run to compare (ids=1,2,3).")
    return list(dict.fromkeys(ids))[:MAX_OVERLAY]


def _overlay(session: Session, ids: str, channel: str) -> dict:
    runs = [_run(session, i) for i in _ids(ids)]
    parsed = [series.run_series(session, run) for run in runs]  # once per run, for both uses below
    every, anywhere = compare.channels_of(parsed)
    channel = channel or "overall"
    return {
        "runs": runs,
        "channel": channel,
        "channels_all": every,
        "channels_any": anywhere,
        "data": compare.overlay(list(zip(runs, parsed, strict=True)), channel),
    }


@router.get("/runs/compare")
def compare_page(request: Request, user: Researcher, session: SessionDep, ids: str = "", channel: str = ""):
    ctx = _overlay(session, ids, channel)
    return render(request, "pages/runs_compare.html", {"user": user, "nav": "runs", **ctx})


@router.get("/api/runs/compare")
def compare_api(user: Researcher, session: SessionDep, ids: str = "", channel: str = "") -> dict:
    ctx = _overlay(session, ids, channel)
    ctx["runs"] = [{"id": r.id, "name": r.name} for r in ctx["runs"]]
    return ctx


@router.get("/runs/diff")
def diff_page(request: Request, user: Researcher, session: SessionDep, a: int, b: int, only: str = ""):
    ra, rb = _run(session, a), _run(session, b)
    rows = compare.config_diff(session, ra, rb)
    return render(
        request,
        "pages/runs_diff.html",
        {"user": user, "nav": "runs", "a": ra, "b": rb, "rows": rows, "only": only == "1"},
    )


@router.get("/api/runs/diff")
def diff_api(user: Researcher, session: SessionDep, a: int, b: int) -> dict:
    ra, rb = _run(session, a), _run(session, b)
    return {"a": a, "b": b, "rows": compare.config_diff(session, ra, rb)}


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: int, user: Researcher, session: SessionDep, ok: str = ""):
    return _render_run(request, session, user, _run(session, run_id), ok=flash_key(ok))


def _render_run(
    request: Request,
    session: Session,
    user: User,
    run: Run,
    *,
    ok: str = "",
    error: str = "",
    code: int = 200,
) -> Response:
    data = views.page_data(session, run)
    return render(
        request,
        "pages/run.html",
        {
            "user": user,
            "nav": "runs",
            **data,
            "may_act": _may_act(user, run),
            "can_resume": can_resume(run),
            "ok": ok,
            "action_error": error,
        },
        status_code=code,
    )


def _act(session: Session, user: User, run: Run, action: str) -> None:
    if not _may_act(user, run):
        raise HTTPException(status_code=403, detail="Only the run's owner or an admin may do this.")
    if action == "cancel":
        request_cancel(session, run)
    else:
        resume(session, run)


@router.post("/runs/{run_id}/cancel")
def cancel_page(request: Request, run_id: int, user: Researcher, session: SessionDep):
    return _act_page(request, session, user, _run(session, run_id), "cancel")


@router.post("/runs/{run_id}/resume")
def resume_page(request: Request, run_id: int, user: Researcher, session: SessionDep):
    return _act_page(request, session, user, _run(session, run_id), "resume")


def _act_page(request: Request, session: Session, user: User, run: Run, action: str) -> Response:
    try:
        _act(session, user, run, action)
    except LifecycleError as exc:
        return _render_run(request, session, user, run, error=str(exc), code=409)
    return RedirectResponse(f"/runs/{run.id}?ok=runs.{action}.done", status_code=303)


def _api_act(session: Session, user: User, run: Run, action: str) -> dict:
    try:
        _act(session, user, run, action)
    except LifecycleError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return {"id": run.id, "status": str(run.status), "cancel_requested": run.job.cancel_requested}


@router.post("/api/runs/{run_id}/cancel")
def cancel_api(run_id: int, user: Researcher, session: SessionDep) -> dict:
    return _api_act(session, user, _run(session, run_id), "cancel")


@router.post("/api/runs/{run_id}/resume")
def resume_api(run_id: int, user: Researcher, session: SessionDep) -> dict:
    return _api_act(session, user, _run(session, run_id), "resume")


@router.get("/api/runs/{run_id}")
def run_api(run_id: int, user: Researcher, session: SessionDep) -> dict[str, Any]:
    run = _run(session, run_id)
    data = views.page_data(session, run)
    return {
        **run.model_dump(exclude={"form_json", "config_json"}),
        **run.job.model_dump(
            include={
                "status",
                "queue",
                "created_at",
                "started_at",
                "finished_at",
                "heartbeat_at",
                "worker",
                "cancel_requested",
                "exit_code",
                "error",
                "events_seq",
            }
        ),  # fmt: skip
        "step": run.step,
        "total_steps": run.total_steps,
        "owner": data["owner"],
        "progress": data["progress"],
        "datasets": data["datasets"],
        "counts": data["counts"],
        "config": data["config"],
        "checkpoints": [{"step": c["step"], "name": c["name"]} for c in data["checkpoints"]],
        "log_tail": data["log"],
        "can_resume": can_resume(run),
    }


@router.get("/api/runs/{run_id}/log")
def log_api(run_id: int, user: Researcher, session: SessionDep) -> dict:
    """The log tail alone: what the run page refreshes every few seconds, without the rest of page_data."""
    return {"log": views.log_tail(_run(session, run_id))}


@router.get("/api/runs/{run_id}/events")
def events_api(run_id: int, user: Researcher, session: SessionDep, after: int = -1) -> Response:
    """Events stored after seq `after`, in seq order, at most 5000, as the trainer wrote them.

    The raw events for scripts and tools; the run page polls /series?after= for points instead.
    """
    run = _run(session, run_id)
    return Response(
        views.events_json(session, run, after=after, limit=EVENTS_LIMIT), media_type="application/json"
    )


@router.get("/api/runs/{run_id}/series")
def series_api(run_id: int, user: Researcher, session: SessionDep, after: int | None = None) -> Response:
    """The charts' first load: every curve downsampled, plus epoch boundaries and markers.

    With `after` (the last_seq of the page's previous answer), what the run page polls each second:
    the points changed since (see series.series_since), progress with its ETA, and whether a start
    event arrived (it carries the data counts, which the page then renders again).
    """
    run = _run(session, run_id)
    assert run.id is not None
    head = {"run_id": run.id, **views.progress(session, run)}
    if after is None:
        data = series.series_payload(session, run)
    else:
        data = series.series_since(session, run, after=after)
        data["started"] = views.stored_after(session, run.id, "start", after=after)
    return Response(orjson.dumps({**head, **data}), media_type="application/json")


@router.get("/api/runs/{run_id}/stream")
def stream_api(
    request: Request,
    run_id: int,
    user: StreamingResearcher,
    session: FunctionSessionDep,
    settings: SettingsDep,
    after: int | None = None,
) -> Response:
    """The run page's live updates as server-sent events: each message is what /series?after= answers.

    Resumes after the browser's Last-Event-ID on a reconnect (else `after`). Beyond `live_streams` open
    streams it answers 503 with Retry-After, and the page polls /series instead (see app.runs.live).
    """
    run = _run(session, run_id)
    assert run.id is not None
    try:
        start = live.resume_after(request.headers.get("last-event-id"), after)
    except live.LiveError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    if not live.STREAMS.acquire(settings.live_streams):
        raise HTTPException(
            status_code=503,
            detail="Too many live streams are open; the page polls instead.",
            headers={"Retry-After": "30"},
        )
    body = live.stream(
        engine=get_engine(settings),
        run_id=run.id,
        after=start,
        settings=settings,
        disconnected=request.is_disconnected,
    )
    return live.EventStream(body, slots=live.STREAMS)


def _shown(session: Session, settings: Settings, run: Run, index: int, user: User) -> samples.ShownSample:
    config = views.run_config(run)
    assert run.id is not None
    start = views.first_event(session, run.id, "start")
    source = samples.tokenizer_source(run, config, start, settings.model_dir)
    try:
        return samples.show_sample(run, index, config=config, tokenizer=source, owner_id=user.id)
    except samples.SampleError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


@router.get("/runs/{run_id}/samples/{index}")
def sample_page(
    request: Request, run_id: int, index: int, user: Researcher, session: SessionDep, settings: SettingsDep
):
    run = _run(session, run_id)
    shown = _shown(session, settings, run, index, user)
    return render(request, "pages/run_sample.html", {"user": user, "nav": "runs", "run": run, "s": shown})


@router.get("/api/runs/{run_id}/samples/{index}")
def sample_api(run_id: int, index: int, user: Researcher, session: SessionDep, settings: SettingsDep) -> dict:
    shown = _shown(session, settings, _run(session, run_id), index, user)
    return asdict(shown)
