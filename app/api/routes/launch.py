"""Launching runs and sweeps: the form, its live mix table and estimate, the sweep pages; pages and JSON twins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlmodel import Session
from starlette.datastructures import FormData

from app.api.deps import Researcher, SessionDep, SettingsDep
from app.core.config import Settings
from app.core.db import get_engine
from app.jobs.workers import served_queues
from app.models import Run, Sweep
from app.runs import launch as launching
from app.runs import problems
from app.runs.estimate import FIELD_SLOTS, EstimateError, estimate, known_problem
from app.runs.form import (
    FIELDS,
    NEAR_DATASETS,
    FormError,
    LaunchForm,
    clone_form,
    config_of,
    default_form,
    parse_form,
    sections,
    to_request,
)
from app.runs.mix import group_counts, mix_table
from app.runs.pickers import checkpoint_choices, dataset_choices
from app.runs.submit import check_mix, from_api, submit
from app.runs.sweeps import create_sweep, list_sweeps, parse_grid, sweep_table
from app.web import render
from trainer.data import DataError

router = APIRouter()


def _mix(session: Session, form: LaunchForm) -> tuple[Any, str]:
    """The mix table for the form's versions, and an error for weights the data does not know."""
    if not form.train:
        return None, ""
    counts = group_counts(session, [(a, b) for a, b in form.train])
    fraction = 0.0 if form.eval_dataset else _fraction(form)
    errors: dict[str, str] = {}
    mix = config_of(form, errors)["data"]["mix"]
    try:
        return mix_table(counts, mix, level=form.mix_level, eval_fraction=fraction), errors.get("mix", "")
    except DataError as exc:  # weights of a task_type the newly chosen versions lack
        return mix_table(counts, {}, level=form.mix_level, eval_fraction=fraction), str(exc)


def _fraction(form: LaunchForm) -> float:
    try:
        value = float(form.value("data.eval_fraction"))
    except ValueError:
        return 0.0
    return value if 0.0 <= value < 1.0 else 0.0


def _context(
    session: Session,
    settings: Settings,
    form: LaunchForm,
    errors: dict[str, str],
    *,
    choices: bool = True,
    **extra: Any,
) -> dict:
    """The form page's context; `choices=False` (an HTMX fragment) skips the dataset and checkpoint
    pickers, which list up to 100 runs' checkpoint directories that no fragment shows."""
    table, mix_error = _mix(session, form)
    if mix_error and "mix" not in errors:
        errors = {**errors, "mix": mix_error}
    ctx = {
        "nav": "runs",
        "form": form,
        "errors": errors,
        "sections": sections(),
        "near_datasets": [FIELDS[name] for name in NEAR_DATASETS],
        "queues": settings.run_queues,
        "served": served_queues(session, settings),
        "mix": table,
        "estimate": None,
        **extra,
    }
    if choices:
        ctx.update(
            datasets=dataset_choices(session),
            eval_datasets=dataset_choices(session, validation=True),
            checkpoints=checkpoint_choices(session),
        )
    return ctx


def _full_page(request: Request) -> bool:
    return not request.headers.get("hx-request")  # render() answers an HTMX request with the fragment


async def _posted(request: Request) -> tuple[LaunchForm, FormData]:
    # Read on the event loop (an async dependency) so the routes can be plain `def`: FastAPI runs those
    # in its thread pool, and their database queries and broker retries (about a second when the broker
    # is down) never block the loop that serves every other request.
    data = await request.form()
    return parse_form(data, data.getlist), data


Posted = Annotated[tuple[LaunchForm, FormData], Depends(_posted)]


@router.get("/runs/new")
def new_run_page(
    request: Request, user: Researcher, session: SessionDep, settings: SettingsDep, clone: int = 0
):
    form = default_form(settings.run_queues[0])
    if clone:
        source = session.get(Run, clone) if 0 < clone <= launching.MAX_ID else None
        if source is None:
            raise HTTPException(status_code=404, detail=f"Run {clone} not found.")
        form = clone_form(source.form_json, name=source.name, run_id=clone)
    return render(request, "pages/run_new.html", {"user": user, **_context(session, settings, form, {})})


@router.post("/runs/new")
def new_run_submit(
    request: Request, user: Researcher, session: SessionDep, settings: SettingsDep, posted: Posted
):
    form, _ = posted
    problem = _known_problem(session, settings, form, user.id)  # type: ignore[arg-type]
    try:
        if problem is not None:
            raise FormError({problem.field: problem.message})
        run_id = submit(session, form, owner_id=user.id, queues=settings.run_queues)  # type: ignore[arg-type]
    except FormError as exc:
        ctx = _context(session, settings, form, exc.errors)
        if problem is not None:  # shown as the estimate shows it: in its box, and beside its field with fixes
            ctx.update(_problem_context(problem))
        return render(request, "pages/run_new.html", {"user": user, **ctx}, status_code=422)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post("/runs/new/mix")
