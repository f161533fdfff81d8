"""An upload's import as a job (kind `import`): created here, run by the worker (worker.kinds.imports).

`run_import` imports the file with the job's options and records the outcome on the ImportJob (imported,
rejected or validated, with the report). Progress cannot be committed to the database while the import
transaction holds SQLite's write lock, so it goes to a small side file that the job page reads
(`job_progress`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import orjson
from sqlmodel import Session

from app.core.config import Settings, get_settings
from app.core.db import get_engine
from app.datasets.import_options import ImportOptions, ImportResult
from app.datasets.importer import import_file
from app.datasets.uploads import DiskFull, is_disk_full
from app.jobs.lifecycle import new_job
from app.models import ImportJob, ImportOutcome, JobKind, JobStatus, Upload, UploadStatus

log = logging.getLogger("sftlab.import")
DISK_FULL = (
    "The server's disk is full: the import was rolled back and nothing was imported."
    " Free some space, then run the import again."
)


def progress_path(settings: Settings, job_id: int) -> Path:
    return settings.uploads_dir / f"job-{job_id}.progress"


def job_progress(settings: Settings, job: ImportJob) -> float:
    """The import's progress: the side file while it runs, the job otherwise."""
    if job.job.status == JobStatus.running:
        try:
            return max(job.job.fraction, float(progress_path(settings, job.id).read_text() or 0))  # type: ignore[arg-type]
        except (OSError, ValueError):
            return job.job.fraction
    return 1.0 if job.job.finished else 0.0


def run_import(
    *, job_id: int, settings: Settings | None = None, check: Callable[[], None] = lambda: None
) -> ImportResult:
    """Import an ImportJob's upload and record the outcome on it; raises when the import itself broke.

    `check` is called between batches; it may raise to stop the import (a cancel), which rolls it back.
    """
    settings = settings or get_settings()
    engine = get_engine(settings)
    with Session(engine) as session:
        job = session.get_one(ImportJob, job_id)
        upload = session.get_one(Upload, job.upload_id)
        upload.status = UploadStatus.importing
        session.add(upload)
        session.commit()
        options_data = orjson.loads(job.options_json)
        owner_id, path, filename = job.owner_id, settings.uploads_dir / upload.stored_name, upload.filename
        upload_id = upload.id
    side = progress_path(settings, job_id)

    def on_progress(fraction: float) -> None:
        check()
        try:
            side.write_text(f"{min(fraction, 0.99):.3f}")
        except OSError:
            pass

    def finish(session: Session, result: ImportResult) -> None:
        job = session.get_one(ImportJob, job_id)
        job.outcome, job.dataset_id = ImportOutcome.imported, result.dataset_id
        job.n_ok, job.n_bad = result.n_ok, result.n_bad
        job.report_json = orjson.dumps(result.report).decode()
        up = session.get(Upload, upload_id)
        if up is not None:
            up.status = UploadStatus.imported
            session.add(up)
        session.add(job)

    try:
        result = import_file(
            path=path,
            options=ImportOptions.from_dict(options_data),
            owner_id=owner_id,
            engine=engine,
            settings=settings,
            filename=filename,
            on_progress=on_progress,
            finish=finish,
        )
    except BaseException as exc:
        _record(engine, job_id, upload_id, failed=True)
        if is_disk_full(exc):  # the one transaction was rolled back: no version, earlier data untouched
            raise DiskFull(DISK_FULL) from exc
        raise
    finally:
        side.unlink(missing_ok=True)
    if result.status != "succeeded":
        _record(engine, job_id, upload_id, failed=False, result=result)
    return result


def _record(
    engine,
    job_id: int,
    upload_id: int | None,
    *,
    failed: bool,
    result: ImportResult | None = None,  # noqa: ANN001
) -> None:
    """An import that did not import: its outcome and report (rejected, validated), and the upload back to
    importable, or failed when the import itself broke."""
    with Session(engine) as session:
        job = session.get_one(ImportJob, job_id)
        if result is not None:
            job.outcome = ImportOutcome(result.status)
            job.n_ok, job.n_bad = result.n_ok, result.n_bad
            job.report_json = orjson.dumps(result.report).decode()
            session.add(job)
        up = session.get(Upload, upload_id) if upload_id else None
        if up is not None:
            up.status = UploadStatus.failed if failed else UploadStatus.uploaded
            session.add(up)
        session.commit()


def create_job(session: Session, *, upload: Upload, options: ImportOptions, owner_id: int) -> ImportJob:
    """Store a queued import job (committed) for the worker; the caller sends it (app.datasets.jobs)."""
    options.check()
    if not options.container:
        options.container = ""
    job = new_job(session, kind=JobKind.import_, owner_id=owner_id, title=f"import {upload.filename}"[:300])
    assert job.id is not None
    imp = ImportJob(
        job_id=job.id,
        upload_id=upload.id,  # type: ignore[arg-type]
        owner_id=owner_id,
        target_dataset_id=options.target_dataset_id,
        options_json=orjson.dumps(options.to_dict()).decode(),
    )
    session.add(imp)
    session.commit()
    session.refresh(imp)
    return imp
