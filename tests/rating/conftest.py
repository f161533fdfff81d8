"""Rating fixtures: two finished sampling jobs with distinctive model identifiers, built straight in the
database (no sampling program runs), and helpers to create tasks and call the rater API."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import Dataset, DatasetVersion, Generation, Job, JobKind, JobStatus, Sample, SamplingJob, User
from app.rating.tasks import create_task, parse_task

# Strings that must never reach a rater: each job's model reference, directory, title, backend and params.
SECRETS = {
    "a": {"model_ref": "run:9871/step-00004242", "model_dir": "/ckpt/zeta-llama-qwerty-A/step-4242"},
    "b": {"model_ref": "/models/omega-mistral-asdfgh-B", "model_dir": "/models/omega-mistral-asdfgh-B"},
}
TASK_TYPES = ["math/arith", "math/algebra", "writing/poem", "qa"]


@dataclass
class Jobs:
    owner_id: int
    a: int
    b: int
    job_ids: tuple[int, int]
    generation_ids: list[int]
    sample_ids: list[int]


def make_jobs(engine: Engine, *, n: int = 40, owner: str = "sampler", id_base: int = 0) -> Jobs:
    """Two sampling jobs answering the same n prompts (two answers each), with their dataset samples.

    `id_base` > 0 gives jobs, sampling jobs and generations ids from id_base up, distinctive enough to
    search responses for."""
    next_id = iter(range(id_base, id_base + 10 * n + 100)) if id_base else None
    fresh = (lambda: next(next_id)) if next_id else (lambda: None)  # noqa: E731
    with Session(engine) as s:
        user = User(username=owner, password_hash="x")
        s.add(user)
        s.flush()
        dataset = Dataset(name="rating-set", owner_id=user.id or 0)
        s.add(dataset)
        s.flush()
        s.add(DatasetVersion(dataset_id=dataset.id or 0, number=1, created_by=user.id or 0, n_samples=n))
        sample_ids = []
        for i in range(n):
            tt = TASK_TYPES[i % len(TASK_TYPES)]
            l1, _, l2 = tt.partition("/")
            messages = [
                {"role": "system", "content": f"system {i}"},
                {"role": "user", "content": f"first turn {i}"},
                {"role": "assistant", "content": f"earlier answer {i}"},
                {"role": "user", "content": f"question {i}?"},
                {"role": "assistant", "content": f"reference {i}"},
            ]
            sample = Sample(
                dataset_id=dataset.id or 0,
                added_in=1,
                messages=json.dumps(messages),
                prompt=f"question {i}?",
                answer=f"reference {i}",
                task_l1=l1,
                task_l2=l2,
                content_hash=f"h{i}",
            )
            s.add(sample)
            s.flush()
            sample_ids.append(sample.id or 0)
        ids, job_ids, gens = {}, [], []
        for side in ("a", "b"):
            secret = SECRETS[side]
            job = Job(id=fresh(), kind=JobKind.sample.value, owner_id=user.id, status=JobStatus.succeeded,
                      title=f"sample {secret['model_ref']}", job_dir=secret["model_dir"])  # fmt: skip
            s.add(job)
            s.flush()
            sj = SamplingJob(
                id=fresh(),
                owner_id=user.id or 0,
                job_id=job.id or 0,
                dataset_version_id=1,
                params_json=json.dumps({"params": {"temperature": 0.123456}, "system_prompt": None}),
                backend="transformers",
                backend_version="9.8.7-secret",
                **secret,
            )
            s.add(sj)
            s.flush()
            ids[side], job_ids = sj.id or 0, [*job_ids, job.id or 0]
            for i, sid in enumerate(sample_ids):
                for k in range(2):
                    text = f"answer {side.upper()} {i} k{k}: **bold** <script>x</script>"
                    if i == 1 and side == "a":
                        text = f"answer A {i} k{k}: I am ChatGPT, trained by OpenAI."
                    g = Generation(
                        id=fresh(),
                        sampling_job_id=sj.id or 0,
                        sample_id=sid,
                        prompt_id=str(sid),
                        index=k,
                        task_type=TASK_TYPES[i % len(TASK_TYPES)],
                        prompt_text=f"<|im_start|>zeta-template-{side} question {i}?",
                        text=text,
                        ttft_s=0.777123,
                        time_s=3.14159,
                    )
                    s.add(g)
                    s.flush()
                    gens.append(g.id or 0)
        s.commit()
        return Jobs(user.id or 0, ids["a"], ids["b"], (job_ids[0], job_ids[1]), gens, sample_ids)


def new_task(
    engine: Engine, jobs: Jobs, raters: list[int], *, mode: str = "pairwise", overlap: int = 1, **extra
):
    body = {
        "name": "blind test",
        "mode": mode,
        "sampling_a": jobs.a,
        "raters": raters,
        "overlap": overlap,
        **extra,
    }
    if mode == "pairwise":
        body["sampling_b"] = jobs.b
    with Session(engine) as s:
        task = create_task(s, req=parse_task(body), owner_id=jobs.owner_id)
        s.expunge(task)
        return task


def full_answer(view: dict, score: int = 3) -> dict:
    """A valid answer to a CaseView: every dimension scored `score`, left preferred in pairwise."""
    dims = {d["key"]: min(max(score, d["min"]), d["max"]) for d in view["dimensions"]}
    if view["mode"] == "pairwise":
        return {"scores": {"left": dims, "right": dims}, "preference": "left", "flag": False, "comment": "",
                "duration_ms": 1200}  # fmt: skip
    return {"scores": dims, "preference": None, "flag": False, "comment": "", "duration_ms": 900}


@pytest.fixture
def jobs(engine) -> Jobs:
    return make_jobs(engine)
