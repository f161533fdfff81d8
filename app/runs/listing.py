"""The runs list: one row per run with its datasets, key hyperparameters, final loss and duration.

Filters and the sort run in SQL, before the LIMIT: with more runs than the limit, sorting by loss
or step must pick the best of all of them, not of the newest 500. Only the columns a row shows are
read (a run's log tail, form and error can be long).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, case, cast, func
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from app.jobs.listing import duration_s, duration_sql
from app.models import Dataset, Job, Run, RunDataset, RunStatus, User, utcnow
from app.runs.views import loads

# What a row shows: not the run's log tail, form or error, which can be long.
COLUMNS: tuple[Any, ...] = (
    Run.id,
    Run.name,
    Job.status,
    User.username,
    Job.created_at,
    Run.config_json,
    Run.final_loss,
    Job.started_at,
    Job.finished_at,
    col(Job.progress_done).label("step"),
    col(Job.progress_total).label("total_steps"),
    Run.base_model,
    Run.sweep_id,
)
SORTS = ("created", "final_loss", "duration", "name", "status", "step")
LIMIT = 500
# (label key, config section, field): the hyperparameters people compare runs by.
KEY_PARAMS = (
    ("epochs", "train", "epochs"),
    ("lr", "train", "lr"),
    ("scheduler", "train", "scheduler"),
    ("batch", "train", "per_device_batch"),
    ("grad_accum", "train", "grad_accum"),
    ("max_seq_len", "data", "max_seq_len"),
    ("method", "finetune", "method"),
)


@dataclass
class RunFilter:
    status: str = ""
    owner: str = ""  # username
    dataset: int | None = None  # dataset id, any version
    q: str = ""  # part of the run name
    sort: str = "created"
    desc: bool = True


def key_params(config: dict) -> dict[str, Any]:
    out = {}
    for label, section, name in KEY_PARAMS:
        part = config.get(section)
        out[label] = part.get(name) if isinstance(part, dict) else None
    return out


def _order(sort: str, *, desc: bool, duration: ColumnElement) -> list:
    """ORDER BY for a sort key: runs without a value (no loss yet, not started) go last either way."""
    value = {
        "final_loss": col(Run.final_loss),
        "duration": duration,
        "name": func.lower(col(Run.name)),
        "status": cast(col(Job.status), String),  # by name: PostgreSQL orders its enum by declaration
        "step": col(Job.progress_done),
    }.get(sort, col(Job.created_at))
    missing = case((value.is_(None), 1), else_=0)
    if desc:
        return [missing, value.desc(), col(Run.id).desc()]
    return [missing, value.asc(), col(Run.id).asc()]


def list_runs(session: Session, *, flt: RunFilter | None = None, limit: int = LIMIT) -> list[dict]:
    """Runs matching the filter, sorted; at most `limit` (the first ones in the chosen order)."""
    flt = flt or RunFilter()
    now = utcnow()
    duration = duration_sql(session.get_bind().dialect.name, now)
    query = (
        select(*COLUMNS)  # type: ignore[call-overload]
        .join(Job, Job.id == Run.job_id)  # type: ignore[arg-type]
        .join(User, User.id == Run.owner_id, isouter=True)  # type: ignore[arg-type]
    )
    if flt.status in RunStatus.__members__:
        query = query.where(Job.status == RunStatus(flt.status))
    if flt.owner:
        query = query.where(User.username == flt.owner)
    if flt.q:
        query = query.where(col(Run.name).icontains(flt.q.strip()))
    if flt.dataset is not None:
        query = query.where(
            col(Run.id).in_(select(RunDataset.run_id).where(RunDataset.dataset_id == flt.dataset))
        )
    rows = session.exec(
        query.order_by(*_order(flt.sort, desc=flt.desc, duration=duration)).limit(limit)
    ).all()
    ids = [r.id for r in rows]
    datasets: dict[int, list[dict]] = {}  # run id -> its dataset versions
    if ids:
        for rd, name in session.exec(
            select(RunDataset, Dataset.name)  # type: ignore[call-overload]
            .join(Dataset, Dataset.id == RunDataset.dataset_id, isouter=True)  # type: ignore[arg-type]
            .where(col(RunDataset.run_id).in_(ids))
            .order_by(col(RunDataset.dataset_id))
        ).all():
            datasets.setdefault(rd.run_id, []).append(
                {"dataset_id": rd.dataset_id, "version": rd.version, "role": rd.role, "name": name or ""}
            )
    out = []
    for r in rows:
        config = loads(r.config_json)
        out.append(
            {
                "id": r.id,
                "name": r.name,
                "status": str(r.status),
                "owner": r.username or "",
                "created": r.created_at.isoformat(timespec="seconds") if r.created_at else "",
                "datasets": datasets.get(r.id, []),
                "params": key_params(config if isinstance(config, dict) else {}),
                "final_loss": r.final_loss,
                "duration_s": duration_s(r.status, r.started_at, r.finished_at, now),
                "step": int(r.step),
                "total_steps": int(r.total_steps),
                "base_model": r.base_model,
                "sweep_id": r.sweep_id,
            }
        )
    return out


def filter_options(session: Session) -> dict:
    """Owners and datasets that appear on some run, for the filter selects."""
    owners = session.exec(
        select(User.username).where(col(User.id).in_(select(Run.owner_id))).order_by(User.username)
    ).all()
    datasets = session.exec(
        select(Dataset.id, Dataset.name)  # type: ignore[call-overload]
        .where(col(Dataset.id).in_(select(RunDataset.dataset_id)))
        .order_by(Dataset.name)
    ).all()
    return {
        "statuses": [s.value for s in RunStatus],
        "owners": list(owners),
        "datasets": [{"id": i, "name": n} for i, n in datasets],
    }
