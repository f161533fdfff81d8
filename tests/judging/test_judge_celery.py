"""A pairwise judge job on a real `celery worker` against a real local HTTP judge: cancelled mid-way,
resumed without asking again about the cases already rated, and finished with every rating right."""

from __future__ import annotations

import time

import pytest
from sqlmodel import Session, select

from app.judging import jobs as judge_jobs
from app.models import Job, JudgeJob, RatingAssignment
from tests.judging.conftest import N, endpoint_config, rating_task
from tests.judging.test_judge_job import check_pairwise_outcome, launch, swap_odd_cases
from tests.sampling.test_sampling_worker import wait_for
from tests.worker.conftest import Workers


@pytest.fixture
def worker(tmp_path, judging):
    w = Workers(tmp_path, judging.data_dir)
    w.start(judging.sampling_queue)
    yield w
    w.stop_all()


def judged(engine, user_id: int) -> set[int]:  # noqa: ANN001
    with Session(engine) as session:
        return set(
            session.exec(select(RatingAssignment.case_id).where(RatingAssignment.rater_id == user_id)).all()
        )


def job_of(engine, jj: JudgeJob) -> Job:  # noqa: ANN001
    with Session(engine) as session:
        return session.get_one(Job, jj.job_id)


@pytest.mark.slow
def test_cancel_and_resume_on_a_real_worker(worker, engine, pairs, make_user, fake_judge):
    task, _ = rating_task(engine, pairs, make_user)
    index = swap_odd_cases(engine, task.id)
    config = endpoint_config(engine, fake_judge.url, pairs.owner_id)
    fake_judge.judge.delay = 0.3
    jj = launch(engine, config, task)
    try:
        wait_for(lambda: len(judged(engine, config.user_id)) >= 2, timeout=90, what="ratings from the worker")
        with Session(engine) as session:
            judge_jobs.cancel(session, judge_job=session.get_one(JudgeJob, jj.id))
        wait_for(lambda: job_of(engine, jj).finished, timeout=60, what="the cancel")
        assert job_of(engine, jj).status == "cancelled"
        before = judged(engine, config.user_id)
        assert 2 <= len(before) < N - 1
        fake_judge.judge.delay = 0.0
        resumed_at = time.monotonic()
        with Session(engine) as session:
            judge_jobs.resume(session, judge_job=session.get_one(JudgeJob, jj.id))
        wait_for(lambda: job_of(engine, jj).finished, timeout=90, what="the resumed job")
    except AssertionError as exc:
        raise AssertionError(f"{exc}{worker.logs()}") from None
    assert job_of(engine, jj).status == "succeeded", (job_of(engine, jj).error, worker.logs())
    check_pairwise_outcome(engine, fake_judge, config, task, jj, index)
    after = {r.case for r in fake_judge.judge.requests if r.at > resumed_at}
    rated_before = {index[c] for c in before}
    assert after and not after & rated_before  # the resume asked only about cases not rated yet
