"""Launch, cancel and resume a sampling job.

Launch checks everything a user can get wrong (the model reference, the dataset version, the filter, the
template file) before a job exists, so a mistake is a 422 with its reason, not a failed job minutes later.
Resume queues the same job again: the worker passes the prompts already answered n times as skip_ids.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import Session

from app.core.config import Settings
from app.datasets.browse import get_version
from app.jobs.lifecycle import JobStateError, new_job, request_cancel, requeue_finished
from app.jobs.queue import enqueue_or_fail
from app.models import Job, JobKind, JobStatus, Role, SamplingJob, User
from app.sampling.prompts import select_ids
from app.sampling.refs import resolve_model
from app.sampling.request import SamplingError, SamplingRequest


def spec_fields(req: SamplingRequest) -> dict:
    """What SamplingJob.params_json keeps: the spec's params and the prompt options beside them."""
    return {
        "params": req.spec_params(),
        "system_prompt": req.system_prompt,
        "chat_template_file": req.chat_template_file,
        "max_model_len": req.max_model_len,
    }


def launch(session: Session, *, req: SamplingRequest, owner_id: int, settings: Settings) -> SamplingJob:
    """Create the job and send it to a worker; SamplingError when the request cannot run.

    If the broker is unreachable the job exists, failed with that reason, and can be resumed later.
    """
    found = get_version(session, dataset_id=req.dataset_id, number=req.version)
    if found is None:
        raise SamplingError("dataset_id", f"dataset {req.dataset_id} has no version {req.version}")
    dataset, version = found
    model_dir = resolve_model(session, ref=req.model, settings=settings)
    if req.chat_template_file and not Path(req.chat_template_file).is_absolute():
        raise SamplingError("chat_template_file", "give the chat template file as an absolute path")
    if req.chat_template_file and not Path(req.chat_template_file).is_file():
        raise SamplingError("chat_template_file", f"{req.chat_template_file!r} is not a file")
    ids = select_ids(session, dataset_id=req.dataset_id, version=req.version, flt=req.filter)
    if not ids:
        raise SamplingError("filter", f"the filter selects no sample of {dataset.name!r} v{req.version}")
    job = new_job(
        session,
        kind=JobKind.sample,
        owner_id=owner_id,
        queue=settings.sampling_queue,
        title=f"sample {req.model} on {dataset.name} v{req.version}",
        unit="prompts",
    )
    job.progress_total = len(ids)
    assert job.id is not None and version.id is not None
    sampling = SamplingJob(
        owner_id=owner_id,
        job_id=job.id,
        model_ref=req.model,
        model_dir=model_dir,
        dataset_version_id=version.id,
        filter_json=json.dumps(req.filter.__dict__, ensure_ascii=False),
        params_json=json.dumps(spec_fields(req), ensure_ascii=False),
        mode=req.mode,
        backend=req.backend,
        n_prompts=len(ids),
    )
    session.add(job)
    session.add(sampling)
    session.commit()
    enqueue_or_fail(session, job)
    session.refresh(sampling)
    return sampling


def _check_owner(user: User, sampling: SamplingJob) -> None:
    if user.role != Role.admin and sampling.owner_id != user.id:
        raise PermissionError("only the sampling job's owner or an admin may change it")


def cancel(session: Session, *, sampling: SamplingJob, user: User) -> Job:
    """Queued: cancelled at once; running: flagged, stopped within a heartbeat. JobStateError if finished."""
    _check_owner(user, sampling)
    job = session.get_one(Job, sampling.job_id)
    request_cancel(session, job, what="sampling job")
    return job


def resume(session: Session, *, sampling: SamplingJob, user: User) -> Job:
    """Queue a failed, cancelled or lost job again; it answers only the prompts still missing answers."""
    _check_owner(user, sampling)
    job = session.get_one(Job, sampling.job_id)
    if job.status == JobStatus.succeeded:
        raise JobStateError(f"sampling job {sampling.id} answered every prompt; there is nothing to resume")
    requeue_finished(session, job, name=f"sampling job {sampling.id}")
    enqueue_or_fail(session, job)
    return job