def new_run_mix(
    request: Request, user: Researcher, session: SessionDep, settings: SettingsDep, posted: Posted
):
    form, _ = posted
    ctx = _context(session, settings, form, {}, choices=_full_page(request))
    return render(request, "pages/run_new.html", {"user": user, **ctx}, partial="partials/run_form_mix.html")


def _estimate_args(session: Session, settings: Settings, form: LaunchForm, owner_id: int) -> dict:
    """What an estimate of this form depends on; FormError or LaunchError when the form is wrong."""
    req = to_request(form, owner_id=owner_id, queues=settings.run_queues)
    return {
        "config": req.config,
        "datasets": req.datasets,
        "eval_dataset": req.eval_dataset,
        "model_path": launching.resolve_base_model(session, req.base_model),
        "tokenizer_dir": settings.model_dir,
        "world": max(req.n_gpus * req.num_nodes, req.n_procs, 1),  # n_gpus is per node
    }


def _estimate(session: Session, settings: Settings, form: LaunchForm, owner_id: int) -> dict:
    """{"estimate": Estimate} or {"errors": {field: message}, "fixes": [Fix], "listing": Listing | None}."""
    try:
        result = estimate(
            get_engine(settings), **_estimate_args(session, settings, form, owner_id), owner_id=owner_id
        )
    except FormError as exc:
        return {"errors": exc.errors}
    except launching.LaunchError as exc:
        return {"errors": {exc.field: exc.message}}
    except EstimateError as exc:
        return {"errors": {exc.field: exc.message}, "fixes": list(exc.fixes), "listing": _listing(exc)}
    return {"estimate": result}


def _listing(exc: EstimateError) -> problems.Listing | None:
    """The refusal's problem samples: those the message names, and a CSV of all when there are more."""
    if not exc.problems or exc.job_id is None:
        return None
    url = f"/runs/new/estimate/{exc.job_id}/problems.csv"
    return problems.listing(exc.message, total=exc.problems, csv_url=url)


def _known_problem(
    session: Session, settings: Settings, form: LaunchForm, owner_id: int
) -> EstimateError | None:
    """The refusal an estimate of this very launch met (samples over max_seq_len, say): the launch is refused
    at the field, before a run is created that would fail seconds after it starts."""
    try:
        return known_problem(get_engine(settings), **_estimate_args(session, settings, form, owner_id))
    except (FormError, launching.LaunchError):
        return None  # submit() reports those with their fields


def _refuse_known_problem(session: Session, settings: Settings, form: LaunchForm, owner_id: int) -> None:
    if (problem := _known_problem(session, settings, form, owner_id)) is not None:
        raise FormError({problem.field: problem.message})


def _problem_context(problem: EstimateError) -> dict:
    """What the estimate box and the field slots show for a refusal."""
    return {
        "estimate_errors": {problem.field: problem.message},
        "estimate_fixes": list(problem.fixes),
        "estimate_listing": _listing(problem),
    }


@router.post("/runs/new/estimate")
def new_run_estimate(
    request: Request, user: Researcher, session: SessionDep, settings: SettingsDep, posted: Posted
):
    form, _ = posted
    out = _estimate(session, settings, form, user.id)  # type: ignore[arg-type]
    errors = out.get("errors", {})
    ctx = _context(session, settings, form, errors, choices=_full_page(request), estimate=out.get("estimate"))
    ctx.update(
        estimate_errors=errors, estimate_fixes=out.get("fixes", []), estimate_listing=out.get("listing")
    )
    # The fragment also puts each problem beside its field (out of band); a full page shows it there anyway.
    ctx["field_slots"] = FIELD_SLOTS if not _full_page(request) else ()
    return render(
        request, "pages/run_new.html", {"user": user, **ctx}, partial="partials/run_form_estimate.html"
    )


def _unprocessable(
    errors: dict[str, str], fixes: list | None = None, listing: problems.Listing | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"detail": "invalid launch request", "errors": errors}
    if fixes:
        body["fixes"] = [{"field": f.name, "value": f.value, "label": f.label} for f in fixes]
    if listing is not None:  # every problem sample, where the message names only the first ones
        body["problems_csv"] = listing.csv_url
    return JSONResponse(body, status_code=422)


@router.post("/api/runs", status_code=201)
def api_launch(user: Researcher, session: SessionDep, settings: SettingsDep, body: Any = Body(None)):  # noqa: B008
    """Launch a run: {"name", "datasets": [{"dataset_id", "version"}], "eval_dataset"?, "base_model"?,
    "config"?: partial trainer config over the embedded_default preset, "mix"?, "queue"?, "n_gpus"?, "n_procs"?}."""
    try:
        form = from_api(body, queue=settings.run_queues[0])
        _refuse_known_problem(session, settings, form, user.id)  # type: ignore[arg-type]
        run_id = submit(session, form, owner_id=user.id, queues=settings.run_queues)  # type: ignore[arg-type]
    except FormError as exc:
        return _unprocessable(exc.errors)
    return JSONResponse({"id": run_id, "url": f"/runs/{run_id}"}, status_code=201)


