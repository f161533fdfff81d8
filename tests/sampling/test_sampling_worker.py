"""The sample job kind with the fake sampling program: answers stored exactly once, progress in prompts and
tokens, failures with the program's reason, cancel, and resume after a SIGKILL skipping answered prompts."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlmodel import Session, col, func, select

from app.models import Generation, Job, JobStatus, SamplingJob, User
from app.sampling.launch import cancel, resume
from tests.sampling.conftest import launch_fake, spec_of
from tests.sampling.fake_sample import answer
from worker.runner import execute


def generations(engine, sampling_id: int) -> list[Generation]:  # noqa: ANN001
    with Session(engine) as session:
        return list(
            session.exec(
                select(Generation)
                .where(Generation.sampling_job_id == sampling_id)
                .order_by(col(Generation.id))
            ).all()
        )


def job_of(engine, job_id: int) -> Job:  # noqa: ANN001
    with Session(engine) as session:
        return session.get_one(Job, job_id)


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def owner(engine, sampling: SamplingJob) -> User:  # noqa: ANN001
    with Session(engine) as session:
        return session.get_one(User, sampling.owner_id)


def test_a_job_stores_every_answer_once_with_progress_and_tokens(sampling, pclue, engine):
    sj = launch_fake(
        engine, pclue, filter={"task": "generate"}, params={"n": 2, "seed": 7, "max_new_tokens": 50}
    )
    assert execute(sj.job_id)
    job = job_of(engine, sj.job_id)
    assert job.status == JobStatus.succeeded, (job.error, job.log_tail)
    assert (job.progress_done, job.progress_total, job.progress_unit) == (23, 23, "prompts")
    rows = generations(engine, sj.id)
    assert len(rows) == 46
    assert len({(g.prompt_id, g.index) for g in rows}) == 46
    assert {g.task_type for g in rows} == {"generate"}
    assert all(g.text == answer(g.prompt_id, g.index, 7) and g.sample_id == int(g.prompt_id) for g in rows)
    with Session(engine) as session:
        stored = session.get_one(SamplingJob, sj.id)
    assert stored.tokens == sum(g.tokens for g in rows) > 0
    assert stored.backend_version == "fake-1.0"
    spec = spec_of(sampling, sj.job_id)
    assert spec["params"] == {"temperature": 0.7, "top_p": 1.0, "top_k": -1, "max_new_tokens": 50, "n": 2,
                              "seed": 7, "stop": []}  # fmt: skip
    assert spec["skip_ids"] == [] and spec["backend"] == "transformers" and spec["mode"] == "chat"
    assert spec["model_dir"] == str(sampling.model_dir.resolve())


def test_the_system_prompt_override_reaches_the_program(sampling, pclue, engine):
    sj = launch_fake(engine, pclue, filter={"task": "anaphora_resolution"}, system_prompt="答得简短")
    assert execute(sj.job_id)
    rows = generations(engine, sj.id)
    assert len(rows) == 5 and all(g.prompt_text.startswith("system: 答得简短\nuser: ") for g in rows)


def test_a_program_error_fails_the_job_with_its_message(sampling, pclue, engine, monkeypatch):
    monkeypatch.setenv("FAKE_SAMPLE_FAIL", "vLLM refuses this checkpoint: unknown architecture")
    sj = launch_fake(engine, pclue, filter={"task": "anaphora_resolution"})
    assert execute(sj.job_id)
    job = job_of(engine, sj.job_id)
    assert job.status == JobStatus.failed
    assert job.error == (
        "the sampling program exited with code 1: vLLM refuses this checkpoint: unknown architecture"
    )


def test_the_vllm_backend_without_its_environment_fails_with_the_reason(
    sampling, pclue, engine, monkeypatch, tmp_path
):
    monkeypatch.setattr(sampling, "vllm_python", tmp_path / "no-venv" / "bin" / "python")
    sj = launch_fake(engine, pclue, filter={"task": "anaphora_resolution"}, backend="vllm")
    assert execute(sj.job_id, settings=sampling)
    job = job_of(engine, sj.job_id)
    assert job.status == JobStatus.failed and "the vllm backend needs its environment" in job.error


def _run_in_thread(job_id: int) -> threading.Thread:
    thread = threading.Thread(target=execute, args=(job_id,), daemon=True)
    thread.start()
    return thread


def test_killed_mid_way_then_resumed_answers_each_prompt_once(sampling, pclue, engine, monkeypatch):
    monkeypatch.setenv("FAKE_SAMPLE_DELAY", "0.1")
    sj = launch_fake(engine, pclue, filter={"task": "generate"}, params={"n": 3})
    thread = _run_in_thread(sj.job_id)
    wait_for(lambda: len(generations(engine, sj.id)) >= 12, what="some answers")
    os.killpg(job_of(engine, sj.job_id).pid, signal.SIGKILL)
    thread.join(60)
    job = job_of(engine, sj.job_id)
    assert job.status == JobStatus.failed and "SIGKILL" in job.error
    first = {(g.prompt_id, g.index): g.id for g in generations(engine, sj.id)}
    assert 12 <= len(first) < 69

    monkeypatch.setenv("FAKE_SAMPLE_DELAY", "0")
    with Session(engine) as session:
        resume(session, sampling=session.get_one(SamplingJob, sj.id), user=owner(engine, sj))
    assert execute(sj.job_id)
    job = job_of(engine, sj.job_id)
    assert job.status == JobStatus.succeeded, job.error
    assert job.progress_done == job.progress_total == 23
    rows = generations(engine, sj.id)
    assert len(rows) == 69 and len({(g.prompt_id, g.index) for g in rows}) == 69
    # What was stored before the kill stays as it was.
    assert all({(g.prompt_id, g.index): g.id for g in rows}[key] == gid for key, gid in first.items())
    skipped = spec_of(sampling, sj.job_id)["skip_ids"]
    complete = {p for p in {k[0] for k in first} if all((p, i) in first for i in range(3))}
    assert set(skipped) == complete and skipped
    events = [json.loads(line) for line in (Path(job.job_dir) / "generations.jsonl").read_text().splitlines()]
    assert [e["skipped"] for e in events if e["type"] == "start"] == [0, len(complete)]
    with Session(engine) as session:
        tokens = session.get_one(SamplingJob, sj.id).tokens
        assert (
            tokens
            == session.exec(
                select(func.sum(Generation.tokens)).where(Generation.sampling_job_id == sj.id)
            ).one()
        )


def test_cancel_stops_the_program_and_a_succeeded_job_cannot_be_resumed(sampling, pclue, engine, monkeypatch):
    from app.jobs.lifecycle import JobStateError

    monkeypatch.setenv("FAKE_SAMPLE_DELAY", "0.2")
    sj = launch_fake(engine, pclue, filter={"task": "generate"})
    thread = _run_in_thread(sj.job_id)
    wait_for(lambda: len(generations(engine, sj.id)) >= 2, what="some answers")
    with Session(engine) as session:
        cancel(session, sampling=session.get_one(SamplingJob, sj.id), user=owner(engine, sj))
    thread.join(60)
    job = job_of(engine, sj.job_id)
    assert job.status == JobStatus.cancelled
    assert 2 <= len(generations(engine, sj.id)) < 23
    with Session(engine) as session, pytest.raises(JobStateError, match="already cancelled"):
        cancel(session, sampling=session.get_one(SamplingJob, sj.id), user=owner(engine, sj))

    done = launch_fake(engine, pclue, filter={"task": "anaphora_resolution"})
    monkeypatch.setenv("FAKE_SAMPLE_DELAY", "0")
    assert execute(done.job_id)
    with Session(engine) as session, pytest.raises(JobStateError, match="nothing to resume"):
        resume(session, sampling=session.get_one(SamplingJob, done.id), user=owner(engine, done))


def test_a_lost_job_resumes_only_once_its_worker_is_really_silent(sampling, pclue, engine):
    from datetime import timedelta

    from app.jobs.lifecycle import JobStateError
    from app.models import utcnow

    sj = launch_fake(engine, pclue, filter={"task": "anaphora_resolution"})
    with Session(engine) as session:
        job = session.get_one(Job, sj.job_id)
        job.status, job.heartbeat_at = JobStatus.lost, utcnow()
        session.add(job)
        session.commit()
        with pytest.raises(JobStateError, match="heard from"):
            resume(session, sampling=session.get_one(SamplingJob, sj.id), user=owner(engine, sj))
        job = session.get_one(Job, sj.job_id)
        job.heartbeat_at = utcnow() - timedelta(seconds=sampling.heartbeat_timeout + 1)
        session.add(job)
        session.commit()
        resume(session, sampling=session.get_one(SamplingJob, sj.id), user=owner(engine, sj))
    assert job_of(engine, sj.job_id).status == JobStatus.queued
    assert execute(sj.job_id)
    assert job_of(engine, sj.job_id).status == JobStatus.succeeded
    assert len(generations(engine, sj.id)) == 5
