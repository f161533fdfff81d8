"""A rating task over two fake sampling jobs, written straight to the database (no import, no sampling run).

The jobs carry recognisable model references, directories and timings (`SECRETS`), so a test can check that
none of them reaches a rater's page. The e2e test runs `seed_task` in the live server's environment.
"""

import json

from sqlmodel import Session, select

from app.models import (
    Dataset,
    DatasetKind,
    DatasetVersion,
    Generation,
    Job,
    JobKind,
    JobStatus,
    RatingTask,
    Sample,
    SamplingJob,
    User,
)
from app.rating.rubrics import create_rubric
from app.rating.tasks import TaskRequest, create_task

MODELS = ("run:7301/step-4242", "/ckpt/secret-model-B-9911")
SECRETS = (*MODELS, "secret-model-B-9911", "7301", "step-4242", "ttft")

PROMPTS = [
    ("北京是哪个国家的首都？", "北京是中国的首都。", "北京是日本的首都。", "qa/geo"),
    ("What is 6 * 7?", "6 * 7 = **42**.", "It is 42, i.e. $6 \\times 7 = 42$.", "math"),
    (
        "Write a haiku about rain.",
        "Rain on the tin roof\nsoft drums",
        "Grey rain taps softly\non the roof",
        "writing",
    ),
    ("Give a table of two primes.", "| n | prime |\n|---|---|\n| 1 | 2 |\n| 2 | 3 |", "2 and 3.", "math"),
    ("Show print in Python.", "```python\nprint('hi')\n```", "Use print('hi').", "code"),
    ("Name a colour.", "Red.", "<script>alert(1)</script> Blue.", "qa/misc"),
    ("Say hello.", "Hello!", "Hi there!", "chat"),
]


def _sampling_job(session: Session, owner: int, version: int, model: str) -> SamplingJob:
    job = Job(kind=JobKind.sample.value, owner_id=owner, title=f"sample {model}", status=JobStatus.succeeded)
    session.add(job)
    session.flush()
    sj = SamplingJob(
        owner_id=owner,
        job_id=job.id or 0,
        model_ref=model,
        model_dir=model,
        dataset_version_id=version,
        params_json=json.dumps({"temperature": 0.7}),
    )
    session.add(sj)
    session.flush()
    return sj


# Every scale once: binary, 1-10 (key 0 is 10) and 1-5.
MIXED_RUBRIC = [
    {"key": "follows", "name_en": "Follows the instruction", "name_zh": "遵循指令", "scale": "binary"},
    {"key": "accuracy", "name_en": "Accuracy", "name_zh": "准确性", "scale": "1-10"},
    {"key": "format", "name_en": "Format", "name_zh": "格式", "scale": "1-5", "guidance_en": "5: clean."},
]


def seed_task(
    session: Session,
    *,
    owner: int,
    raters: list[int],
    mode: str = "pairwise",
    n: int = 7,
    rubric: list[dict] | None = None,
) -> RatingTask:
    """A task of `n` cases (at most len(PROMPTS)) rated by `raters`, overlap 1, the default rubric or `rubric`."""
    ds = Dataset(name="rating prompts", kind=DatasetKind.eval, owner_id=owner)
    session.add(ds)
    session.flush()
    version = DatasetVersion(dataset_id=ds.id or 0, number=1, created_by=owner, n_samples=n)
    session.add(version)
    session.flush()
    jobs = [
        _sampling_job(session, owner, version.id or 0, m) for m in MODELS[: 2 if mode == "pairwise" else 1]
    ]
    for i, (prompt, a, b, task_type) in enumerate(PROMPTS[:n]):
        messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": prompt}]
        sample = Sample(
            dataset_id=ds.id or 0,
            added_in=1,
            messages=json.dumps(messages, ensure_ascii=False),
            prompt=prompt,
            answer="",
            reference="A short reference answer." if i % 2 == 0 else None,
            task_l1=task_type.split("/")[0],
            task_l2=task_type.split("/")[1] if "/" in task_type else "",
            content_hash=f"h{i}",
        )
        session.add(sample)
        session.flush()
        for sj, text in zip(jobs, (a, b), strict=False):
            session.add(
                Generation(
                    sampling_job_id=sj.id or 0,
                    sample_id=sample.id or 0,
                    prompt_id=f"p{i}",
                    task_type=task_type,
                    prompt_text=f"<|im_start|>{MODELS[0]} {prompt}",
                    text=text,
                    finish_reason="stop",
                    time_s=1.25,
                )
            )
    session.commit()
    version = None
    if rubric is not None:
        version = create_rubric(
            session, name=f"mixed {ds.id}", body={"dimensions": rubric}, owner_id=owner
        ).id
    req = TaskRequest(
        name="Pairwise check" if mode == "pairwise" else "Single answers",
        rubric_version_id=version,
        mode=mode,
        sampling_a=jobs[0].id or 0,
        sampling_b=jobs[1].id if mode == "pairwise" else None,
        raters=raters,
        overlap=1,
    )
    task = create_task(session, req=req, owner_id=owner)
    session.commit()
    return task


def user_id(session: Session, username: str) -> int:
    return session.exec(select(User.id).where(User.username == username)).one()  # type: ignore[return-value]