@router.post("/api/runs/estimate")
def api_estimate(user: Researcher, session: SessionDep, settings: SettingsDep, body: Any = Body(None)):  # noqa: B008
    """The estimate for the same JSON body as POST /api/runs, without launching."""
    try:
        form = from_api(body, queue=settings.run_queues[0])
    except FormError as exc:
        return _unprocessable(exc.errors)
    out = _estimate(session, settings, form, user.id)  # type: ignore[arg-type]
    if "errors" in out:
        return _unprocessable(out["errors"], out.get("fixes"), out.get("listing"))
    return out["estimate"].to_json()


# ---- sweeps ----


def _sweep_context(session: Session, settings: Settings, form: LaunchForm, grid: dict, errors: dict) -> dict:
    return {**_context(session, settings, form, errors), "nav": "runs", "grid": grid}


def _launch_sweep(session: Session, settings: Settings, form: LaunchForm, data: Any, owner_id: int) -> int:
    errors: dict[str, str] = {}
    try:
        base = to_request(form, owner_id=owner_id, queues=settings.run_queues)
    except FormError as exc:
        errors.update(exc.errors)
        base = None
    grid, grid_errors = parse_grid(
        data,
        default_epochs=float(base.config["train"]["epochs"]) if base else 1.0,
        default_lr=float(base.config["train"]["lr"]) if base else 1e-5,
    )
    errors.update(grid_errors)
    if errors or base is None:
        raise FormError(errors)
    check_mix(session, base)
    sweep = create_sweep(session, name=form.name, owner_id=owner_id, base=base, grid=grid)
    assert sweep.id is not None
    return sweep.id


def _grid_text(data: Any) -> dict:
    return {k: str(data.get(f"grid.{k}") or "") for k in ("epochs", "lr", "task", "shares")}


@router.get("/sweeps")
def sweeps_page(request: Request, user: Researcher, session: SessionDep):
    return render(request, "pages/sweeps.html", {"user": user, "nav": "runs", "sweeps": list_sweeps(session)})


@router.get("/sweeps/new")
def new_sweep_page(request: Request, user: Researcher, session: SessionDep, settings: SettingsDep):
    form = default_form(settings.run_queues[0])
    form.name = form.name.replace("run", "sweep", 1)
    form.values["data.eval_fraction"] = "0.1"
    grid = {"epochs": "1, 2", "lr": "1e-5, 3e-5", "task": "", "shares": "1, 0.5, 0.25"}
    return render(
        request, "pages/sweep_new.html", {"user": user, **_sweep_context(session, settings, form, grid, {})}
    )


@router.post("/sweeps/new")
def new_sweep_submit(
    request: Request, user: Researcher, session: SessionDep, settings: SettingsDep, posted: Posted
):
    form, data = posted
    try:
        sweep_id = _launch_sweep(session, settings, form, data, user.id)  # type: ignore[arg-type]
    except FormError as exc:
        ctx = _sweep_context(session, settings, form, _grid_text(data), exc.errors)
        return render(request, "pages/sweep_new.html", {"user": user, **ctx}, status_code=422)
    return RedirectResponse(f"/sweeps/{sweep_id}", status_code=303)


def _sweep(session: Session, sweep_id: int) -> Sweep:
    sweep = session.get(Sweep, sweep_id) if 0 < sweep_id <= launching.MAX_ID else None
    if sweep is None:
        raise HTTPException(status_code=404, detail=f"Sweep {sweep_id} not found.")
    return sweep


@router.get("/sweeps/{sweep_id}")
def sweep_page(request: Request, user: Researcher, session: SessionDep, sweep_id: int, level: int = 1):
    table = sweep_table(session, _sweep(session, sweep_id), level=2 if level == 2 else 1)
    return render(
        request,
        "pages/sweep.html",
        {"user": user, "nav": "runs", "s": table},
        partial="partials/sweep_table.html",
    )


@router.post("/api/sweeps", status_code=201)
def api_sweep(user: Researcher, session: SessionDep, settings: SettingsDep, body: Any = Body(None)):  # noqa: B008
    """The launch body of POST /api/runs plus "grid": {"epochs": [..], "lr": [..], "task": "nli", "shares": [..]}."""
    try:
        form = from_api(body, queue=settings.run_queues[0])
        grid = body.get("grid") if isinstance(body.get("grid"), dict) else {}
        data = {f"grid.{k}": v for k, v in grid.items()}
        sweep_id = _launch_sweep(session, settings, form, data, user.id)  # type: ignore[arg-type]
    except FormError as exc:
        return _unprocessable(exc.errors)
    return JSONResponse({"id": sweep_id, "url": f"/sweeps/{sweep_id}"}, status_code=201)


@router.get("/api/sweeps/{sweep_id}")
def api_sweep_table(user: Researcher, session: SessionDep, sweep_id: int, level: int = 1):
    return sweep_table(session, _sweep(session, sweep_id), level=2 if level == 2 else 1)
