"""What the launch form offers to pick: dataset versions to train or validate on, checkpoints of earlier runs."""

from __future__ import annotations

from sqlalchemy import or_
from sqlmodel import Session, col, select

from app.datasets.catalog import without_reference
from app.models import (
    FINISHED,
    Dataset,
    DatasetKind,
    DatasetVersion,
    Job,
    JobStatus,
    Run,
    RunStatus,
    VersionStatus,
    version_status,
)
from trainer.layout import list_checkpoints

MAX_CHECKPOINT_RUNS = 100


def dataset_choices(session: Session, *, validation: bool = False) -> list[dict]:
    """Datasets with their usable versions, newest first (a failed version cannot be trained on).

    Training takes train datasets; `validation` adds eval sets, whose references become the measured
    answers (app.runs.rundir.export_versions), with each version's count of samples that have none."""
    kinds = [DatasetKind.train, DatasetKind.eval] if validation else [DatasetKind.train]
    datasets = session.exec(
        select(Dataset).where(col(Dataset.kind).in_(kinds)).order_by(col(Dataset.name), col(Dataset.id))
    ).all()
    evals = {d.id for d in datasets if d.kind == DatasetKind.eval}
    versions: dict[int, list[dict]] = {}
    # A version's failed state comes from its index job's status (version_status): filtered here in SQL,
    # reading three columns, rather than loading every version with its job to drop failed ones.
    failed = [s.value for s in JobStatus if version_status(s) == VersionStatus.failed]
    rows = session.exec(
        select(DatasetVersion.dataset_id, DatasetVersion.number, DatasetVersion.n_samples)  # type: ignore[call-overload]
        .join(Job, Job.id == DatasetVersion.index_job_id, isouter=True)  # type: ignore[arg-type]
        .where(
            col(DatasetVersion.dataset_id).in_([d.id for d in datasets]),
            or_(col(Job.status).is_(None), col(Job.status).not_in(failed)),
        )
        .order_by(col(DatasetVersion.number).desc())
    ).all()
    for dataset_id, number, n_samples in rows:
        choice = {"number": number, "n_samples": n_samples}
        if dataset_id in evals:
            choice["no_reference"] = without_reference(session, dataset_id=dataset_id, version=number)
        versions.setdefault(dataset_id, []).append(choice)
    return [
        {"id": d.id, "name": d.name, "kind": str(d.kind), "versions": versions[d.id]}
        for d in datasets
        if d.id in versions
    ]


def checkpoint_choices(session: Session) -> list[dict]:
    """Complete checkpoints of finished runs, newest run first: base_model "run:<id>/<checkpoint dir name>"."""
    # Only the columns shown: a Run row carries its config, form and log tail as large text columns.
    runs = session.exec(
        select(Run.id, Run.name, Job.status, Run.run_dir)
        .join(Job, Job.id == Run.job_id)  # type: ignore[arg-type]
        .where(col(Job.status).in_([s.value for s in FINISHED]), Run.run_dir != "")
        .order_by(col(Run.id).desc())
        .limit(MAX_CHECKPOINT_RUNS)
    ).all()
    out = []
    for run_id, name, status, run_dir in runs:
        for path in reversed(list_checkpoints(run_dir)):
            # The form labels it in the reader's language ("#3 name · step-10 (成功)"): parts, not a label.
            out.append(
                {
                    "ref": f"run:{run_id}/{path.name}",
                    "run_id": run_id,
                    "name": name,
                    "checkpoint": path.name,
                    "status": RunStatus(status).value,
                }
            )
    return out
