"""Judge jobs: launch one configuration on one rating task, cancel, resume, and what its page shows.

A judge job is a job of the job system (kind `judge`, progress in cases): the worker's kind asks the
endpoint in-process, or runs the sampling program for a local judge. Resume queues the same job again;
the worker then skips every case the judge has rated (app.judging.record.judged_case_ids), and asks
again those whose reply did not parse. Position consistency (pairwise) is counted from the stored
verdicts of both orders by app.judge.pairwise, per task_type and overall.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.jobs.lifecycle import new_job, request_cancel, requeue_finished
from app.jobs.queue import enqueue_or_fail
from app.judge.pairwise import ALL, PairVerdicts, outcomes, position_consistency
from app.judging.configs import ConfigError
from app.models import (
    FINISHED,
    Job,
    JobKind,
    JobStatus,
    JudgeConfig,
    JudgeJob,
    JudgeKind,
    JudgeOutcome,
    JudgeResult,
    RatingMode,
    RatingTask,
)
from app.sampling.refs import resolve_model
from app.sampling.request import SamplingError

MAX_FAILURES_SHOWN = 500


def launch(
    session: Session, *, config: JudgeConfig, task: RatingTask, owner_id: int, settings: Settings
) -> JudgeJob:
    """Create the job and send it to a worker; ConfigError when the configuration cannot run now."""
    params: dict[str, Any] = {}
    if config.kind == JudgeKind.local.value:
        try:
            params["model_dir"] = resolve_model(session, ref=config.model_ref, settings=settings)
        except SamplingError as exc:
            raise ConfigError("model_ref", exc.message) from None
    elif not config.base_url:
        raise ConfigError("base_url", "this judge has no endpoint URL")
    job = new_job(
        session,
        kind=JobKind.judge,
        owner_id=owner_id,
        queue=settings.sampling_queue,
        title=f"judge {config.name} on {task.name}",
        params=params,
        unit="cases",
    )
    job.progress_total = task.n_cases
    judge_job = JudgeJob(
        job_id=job.id or 0, config_id=config.id or 0, task_id=task.id or 0, owner_id=owner_id
    )
    session.add(job)
    session.add(judge_job)
    session.commit()
    enqueue_or_fail(session, job)
    session.refresh(judge_job)
    return judge_job


def cancel(session: Session, *, judge_job: JudgeJob) -> Job:
    """Queued: cancelled at once; running: stopped at the next case. JobStateError when finished."""
    job = session.get_one(Job, judge_job.job_id)
    request_cancel(session, job, what="judge job")
    return job


def resume(session: Session, *, judge_job: JudgeJob) -> Job:
    """Queue a failed, cancelled or lost judge job again; judged cases are skipped, failed replies asked again."""
    job = session.get_one(Job, judge_job.job_id)
    requeue_finished(session, job, name=f"judge job {judge_job.id}")
    enqueue_or_fail(session, job)
    return job


def _pairs(session: Session, judge_job: JudgeJob) -> list[PairVerdicts]:
    rows = session.exec(
        select(JudgeResult.task_type, JudgeResult.verdict_ab, JudgeResult.verdict_ba)
        .where(JudgeResult.judge_job_id == judge_job.id, JudgeResult.outcome == JudgeOutcome.ok.value)
        .order_by(col(JudgeResult.case_id))
    ).all()
    return [PairVerdicts(tt, ab, ba) for tt, ab, ba in rows if ab and ba]  # type: ignore[arg-type]


def consistency(session: Session, judge_job: JudgeJob) -> list[dict[str, Any]]:
    """Position consistency per task_type, then all together ("*"): cases, consistent, share and the
    inconsistent ones by kind (first position both times, second both times, a tie in one order)."""
    pairs = _pairs(session, judge_job)
    wins = outcomes(pairs)
    table = position_consistency(pairs)
    rows = []
    for key, c in table.items():
        row_wins = wins.get(key) if key != ALL else None
        rows.append(
            {
                "task_type": key,
                "n": c.n,
                "consistent": c.consistent,
                "share": c.share,
                "first": c.first,
                "second": c.second,
                "half_tie": c.half_tie,
                "a_wins": row_wins["A"] if row_wins else sum(w["A"] for w in wins.values()),
                "b_wins": row_wins["B"] if row_wins else sum(w["B"] for w in wins.values()),
                "ties": row_wins["tie"] if row_wins else sum(w["tie"] for w in wins.values()),
            }
        )
    return rows


def detail(session: Session, judge_job: JudgeJob) -> dict[str, Any]:
    """What the job's page and API show: status, progress, counts, failures with reasons, consistency."""
    job = session.get_one(Job, judge_job.job_id)
    task = session.get_one(RatingTask, judge_job.task_id)
    config = session.get_one(JudgeConfig, judge_job.config_id)
    counts = dict(
        session.exec(
            select(JudgeResult.outcome, func.count())
            .where(JudgeResult.judge_job_id == judge_job.id)
            .group_by(col(JudgeResult.outcome))
        ).all()
    )
    failures = session.exec(
        select(JudgeResult)
        .where(JudgeResult.judge_job_id == judge_job.id, JudgeResult.outcome == JudgeOutcome.failed.value)
        .order_by(col(JudgeResult.case_id))
        .limit(MAX_FAILURES_SHOWN)
    ).all()
    versions = session.exec(
        select(JudgeResult.template_version).where(JudgeResult.judge_job_id == judge_job.id).distinct()
    ).all()
    pairwise = task.mode == RatingMode.pairwise.value
    return {
        "id": judge_job.id,
        "job_id": job.id,
        "status": job.status.value,
        "finished": job.status in FINISHED,
        "resumable": job.status in FINISHED and job.status != JobStatus.succeeded,
        "error": job.error,
        "progress_done": job.progress_done,
        "progress_total": job.progress_total,
        "config": {"id": config.id, "name": config.name, "url": f"/judges/{config.id}"},
        "task": {"id": task.id, "name": task.name, "mode": task.mode, "url": f"/rating/tasks/{task.id}"},
        "rated": int(counts.get(JudgeOutcome.ok.value, 0)),
        "failed": int(counts.get(JudgeOutcome.failed.value, 0)),
        "failures": [
            {"case_id": r.case_id, "task_type": r.task_type, "reason": r.reason, "excerpt": r.excerpt}
            for r in failures
        ],
        "template_versions": sorted(v for v in versions if v),
        "consistency": consistency(session, judge_job) if pairwise else None,
        "url": f"/judges/jobs/{judge_job.id}",
    }


