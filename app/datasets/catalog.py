"""The datasets list and one dataset's versions, as the pages and the API show them.

Every figure comes from what a version stored when it was made (n_samples, the
import or edit report with its task counts), so neither view scans samples; only an eval
set counts the samples of its latest version that have no reference.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import text
from sqlmodel import Session, select

from app.datasets.visibility import VISIBLE_SQL
from app.models import Dataset, DatasetVersion, ImportJob, Job, JobStatus, User

SORTS = {"name", "kind", "versions", "samples", "tasks", "owner", "created"}


def _summary(v: DatasetVersion | None) -> dict[str, Any]:
    if v is None or not v.import_report_json:
        return {}
    try:
        return orjson.loads(v.import_report_json)
    except orjson.JSONDecodeError:
        return {}


def list_datasets(session: Session, *, sort: str = "created", desc: bool = True) -> list[dict[str, Any]]:
    """One row per dataset with its latest version's figures (stored at version creation, so no scan)."""
    rows = session.exec(
        select(Dataset, DatasetVersion, User.username)  # type: ignore[call-overload]
        .join(
            DatasetVersion,
            (DatasetVersion.dataset_id == Dataset.id) & (DatasetVersion.number == Dataset.latest_version),  # type: ignore[arg-type,union-attr,attr-defined]
            isouter=True,
        )
        .join(User, User.id == Dataset.owner_id, isouter=True)  # type: ignore[arg-type,union-attr,attr-defined]
    ).all()
    out = []
    for ds, v, owner in rows:
        summary = _summary(v)
        out.append(
            {
                "id": ds.id,
                "name": ds.name,
                "kind": str(ds.kind.value if hasattr(ds.kind, "value") else ds.kind),
                "versions": ds.latest_version,
                "samples": v.n_samples if v else 0,
                "tasks": len(summary.get("task_counts", {})),
                "owner": owner or "",
                "created": ds.created_at.isoformat(timespec="seconds") if ds.created_at else "",
                "status": str(
                    v.status.value if v and hasattr(v.status, "value") else (v.status if v else "")
                ),
            }
        )
    key = sort if sort in SORTS else "created"
    out.sort(key=lambda r: (r[key].lower() if isinstance(r[key], str) else r[key], r["id"]), reverse=desc)  # type: ignore[arg-type,union-attr,attr-defined]
    return out


def version_rows(session: Session, ds: Dataset) -> list[dict[str, Any]]:
    """The dataset's versions, newest first, each with its task counts."""
    rows = session.exec(
        select(DatasetVersion, User.username)  # type: ignore[call-overload]
        .join(User, User.id == DatasetVersion.created_by, isouter=True)  # type: ignore[arg-type,union-attr,attr-defined]
        .where(DatasetVersion.dataset_id == ds.id)
        .order_by(DatasetVersion.number.desc())  # type: ignore[arg-type,union-attr,attr-defined]
    ).all()  # type: ignore[attr-defined]
    out = []
    for v, by in rows:
        summary = _summary(v)
        status = v.status.value if hasattr(v.status, "value") else str(v.status)
        out.append(
            {
                "number": v.number,
                "id": v.id,
                "message": v.message,
                "by": by or "",
                "n_samples": v.n_samples,
                "created": v.created_at.isoformat(timespec="seconds") if v.created_at else "",
                "status": status,
                "progress": v.progress,
                "stage": v.stage,
                "error": v.error,
                "tasks": len(summary.get("task_counts", {})),
                "normalised": (summary.get("task_normalised") or {}).get("count", 0),
                "n_bad": summary.get("n_bad", 0),
                "task_counts": summary.get("task_counts", {}),
            }
        )
    return out


def version_row(session: Session, ds: Dataset, number: int) -> dict[str, Any] | None:
    return next((v for v in version_rows(session, ds) if v["number"] == number), None)


def without_reference(session: Session, *, dataset_id: int, version: int) -> int:
    """Samples of a version that have no reference: an eval set's prompts that a run cannot validate on."""
    sql = f"SELECT count(*) FROM sample s WHERE {VISIBLE_SQL} AND (s.reference IS NULL OR s.reference = '')"
    params = {"dataset_id": dataset_id, "version": version}
    return int(session.connection().execute(text(sql), params).scalar_one())


def dataset_json(session: Session, ds: Dataset) -> dict[str, Any]:
    """The dataset page's data: the dataset, its versions (task counts of the latest only) and imports;
    for an eval set, how many samples of the latest version have no reference."""
    versions = version_rows(session, ds)
    kind = str(ds.kind.value if hasattr(ds.kind, "value") else ds.kind)
    no_reference = (
        without_reference(session, dataset_id=ds.id, version=ds.latest_version)  # type: ignore[arg-type]
        if kind == "eval" and ds.latest_version
        else None
    )
    return {
        "id": ds.id,
        "name": ds.name,
        "kind": kind,
        "no_reference": no_reference,
        "description": ds.description,
        "owner_id": ds.owner_id,
        "latest_version": ds.latest_version,
        "created": ds.created_at.isoformat(timespec="seconds") if ds.created_at else "",
        "versions": [{k: v for k, v in r.items() if k != "task_counts"} for r in versions],
        "task_counts": versions[0]["task_counts"] if versions else {},
        "imports": list(
            session.exec(
                select(ImportJob.id)  # type: ignore[call-overload]
                .join(Job, Job.id == ImportJob.job_id)  # type: ignore[arg-type]
                .where(ImportJob.dataset_id == ds.id, Job.status == JobStatus.succeeded)
            ).all()
        ),
    }
