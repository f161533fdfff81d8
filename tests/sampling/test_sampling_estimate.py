"""The launch form's estimate: answers = prompts x n, and times from this server's finished jobs of the same
model and backend (hand-computed figures), else a plain "no measurement yet"; the fragment in both languages."""

import json
from datetime import timedelta

import pytest
from sqlmodel import Session

from app.models import Job, JobEvent, JobStatus
from app.sampling.estimate import JobSpeed, Speed, combine, estimate, job_speed, measured_speed
from app.sampling.prompts import select_ids
from app.sampling.request import Filter
from tests.sampling.conftest import launch_fake

DONE_A = {"tokens": 600, "generations": 10, "seconds": 40.0, "load_s": 10.0, "first_answer_s": 12.5}
DONE_B = {"tokens": 200, "generations": 10, "seconds": 15.0, "load_s": 5.0}


def test_a_jobs_figures():
    # 30 s generating; the job lasted 45 s of which the program 40: 5 s start-up, + 10 s load
    assert job_speed(DONE_A, 45.0) == JobSpeed(600, 10, 30.0, 15.0, 17.5)
    assert job_speed(DONE_B, None) == JobSpeed(200, 10, 10.0, 5.0, None)
    # a duration shorter than the program's own seconds (clock skew) adds no start-up
    assert job_speed(DONE_A, 39.0) == JobSpeed(600, 10, 30.0, 10.0, 12.5)
    # the fake program's done event has no load_s; nothing generated; no time generating
    assert job_speed({"tokens": 5, "generations": 1, "seconds": 2.0}, 3.0) is None
    assert job_speed({**DONE_A, "tokens": 0}, 45.0) is None
    assert job_speed({**DONE_A, "load_s": 40.0}, 45.0) is None


def test_jobs_combine_as_one_rate_and_mean_times():
    speed = combine([JobSpeed(600, 10, 30.0, 15.0, 17.5), JobSpeed(200, 10, 10.0, 5.0, None)])
    # 800 tokens in 40 s; 800 tokens over 20 answers; overheads 15 and 5; one first-answer time
    assert speed == Speed(
        jobs=2, tokens_per_s=20.0, tokens_per_answer=40.0, overhead_s=10.0, first_answer_s=17.5
    )
    assert combine([]) is None


def test_the_estimate():
    speed = Speed(jobs=2, tokens_per_s=20.0, tokens_per_answer=40.0, overhead_s=10.0, first_answer_s=17.5)
    e = estimate(prompts=30, n=4, max_new_tokens=64, speed=speed)
    # 120 answers of 40 tokens: 4,800 tokens / 20 per s + 10 s; at most 120 x 64 = 7,680 tokens: 384 + 10 s
    assert (e.answers, e.max_tokens, e.tokens) == (120, 7680, 4800)
    assert (e.seconds, e.max_seconds, e.first_answer_s) == (250.0, 394.0, 17.5)
    # answers no longer than max_new_tokens, however long they were measured
    short = estimate(prompts=30, n=4, max_new_tokens=32, speed=speed)
    assert (short.tokens, short.seconds, short.max_seconds) == (3840, 202.0, 202.0)
    unknown = estimate(prompts=7, n=3, max_new_tokens=10, speed=None)
    assert (unknown.answers, unknown.max_tokens, unknown.speed, unknown.seconds) == (21, 210, None, None)


def finished(engine, pclue, done: dict | None, *, status=JobStatus.succeeded, lasted: float = 45.0, **extra):  # noqa: ANN001, ANN003
    """A sampling job of the embedded model marked `status`, lasting `lasted` s, with `done` as its done event."""
    sampling = launch_fake(engine, pclue, **extra)
    with Session(engine) as session:
        job = session.get_one(Job, sampling.job_id)
        job.status = status
        job.finished_at = job.created_at + timedelta(seconds=lasted)
        job.started_at = job.created_at
        session.add(job)
        if done is not None:
            session.add(
                JobEvent(job_id=job.id, seq=7, type="done", data=json.dumps({"type": "done", **done}))
            )
        session.commit()
    return sampling


