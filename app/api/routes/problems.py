"""Every problem sample of a refused estimate or a failed run, as CSV: the pages name the first 20."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from app.api.deps import Researcher, SessionDep
from app.models import Job, JobKind, Run
from app.runs import problems
from app.runs.launch import MAX_ID

router = APIRouter()


@router.get("/runs/new/estimate/{job_id}/problems.csv")
def estimate_problems_csv(user: Researcher, session: SessionDep, job_id: int):
    """The launch form's: the samples an estimate refused (too long, nothing to train on, unrenderable)."""
    job = session.get(Job, job_id) if 0 < job_id <= MAX_ID else None
    if job is None or job.kind != JobKind.estimate or not problems.count(job.job_dir):
        raise HTTPException(status_code=404, detail=f"Estimate {job_id} recorded no problem samples.")
    return problems.csv_response(problems.read(job.job_dir), filename=f"estimate-{job_id}-problems.csv")


@router.get("/runs/{run_id}/problems.csv")
def run_problems_csv(user: Researcher, session: SessionDep, run_id: int):
    """The run page's: the samples that stopped the run before its first step."""
    run = session.get(Run, run_id) if 0 < run_id <= MAX_ID else None
    if run is None or not problems.count(run.run_dir):
        raise HTTPException(status_code=404, detail=f"Run {run_id} recorded no problem samples.")
    return problems.csv_response(problems.read(run.run_dir), filename=f"run-{run_id}-problems.csv")
