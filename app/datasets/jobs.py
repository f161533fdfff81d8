"""The datasets' background work as jobs: sending an upload's import, and a new version's index build.

Both run on the `default` queue (worker.kinds.imports, worker.kinds.index). A version gets its index job
when it is committed; a broker that is down leaves the job queued (the version says so) and the doorbell
(app.jobs.queue.resend_queued) sends it once the broker is back, so a committed import never fails for it.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.core.db import get_engine
from app.jobs import queue
from app.jobs.lifecycle import new_job
from app.models import Dataset, DatasetVersion, ImportJob, Job, JobKind, JobStatus

log = logging.getLogger("sftlab.datasets")


def enqueue_import(import_job_id: int) -> None:
    """Send a committed import job to the workers; an unreachable broker fails it with the reason."""
    with Session(get_engine()) as session:
        job = session.get_one(ImportJob, import_job_id).job
        queue.enqueue_or_fail(session, job)


def index_job(version_id: int, *, engine: Engine | None = None) -> Job | None:
    """The version's index job, queued and committed: a new one unless one is queued or running already.
    None when the version does not exist."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        version = session.get(DatasetVersion, version_id)
        if version is None:
            log.warning("version %s does not exist; nothing to index", version_id)
            return None
        job = version.index_job
        if job is not None and job.status in (JobStatus.queued, JobStatus.running):
            return job
        dataset = session.get(Dataset, version.dataset_id)
        name = dataset.name if dataset else f"#{version.dataset_id}"
        job = new_job(
            session,
            kind=JobKind.indexing,
            owner_id=version.created_by,
            title=f"index {name} v{version.number}"[:300],
            params={"version_id": version_id},
        )
        version.index_job_id = job.id
        session.add(version)
        session.commit()
        return job


def enqueue_index(version_id: int) -> None:
    """Give a committed version its index job and send it; a broker that is down leaves it queued.

    Never raises: the version's data is committed whatever happens here, and its page says it is not
    indexed yet.
    """
    try:
        job = index_job(version_id)
        if job is None:
            return
        queue.send(job)
    except Exception:  # noqa: BLE001 - the doorbell sends a queued job again later
        log.exception("could not queue the index job of version %s", version_id)
        return
    assert job.id is not None
    with get_engine().begin() as conn:
        conn.execute(queue.record_sent(job.id))
