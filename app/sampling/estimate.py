"""The launch form's estimate: how many answers a sampling job will produce, and how long it should take.

Answers are prompts (what the filter selects) x n. Time comes from this server's own measurements, never a
table of model sizes: the `done` events of its latest finished jobs of the same model directory and
backend, which say how many tokens the program generated in how long, after loading for how long, and when
its first answer was written (trainer/sample.py). Speed depends on the machine, the model and the backend
together, and that is exactly what such a job measured. Until one has finished, the form says so.

What a past job gives (JobSpeed): its generation rate (tokens / (seconds - load_s)), its mean answer length,
its overhead (the worker starting the interpreter and importing, which the job's duration shows beyond the
program's own seconds, plus load_s) and its time to the first answer (that start-up plus first_answer_s).
Over several jobs: tokens and seconds are summed (a rate over all of them), the times are averaged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.core.config import Settings
from app.datasets.browse import get_version
from app.models import Job, JobEvent, JobStatus, SamplingJob
from app.sampling.prompts import select_ids
from app.sampling.refs import resolve_model
from app.sampling.request import SamplingError, SamplingRequest

# Jobs a measurement averages over: the latest ones, so a faster machine or vLLM shows soon.
MEASURED_JOBS = 5


@dataclass(frozen=True)
class JobSpeed:
    """One finished job's figures (see module doc)."""

    tokens: int
    generations: int
    generate_s: float
    overhead_s: float
    first_answer_s: float | None


@dataclass(frozen=True)
class Speed:
    """A model directory and backend as measured over `jobs` finished jobs of this server."""

    jobs: int
    tokens_per_s: float
    tokens_per_answer: float
    overhead_s: float
    first_answer_s: float | None


@dataclass(frozen=True)
class SamplingEstimate:
    prompts: int
    n: int
    answers: int
    max_tokens: int  # every answer cut at max_new_tokens
    speed: Speed | None  # None: no finished job of this model and backend yet
    tokens: int | None = None  # expected: answers x the measured tokens per answer (at most max_new_tokens)
    seconds: float | None = None  # overhead + tokens / rate
    max_seconds: float | None = None  # overhead + max_tokens / rate
    first_answer_s: float | None = None


def job_speed(done: dict, duration_s: float | None) -> JobSpeed | None:
    """A job's figures from its done event and its duration (started to finished); None when unusable."""
    try:
        tokens, generations = int(done["tokens"]), int(done["generations"])
        seconds, load_s = float(done["seconds"]), float(done["load_s"])
    except (KeyError, TypeError, ValueError):
        return None
    generate_s = seconds - load_s
    if tokens <= 0 or generations <= 0 or generate_s <= 0:
        return None
    startup = max(duration_s - seconds, 0.0) if duration_s is not None else 0.0
    first = done.get("first_answer_s")
    return JobSpeed(
        tokens=tokens,
        generations=generations,
        generate_s=generate_s,
        overhead_s=startup + load_s,
        first_answer_s=startup + float(first) if isinstance(first, int | float) else None,
    )


def combine(jobs: list[JobSpeed]) -> Speed | None:
    """Rates over the jobs together (summed tokens over summed seconds); times as plain means."""
    if not jobs:
        return None
    firsts = [j.first_answer_s for j in jobs if j.first_answer_s is not None]
    return Speed(
        jobs=len(jobs),
        tokens_per_s=sum(j.tokens for j in jobs) / sum(j.generate_s for j in jobs),
        tokens_per_answer=sum(j.tokens for j in jobs) / sum(j.generations for j in jobs),
        overhead_s=sum(j.overhead_s for j in jobs) / len(jobs),
        first_answer_s=sum(firsts) / len(firsts) if firsts else None,
    )


def estimate(*, prompts: int, n: int, max_new_tokens: int, speed: Speed | None) -> SamplingEstimate:
    """Answers, tokens and times for a job of `prompts` x `n` answers of at most `max_new_tokens` tokens."""
    answers = prompts * n
    max_tokens = answers * max_new_tokens
    if speed is None:
        return SamplingEstimate(prompts, n, answers, max_tokens, None)
    tokens = round(answers * min(speed.tokens_per_answer, max_new_tokens))
    return SamplingEstimate(
        prompts,
        n,
        answers,
        max_tokens,
        speed,
        tokens=tokens,
        seconds=speed.overhead_s + tokens / speed.tokens_per_s,
        max_seconds=speed.overhead_s + max_tokens / speed.tokens_per_s,
        first_answer_s=speed.first_answer_s,
    )


def measured_speed(
    session: Session, *, model_dir: str, backend: str, limit: int = MEASURED_JOBS
) -> Speed | None:
    """The model directory and backend's speed over this server's latest `limit` succeeded jobs."""
    rows = session.exec(
        select(Job.id, Job.started_at, Job.finished_at)
        .join(SamplingJob, col(SamplingJob.job_id) == col(Job.id))
        .where(
            col(SamplingJob.model_dir) == model_dir,
            col(SamplingJob.backend) == backend,
            col(Job.status) == JobStatus.succeeded,
        )
        .order_by(col(Job.id).desc())
        .limit(limit)
    ).all()
    if not rows:
        return None
    dones: dict[int, str] = {}
    for owner_job, data in session.exec(
        select(JobEvent.job_id, JobEvent.data)
        .where(col(JobEvent.job_id).in_([r[0] for r in rows]), col(JobEvent.type) == "done")
        .order_by(col(JobEvent.seq))
    ).all():
        dones[owner_job] = data  # the last attempt's, for a resumed job
    jobs = []
    for job_id, started, finished in rows:
        if job_id not in dones:
            continue
        try:
            done = json.loads(dones[job_id])
        except ValueError:
            continue
        duration = (finished - started).total_seconds() if started and finished else None
        if isinstance(done, dict) and (speed := job_speed(done, duration)) is not None:
            jobs.append(speed)
    return combine(jobs)


def for_request(session: Session, *, req: SamplingRequest, settings: Settings) -> SamplingEstimate:
    """The estimate of what the form asks; SamplingError (as launch would raise it) when it cannot run."""
    if get_version(session, dataset_id=req.dataset_id, number=req.version) is None:
        raise SamplingError("dataset_id", f"dataset {req.dataset_id} has no version {req.version}")
    prompts = len(select_ids(session, dataset_id=req.dataset_id, version=req.version, flt=req.filter))
    model_dir = resolve_model(session, ref=req.model, settings=settings)
    speed = measured_speed(session, model_dir=model_dir, backend=req.backend)
    return estimate(prompts=prompts, n=req.params.n, max_new_tokens=req.params.max_new_tokens, speed=speed)
