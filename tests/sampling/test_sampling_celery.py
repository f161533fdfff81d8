"""A sampling job on a real `celery worker` (embedded SQLite broker) with the fake program: cancelled
mid-way, resumed, and finished with every answer stored exactly once and no process left behind."""

import pytest
from sqlmodel import Session

from app.models import JobStatus, SamplingJob
from app.sampling.launch import cancel, resume
from tests.sampling.conftest import FAKE, launch_fake, spec_of
from tests.sampling.test_sampling_worker import generations, job_of, owner, wait_for
from tests.worker.conftest import Workers
from worker.processes import job_processes


@pytest.fixture
def worker(tmp_path, sampling):
    w = Workers(tmp_path, sampling.data_dir)
    w.extra_env = {"SFTLAB_SAMPLING_MODULE": FAKE, "FAKE_SAMPLE_DELAY": "0.25"}
    w.start(sampling.sampling_queue)
    yield w
    w.stop_all()


@pytest.mark.slow
def test_cancel_and_resume_on_a_real_worker(worker, pclue, engine, sampling):
    sj = launch_fake(engine, pclue, filter={"task": "generate"}, params={"n": 2})
    try:
        wait_for(lambda: len(generations(engine, sj.id)) >= 6, timeout=90, what="answers from the worker")
        with Session(engine) as session:
            cancel(session, sampling=session.get_one(SamplingJob, sj.id), user=owner(engine, sj))
        wait_for(lambda: job_of(engine, sj.job_id).finished, timeout=60, what="the cancel")
        job = job_of(engine, sj.job_id)
        assert job.status == JobStatus.cancelled
        assert job.pid is not None and job_processes(job.pid, job.marker) == []
        stored = len(generations(engine, sj.id))
        assert 6 <= stored < 46

        with Session(engine) as session:
            resume(session, sampling=session.get_one(SamplingJob, sj.id), user=owner(engine, sj))
        wait_for(lambda: job_of(engine, sj.job_id).finished, timeout=90, what="the resumed job")
    except AssertionError as exc:
        raise AssertionError(f"{exc}{worker.logs()}") from None
    job = job_of(engine, sj.job_id)
    assert job.status == JobStatus.succeeded, (job.error, worker.logs())
    assert (job.progress_done, job.progress_total) == (23, 23)
    rows = generations(engine, sj.id)
    assert len(rows) == 46 and len({(g.prompt_id, g.index) for g in rows}) == 46
    # Prompts with both answers stored before the cancel were not asked again.
    assert len(spec_of(sampling, sj.job_id)["skip_ids"]) >= stored // 2 - 1
