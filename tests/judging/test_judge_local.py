"""A local judge through the real sampling program (trainer.sample, transformers backend) on a tiny random
model: the judge prompts reach the program as chat user messages, both orders per pairwise case, and its
(unparsable) replies are recorded as failures with their reasons, never as scores. The plumbing is the
subject; the model is noise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from app.core.config import get_settings
from app.judging import jobs as judge_jobs
from app.judging.configs import create_config, parse_config
from app.models import Job, JobStatus, JudgeJob, Rating, RatingCase
from tests.judging.test_judge_job import launch
from tests.rating.conftest import make_jobs, new_task
from tests.trainer.tiny_run import make_tiny_model_dir
from worker.runner import execute


@pytest.fixture
def tiny(judging, monkeypatch, tmp_path) -> Path:
    monkeypatch.delenv("SFTLAB_SAMPLING_MODULE", raising=False)
    get_settings.cache_clear()
    assert get_settings().sampling_module == "trainer.sample"
    return make_tiny_model_dir(tmp_path / "tiny", hidden=64, layers=2)


@pytest.mark.slow
def test_a_local_judge_runs_the_sampling_program(tiny, engine, make_user):
    from app.models import Role

    jobs = make_jobs(engine, n=3)
    human = make_user(Role.rater, "human")
    task = new_task(engine, jobs, [human.id], mode="pairwise")
    body = {"name": "tiny", "kind": "local", "model_ref": str(tiny), "mode": "chat", "max_tokens": 6}
    with Session(engine) as session:
        config = create_config(
            session, req=parse_config(body), owner_id=jobs.owner_id, settings=get_settings()
        )
        session.expunge(config)
    jj = launch(engine, config, task)
    assert execute(jj.job_id)
    with Session(engine) as session:
        job = session.get_one(Job, jj.job_id)
        assert job.status == JobStatus.succeeded, (job.error, job.log_tail)
        assert (job.progress_done, job.progress_total, job.progress_unit) == (3, 3, "cases")
        cases = {c.id for c in session.exec(select(RatingCase).where(RatingCase.task_id == task.id)).all()}
        detail = judge_jobs.detail(session, session.get_one(JudgeJob, jj.id))
        assert session.exec(select(Rating).where(Rating.rater_id == config.user_id)).all() == []
    root = Path(job.job_dir)
    spec = json.loads((root / "spec.json").read_text())
    assert (spec["backend"], spec["mode"], spec["model_dir"]) == ("transformers", "chat", str(tiny.resolve()))
    assert spec["params"]["max_new_tokens"] == 6
    prompts = [json.loads(line) for line in (root / "prompts.jsonl").read_text().splitlines()]
    assert sorted(p["id"] for p in prompts) == sorted(f"{c}-{o}" for c in cases for o in ("ab", "ba"))
    for p in prompts:
        [message] = p["messages"]
        assert message["role"] == "user" and "You are an impartial judge" in message["content"]
        assert "[Answer 1 begins]" in message["content"] and "reference" in message["content"]
    assert detail["rated"] == 0 and detail["failed"] == 3
    assert {f["case_id"] for f in detail["failures"]} == cases
    for failure in detail["failures"]:
        assert failure["reason"].startswith("order ") and "no JSON object" in failure["reason"]
