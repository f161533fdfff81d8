"""Sweeps: one form launches a grid of runs, epochs × learning rate × the share of one task_type.

Why this grid: the question it answers is where a model stops learning a task (how much of `逻辑推理`
is enough, and for how long, at which rate), so the axis besides the usual two is the chosen
task_type's mix weight multiplied by a share (1, 0.5, 0.25). Comparing needs validation losses, so a
sweep without validation data is refused before anything is created.

Creation is all or nothing: every grid point goes through A's create_run in one transaction and only
then are the runs enqueued, so a point the trainer config refuses leaves no half sweep behind.
The sweep page reads each run's last eval event (per-task_type channels) into one table.
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

from sqlmodel import Session, col, select

from app.models import Run, RunEvent, Sweep, User
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
    failed = [m for run in runs if (m := launching.enqueue_or_fail(session, run))]
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


def last_eval(session: Session, run_id: int) -> dict | None:
    event = session.exec(
        select(RunEvent)
        .where(RunEvent.run_id == run_id, RunEvent.type == "eval")
        .order_by(col(RunEvent.seq).desc())
        .limit(1)
    ).first()
    if event is None:
        return None
    try:
        data = json.loads(event.data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def sweep_table(session: Session, sweep: Sweep, *, level: int = 1) -> dict:
    """One row per grid point and one column per task_type (plus overall): the final validation losses.

    best[column] is the lowest value of the column (ties: the first row), what the page highlights.
    """
    spec = json.loads(sweep.spec_json or "{}")
    points = {p["run_id"]: p for p in spec.get("points", [])}
    runs = session.exec(select(Run).where(Run.sweep_id == sweep.id).order_by(col(Run.id))).all()
    rows, columns = [], []
    for run in runs:
        point = points.get(run.id, {})
        event = last_eval(session, run.id) if run.id is not None else None
        losses: dict[str, float] = {}
        if event is not None:
            if isinstance(event.get("loss"), int | float):
                losses["overall"] = float(event["loss"])
            for channel, value in (event.get("channels") or {}).items():
                name = _channel_name(channel, level)
                if (
                    name is not None
                    and isinstance(value, dict)
                    and isinstance(value.get("loss"), int | float)
                ):
                    losses[name] = float(value["loss"])
        for name in losses:
            if name != "overall" and name not in columns:
                columns.append(name)
        rows.append(
            {
                "run_id": run.id,
                "name": run.name,
                "status": str(run.status.value if hasattr(run.status, "value") else run.status),
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
            if c in r["losses"] and math.isfinite(r["losses"][c])
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
    sweeps = session.exec(select(Sweep).order_by(col(Sweep.id).desc())).all()
    owners = {u.id: u.username for u in session.exec(select(User)).all()}
    statuses: dict[int | None, dict[str, int]] = {}
    for run in session.exec(select(Run).where(col(Run.sweep_id).is_not(None))).all():
        counts = statuses.setdefault(run.sweep_id, {})
        counts[str(run.status)] = counts.get(str(run.status), 0) + 1
    return [
        {
            "id": s.id,
            "name": s.name,
            "owner": owners.get(s.owner_id, ""),
            "created": s.created_at.isoformat(timespec="seconds") if s.created_at else "",
            "runs": sum(statuses.get(s.id, {}).values()),
            "statuses": statuses.get(s.id, {}),
        }
        for s in sweeps
    ]