def results(session: Session, judge_job: JudgeJob) -> list[dict[str, Any]]:
    """Every case the job judged: outcome, the prompt version, the rating's preference (A/B terms), both
    orders' verdicts and the judge's explanations, or the failure's reason and excerpt."""
    rows = session.exec(
        select(JudgeResult).where(JudgeResult.judge_job_id == judge_job.id).order_by(col(JudgeResult.case_id))
    ).all()
    return [
        {
            "case_id": r.case_id,
            "task_type": r.task_type,
            "outcome": r.outcome,
            "rating_id": r.rating_id,
            "template_version": r.template_version,
            "group": r.group,
            "verdict_ab": r.verdict_ab,
            "verdict_ba": r.verdict_ba,
            "detail": json.loads(r.detail_json or "{}"),
            "reason": r.reason,
            "excerpt": r.excerpt,
        }
        for r in rows
    ]


def list_jobs(session: Session, *, config: JudgeConfig) -> list[dict[str, Any]]:
    """The configuration's jobs, newest first, with status and progress."""
    rows = session.exec(
        select(JudgeJob, Job, RatingTask)
        .join(Job, col(Job.id) == col(JudgeJob.job_id))
        .join(RatingTask, col(RatingTask.id) == col(JudgeJob.task_id))
        .where(JudgeJob.config_id == config.id)
        .order_by(col(JudgeJob.id).desc())
    ).all()
    return [
        {
            "id": jj.id,
            "task": task.name,
            "status": job.status.value,
            "done": job.progress_done,
            "total": job.progress_total,
            "url": f"/judges/jobs/{jj.id}",
        }
        for jj, job, task in rows
    ]


def params_of(job: Job) -> dict[str, Any]:
    return json.loads(job.params_json or "{}")
