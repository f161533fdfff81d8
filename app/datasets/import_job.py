"""The ImportJob around an import: what the Celery task runs, its progress, and its end state.

`run_import` runs a job through `import_file` and records how it ended. Progress
cannot be committed to the database while the import transaction holds SQLite's
write lock, so it goes to a small side file that the job page reads
(`job_progress`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.core.config import Settings, get_settings
from app.core.db import get_engine
from app.datasets.import_options import ImportOptions, ImportResult
from app.datasets.importer import import_file
from app.models import ImportJob, Upload, UploadStatus, utcnow

log = logging.getLogger("sftlab.import")


def progress_path(settings: Settings, job_id: int) -> Path:
    return settings.uploads_dir / f"job-{job_id}.progress"


def job_progress(settings: Settings, job: ImportJob) -> float:
    """The job's progress: the side file while it runs, the database otherwise."""
    if job.status == "running":
        try:
            return max(job.progress, float(progress_path(settings, job.id).read_text() or 0))  # type: ignore[arg-type]
        except (OSError, ValueError):
            return job.progress
    return job.progress


def run_import(*, job_id: int, settings: Settings | None = None) -> None:
    """Runs an ImportJob to its end state (succeeded, rejected, validated or failed). Safe to re-run."""
    settings = settings or get_settings()
    engine = get_engine(settings)
    with Session(engine) as session:
        job = session.get(ImportJob, job_id)
        if job is None or job.status in ("succeeded", "rejected", "validated"):
            return
        upload = session.get(Upload, job.upload_id)
        if upload is None:
            return
        job.status, job.progress, job.error = "running", 0.0, ""
        upload.status = UploadStatus.importing
        session.add_all([job, upload])
        session.commit()
        options_data = orjson.loads(job.options_json)
        owner_id, path, filename = job.owner_id, settings.uploads_dir / upload.stored_name, upload.filename
        upload_id = upload.id
    side = progress_path(settings, job_id)

    def on_progress(fraction: float) -> None:
        try:
            side.write_text(f"{min(fraction, 0.99):.3f}")
        except OSError:
            pass

    def finish(session: Session, result: ImportResult) -> None:
        job = session.get(ImportJob, job_id)
        assert job is not None
        job.status, job.progress, job.dataset_id = "succeeded", 1.0, result.dataset_id
        job.n_ok, job.n_bad = result.n_ok, result.n_bad
        job.report_json = orjson.dumps(result.report).decode()
        up = session.get(Upload, upload_id)
        if up is not None:
            up.status = UploadStatus.imported
            session.add(up)
        session.add(job)

    try:
        options = ImportOptions.from_dict(options_data)
        result = import_file(
            path=path,
            options=options,
            owner_id=owner_id,
            engine=engine,
            settings=settings,
            filename=filename,
            on_progress=on_progress,
            finish=finish,
        )
    except Exception as exc:  # noqa: BLE001 - the job page must say what happened, whatever it was
        log.exception("import job %s failed", job_id)
        _end_job(engine, job_id, upload_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        side.unlink(missing_ok=True)
        return
    side.unlink(missing_ok=True)
    if result.status != "succeeded":
        _end_job(
            engine,
            job_id,
            upload_id,
            status=result.status,
            error=result.report.get("rejected", ""),
            result=result,
        )


def enqueue_index_safely(version_id: int) -> None:
    """Hands a committed version to the indexer; a broker failure must not undo (or fail) the import."""
    from app.datasets import jobs

    try:
        jobs.enqueue_index(version_id)
    except Exception:  # noqa: BLE001 - the data is committed; the version page shows it still indexing
        log.exception("could not enqueue indexing of version %s", version_id)


def _end_job(
    engine: Engine,
    job_id: int,
    upload_id: int | None,
    *,
    status: str,
    error: str,
    result: ImportResult | None = None,
) -> None:
    with Session(engine) as session:
        job = session.get(ImportJob, job_id)
        if job is None:
            return
        job.status, job.error, job.progress = status, error, 1.0
        if result is not None:
            job.n_ok, job.n_bad = result.n_ok, result.n_bad
            job.report_json = orjson.dumps(result.report).decode()
        up = session.get(Upload, upload_id) if upload_id else None
        if up is not None:
            up.status = UploadStatus.failed if status == "failed" else UploadStatus.uploaded
            session.add(up)
        session.add(job)
        session.commit()


def create_job(session: Session, *, upload: Upload, options: ImportOptions, owner_id: int) -> ImportJob:
    """Stores a queued job (committed) for the worker; the caller enqueues it."""
    options.check()
    if not options.container:
        options.container = ""
    job = ImportJob(
        upload_id=upload.id,  # type: ignore[arg-type,union-attr,attr-defined]
        owner_id=owner_id,
        target_dataset_id=options.target_dataset_id,  # type: ignore[arg-type]
        options_json=orjson.dumps(options.to_dict()).decode(),
        created_at=utcnow(),
    )
    session.add(job)
    session.commit()
    session.refresh(job)
    return job