@pytest.fixture
def measured(pclue, engine):
    """Two succeeded transformers jobs of the embedded model (DONE_A lasting 45 s, DONE_B), and jobs that must
    not count: a failed one, one with vLLM, one of the fake program (no load_s)."""
    finished(engine, pclue, DONE_A)
    finished(engine, pclue, DONE_B, lasted=15.0)
    finished(engine, pclue, {**DONE_A, "tokens": 99999}, status=JobStatus.failed)
    finished(engine, pclue, {**DONE_A, "tokens": 99999}, backend="vllm")
    finished(engine, pclue, {"tokens": 5, "generations": 1, "seconds": 2.0})
    return pclue


def test_measured_from_this_servers_finished_jobs(measured, engine, sampling):
    with Session(engine) as session:
        speed = measured_speed(session, model_dir=str(sampling.model_dir.resolve()), backend="transformers")
        assert speed == Speed(
            jobs=2, tokens_per_s=20.0, tokens_per_answer=40.0, overhead_s=10.0, first_answer_s=17.5
        )
        assert measured_speed(session, model_dir="/another/model", backend="transformers") is None
        # only the latest jobs count
        latest = measured_speed(
            session, model_dir=str(sampling.model_dir.resolve()), backend="transformers", limit=2
        )
        assert latest is not None and latest.jobs == 1 and latest.tokens_per_s == 20.0


def _form(pclue, **fields) -> dict:  # noqa: ANN001, ANN003
    return {"model": "embedded", "dataset": f"{pclue.dataset_id}:1", "task": "generate", "backend": "transformers",
            "n": "4", "max_new_tokens": "64", **fields}  # fmt: skip


def _prompts(engine, pclue) -> int:  # noqa: ANN001
    with Session(engine) as session:
        return len(select_ids(session, dataset_id=pclue.dataset_id, version=1, flt=Filter(task="generate")))


def test_the_form_fragment_without_a_measurement(pclue, researcher, engine):
    prompts = _prompts(engine, pclue)
    response = researcher.post("/sampling/new/estimate", data=_form(pclue), headers={"HX-Request": "true"})
    assert response.status_code == 200, response.text
    html = response.text
    assert f"{prompts} prompts × n 4 = {prompts * 4} answers" in html
    assert f"at most {prompts * 4 * 64:,} output tokens" in html
    assert "No measurement for this model yet — the first job will measure it." in html
    assert 'id="est-time"' not in html
    researcher.cookies.set("lang", "zh")
    zh = researcher.post("/sampling/new/estimate", data=_form(pclue)).text
    assert "此模型尚无测量数据——第一个任务将测量它。" in zh and f"= {prompts * 4} 个回答" in zh


def test_the_form_fragment_with_measurements_in_both_languages(measured, researcher, engine):
    prompts = _prompts(engine, measured)
    html = researcher.post("/sampling/new/estimate", data=_form(measured)).text
    tokens = prompts * 4 * 40
    assert f'id="est-tokens">{tokens:,}<' in html
    seconds = int(10 + tokens / 20)
    assert f'id="est-time">{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d} ' in html
    assert 'id="est-first">0:00:17<' in html
    assert (
        "over 2 finished job(s) of this model with transformers: 20.0 output tokens/s, 40 tokens per answer"
        in html
    )
    # the other backend is measured on its own jobs
    other = researcher.post("/sampling/new/estimate", data=_form(measured, backend="vllm")).text
    assert "over 1 finished job(s) of this model with vllm: 3333.3 output tokens/s" in other
    researcher.cookies.set("lang", "zh")
    zh = researcher.post("/sampling/new/estimate", data=_form(measured)).text
    assert f"{prompts} 个提示 × n 4 = {prompts * 4} 个回答" in zh
    assert "使用 transformers 完成的 2 个任务：输出 20.0 token/秒，每个回答平均 40 个 token。" in zh


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"n": "0"}, "n must be between 1 and 16"),
        ({"model": ""}, "give a model"),
        ({"model": "run:999"}, "run 999 does not exist"),
        ({"dataset": "999:1"}, "dataset 999 has no version 1"),
    ],
)
def test_the_fragment_says_why_it_cannot_estimate(pclue, researcher, fields, message):
    response = researcher.post("/sampling/new/estimate", data=_form(pclue, **fields))
    assert response.status_code == 200
    assert "No estimate yet:" in response.text and message in response.text


def test_the_form_fetches_the_estimate_as_fields_change(researcher):
    html = researcher.get("/sampling/new").text
    assert 'hx-post="/sampling/new/estimate"' in html and 'id="sampling-estimate"' in html
    assert "input delay:400ms" in html
