"""The runs list: one row per run with its datasets, key hyperparameters, final loss and duration.

Status, owner, dataset and name filters run in SQL; the sort by duration needs the timestamps of
each run, so sorting happens on the (bounded) filtered rows in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from app.models import Dataset, Run, RunDataset, RunStatus, User
from app.runs.views import duration_s, run_config

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


def list_runs(session: Session, *, flt: RunFilter | None = None, limit: int = LIMIT) -> list[dict]:
    """Runs matching the filter, sorted; at most `limit` (the newest ones when the filter is loose)."""
    flt = flt or RunFilter()
    query = select(Run, User.username).join(User, User.id == Run.owner_id, isouter=True)  # type: ignore[call-overload,arg-type]
    if flt.status in RunStatus.__members__:
        query = query.where(Run.status == RunStatus(flt.status))
    if flt.owner:
        query = query.where(User.username == flt.owner)
    if flt.q:
        query = query.where(col(Run.name).icontains(flt.q.strip()))
    if flt.dataset is not None:
        query = query.where(
            col(Run.id).in_(select(RunDataset.run_id).where(RunDataset.dataset_id == flt.dataset))
        )
    rows = session.exec(query.order_by(col(Run.created_at).desc(), col(Run.id).desc()).limit(limit)).all()
    ids = [run.id for run, _ in rows]
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
    out = [
        {
            "id": run.id,
            "name": run.name,
            "status": str(run.status),
            "owner": owner or "",
            "created": run.created_at.isoformat(timespec="seconds") if run.created_at else "",
            "datasets": datasets.get(run.id or 0, []),
            "params": key_params(run_config(run)),
            "final_loss": run.final_loss,
            "duration_s": duration_s(run),
            "step": run.step,
            "total_steps": run.total_steps,
            "base_model": run.base_model,
            "sweep_id": run.sweep_id,
        }
        for run, owner in rows
    ]
    return sort_rows(out, flt.sort, desc=flt.desc)


def sort_rows(rows: list[dict], sort: str, *, desc: bool) -> list[dict]:
    """Sorted by `sort`; runs without a value (no loss yet, not started) go last either way."""
    key = {"created": "created", "final_loss": "final_loss", "duration": "duration_s"}.get(sort, sort)
    if key not in {"created", "final_loss", "duration_s", "name", "status", "step"}:
        key = "created"
    present = [r for r in rows if r[key] is not None]
    missing = [r for r in rows if r[key] is None]
    present.sort(key=lambda r: (r[key].lower() if isinstance(r[key], str) else r[key], r["id"]), reverse=desc)
    return present + missing


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
