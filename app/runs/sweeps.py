"""Sweeps: one form launches a grid of runs, epochs × learning rate × the share of one task_type.

Why this grid: the question it answers is where a model stops learning a task (how much of `逻辑推理`
is enough, and for how long, at which rate), so the axis besides the usual two is the chosen
task_type's mix weight multiplied by a share (1, 0.5, 0.25). Comparing needs validation losses, so a
sweep without validation data is refused before anything is created.

Creation is all or nothing: every grid point goes through app.runs.launch.create_run in one
transaction and only then are the runs enqueued, so a point the trainer config refuses leaves no half
sweep behind.
The sweep page reads each run's last eval event (per-task_type channels) into one table; it re-polls
every few seconds while runs train, so it reads every run's last eval in one query, not one per run.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models import Job, Run, RunEvent, RunStatus, Sweep, User
from app.runs import curves
from app.runs import launch as launching
from app.runs.form import FormError, text_of
from app.runs.launch import LaunchError, LaunchRequest
from app.runs.mix import group_counts, scale_task

MAX_POINTS = 64


@dataclass
class Grid:
    epochs: list[float]
    lrs: list[float]
    task: str  # "" = no share axis
    shares: list[float]

    def points(self) -> list[tuple[float, float, float]]:
        """(epochs, lr, share) in row order: epochs, then lr, then share, as the sweep table lists them."""
        return list(itertools.product(self.epochs, self.lrs, self.shares if self.task else [1.0]))


def _numbers(
    raw: str, what: str, errors: dict[str, str], *, default: list[float] | None = None
) -> list[float]:
    parts = [p for p in re.split(r"[,\s;]+", raw.strip()) if p]
    if not parts:
        if default is not None:
            return default
        errors[what] = "give at least one value"
        return []
    out: list[float] = []
    for p in parts:
        try:
            v = float(p.rstrip("%")) / (100 if p.endswith("%") else 1)
        except ValueError:
            errors[what] = f"{p[:30]!r} is not a number"
            return []
        if not math.isfinite(v) or v <= 0:
            errors[what] = f"{p[:30]!r} must be a number > 0"
            return []
        if v not in out:
            out.append(v)
    return out


def parse_grid(
    data: Mapping[str, Any], *, default_epochs: float, default_lr: float
) -> tuple[Grid, dict[str, str]]:
    """The grid inputs (grid.epochs, grid.lr, grid.task, grid.shares) -> Grid and field errors."""

    def get(key: str) -> str:
        value = data.get(key)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        return str(value).strip() if value is not None else ""

    errors: dict[str, str] = {}
    grid = Grid(
        epochs=_numbers(get("grid.epochs"), "grid.epochs", errors, default=[default_epochs]),
        lrs=_numbers(get("grid.lr"), "grid.lr", errors, default=[default_lr]),
        task=get("grid.task"),
        shares=_numbers(get("grid.shares"), "grid.shares", errors, default=[1.0]),
    )
    if grid.task and any(s > 1 for s in grid.shares) and "grid.shares" not in errors:
        errors["grid.shares"] = "shares are fractions of the task's weight: at most 1 (100%)"
    if not errors and len(grid.points()) > MAX_POINTS:
        errors["grid.epochs"] = f"{len(grid.points())} grid points; at most {MAX_POINTS} per sweep"
    return grid, errors


def point_name(name: str, epochs: float, lr: float, task: str, share: float) -> str:
    label = f"{name} · ep {epochs:g} · lr {lr:g}"
    return f"{label} · {task} ×{share:g}" if task else label


def create_sweep(session: Session, *, name: str, owner_id: int, base: LaunchRequest, grid: Grid) -> Sweep:
    """Insert the Sweep and one run per grid point (sweep_id set), commit, enqueue; FormError on refusal."""
    data = base.config["data"]
    if base.eval_dataset is None and not data.get("eval_fraction"):
        raise FormError(
            {
                "data.eval_fraction": "a sweep compares validation losses: choose an eval dataset or set an eval fraction > 0"
            }
        )
    counts = group_counts(session, base.datasets)
    if grid.task:
        try:
            scale_task(counts, data.get("mix") or {}, grid.task, 1.0)
        except ValueError as exc:  # DataError too: an unknown key in the base mix
            raise FormError({"grid.task": str(exc)}) from None
    sweep = Sweep(name=name.strip()[:200], owner_id=owner_id, spec_json="{}")
    session.add(sweep)
    session.flush()
    runs, points = [], []
    for epochs, lr, share in grid.points():
        config = copy.deepcopy(base.config)
        config["train"].update(epochs=epochs, lr=lr)
        mix = data.get("mix") or {}
        if grid.task:
            mix = scale_task(counts, mix, grid.task, share)
        config["data"]["mix"] = mix
        form = copy.deepcopy(base.form)
        form.setdefault("values", {}).update({"train.epochs": text_of(epochs), "train.lr": text_of(lr)})
        form["mix"] = {k: text_of(v) for k, v in mix.items()}
        form["name"] = point_name(name, epochs, lr, grid.task, share)
        req = replace(base, name=form["name"][:200], config=config, form=form, sweep_id=sweep.id)
        try:
            run = launching.create_run(session, req)
        except LaunchError as exc:
            session.rollback()
            raise FormError({exc.field: exc.message}) from None
        runs.append(run)
        points.append({"run_id": run.id, "epochs": epochs, "lr": lr, "share": share})
    sweep.spec_json = json.dumps(
        {"grid": asdict(grid), "points": points, "form": base.form}, ensure_ascii=False
    )
    session.commit()
    failed = [m for run in runs if (m := launching.enqueue_run(session, run))]
    if failed:  # the sweep and its runs stay, marked failed with the reason, and the form says why
        raise FormError({"queue": failed[0]})
    session.refresh(sweep)
    return sweep


def _channel_name(channel: str, level: int) -> str | None:
    """ "l1/nli" -> "nli" at level 1; "l2/pclue/nli" -> "pclue/nli" at level 2 ("l2/chat/" -> "chat")."""
    prefix = f"l{level}/"
    if not channel.startswith(prefix):
        return None
    rest = channel[len(prefix) :]
    return rest.rstrip("/") if level == 2 and rest.endswith("/") else rest


def last_evals(session: Session, run_ids: list[int]) -> dict[int, dict]:
    """run id -> its last eval event (the highest seq of type "eval"), for runs that have one.

    One grouped query for the max seq per run (the (run_id, type, step) index narrows it to eval
    rows), then those rows by (run_id, seq): not a per-run ORDER BY seq, which walks every event.
    """
    if not run_ids:
        return {}
    last = (
        select(RunEvent.run_id, func.max(RunEvent.seq).label("seq"))
        .where(col(RunEvent.run_id).in_(run_ids), RunEvent.type == "eval")
        .group_by(col(RunEvent.run_id))
        .subquery()
    )
    rows = session.exec(
        select(RunEvent.run_id, RunEvent.data).join(
            last, (col(RunEvent.run_id) == last.c.run_id) & (col(RunEvent.seq) == last.c.seq)
        )
    ).all()
    out: dict[int, dict] = {}
    for run_id, raw in rows:
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict):
            out[run_id] = data
    return out


def sweep_table(session: Session, sweep: Sweep, *, level: int = 1) -> dict:
    """One row per grid point and one column per task_type (plus overall): the final validation losses.

    best[column] is the lowest value of the column among succeeded runs (ties: the first row), what
    the page highlights: a running, failed or lost run's last eval is from an earlier step, so its
    loss is shown but is no fair rival to a finished one.
    """
    spec = json.loads(sweep.spec_json or "{}")
    points = {p["run_id"]: p for p in spec.get("points", [])}
    runs = session.execute(  # five columns: past sqlmodel.select's typed overloads
        sa.select(
            col(Run.id),
            col(Run.name),
            col(Job.status),
            col(Job.progress_done).label("step"),
            col(Job.progress_total).label("total_steps"),
        )
        .join(Job, col(Job.id) == col(Run.job_id))
        .where(col(Run.sweep_id) == sweep.id)
        .order_by(col(Run.id))
    ).all()
    events = last_evals(session, [run.id for run in runs if run.id is not None])
    rows, columns = [], []
    for run in runs:
        point = points.get(run.id, {})
        event = events.get(run.id) if run.id is not None else None
        losses: dict[str, float] = {}
        if event is not None:
            for channel, value in curves.losses(event).items():
                name = "overall" if channel == "overall" else _channel_name(channel, level)
                if name is not None and value is not None:
                    losses[name] = value
        for name in losses:
            if name != "overall" and name not in columns:
                columns.append(name)
        rows.append(
            {
                "run_id": run.id,
                "name": run.name,
                "status": RunStatus(run.status).value,
                "epochs": point.get("epochs"),
                "lr": point.get("lr"),
                "share": point.get("share"),
                "step": run.step,
                "total_steps": run.total_steps,
                "eval_step": event.get("step") if event else None,
                "losses": losses,
            }
        )
    columns = ["overall", *sorted(columns)]
    best: dict[str, int] = {}
    for c in columns:
        ranked = [
            (r["losses"][c], i)
            for i, r in enumerate(rows)
            if r["status"] == RunStatus.succeeded and c in r["losses"] and math.isfinite(r["losses"][c])
        ]
        if ranked:
            best[c] = min(ranked)[1]
    grid = spec.get("grid", {})
    return {
        "id": sweep.id,
        "name": sweep.name,
        "owner_id": sweep.owner_id,
        "created": sweep.created_at.isoformat(timespec="seconds") if sweep.created_at else "",
        "level": level,
        "grid": grid,
        "columns": columns,
        "rows": rows,
        "best": {c: rows[i]["run_id"] for c, i in best.items()},
    }


def list_sweeps(session: Session) -> list[dict]:
    """Every sweep with its owner and how many of its runs stand in each status."""
    sweeps = session.exec(
        select(Sweep.id, Sweep.name, Sweep.created_at, User.username)
        .join(User, col(User.id) == Sweep.owner_id, isouter=True)
        .order_by(col(Sweep.id).desc())
    ).all()
    statuses: dict[int, dict[str, int]] = {}
    counted = session.exec(
        select(Run.sweep_id, Job.status, func.count())
        .join(Job, Job.id == Run.job_id)  # type: ignore[arg-type]
        .where(col(Run.sweep_id).is_not(None))
        .group_by(col(Run.sweep_id), col(Job.status))
    ).all()
    for sweep_id, status, n in counted:
        if sweep_id is not None:
            statuses.setdefault(sweep_id, {})[RunStatus(status).value] = n
    out = []
    for sweep_id, name, created, owner in sweeps:
        counts = statuses.get(sweep_id, {}) if sweep_id is not None else {}
        out.append(
            {
                "id": sweep_id,
                "name": name,
                "owner": owner or "",
                "created": created.isoformat(timespec="seconds") if created else "",
                "runs": sum(counts.values()),
                "statuses": counts,
            }
        )
    return out
