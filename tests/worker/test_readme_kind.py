"""The job kind shown in the README, as written there, runs end to end: claimed, its events stored once,
succeeded."""

import inspect
import os
import sys
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select

from app.models import Job, JobEvent, JobStatus, utcnow
from worker.kinds import register
from worker.runner import Command, JobKindSpec, execute


class Echo(JobKindSpec):
    kind = "echo"

    def prepare(self, ctx):  # runs in ctx.root; events.jsonl there is tailed into JobEvent
        script = ctx.root / "echo.py"
        script.write_text("open('events.jsonl', 'a').write('{\"type\": \"done\"}\\n')")
        return Command([sys.executable, str(script)], dict(os.environ), str(ctx.root), marker=str(script))


register(Echo())


def test_the_readme_kind_runs(engine):
    with Session(engine) as s:
        job = Job(kind="echo")
        s.add(job)
        s.commit()
        job_id = job.id
    assert execute(job_id) is True
    assert execute(job_id) is False  # a second delivery of the same message does nothing
    with Session(engine) as s:
        job = s.get(Job, job_id)
        assert job.status == JobStatus.succeeded and job.exit_code == 0, (job.error, job.log_tail)
        events = s.exec(select(JobEvent.seq, JobEvent.type).where(JobEvent.job_id == job_id)).all()
    assert [tuple(e) for e in events] == [(0, "done")]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for line in inspect.getsource(Echo).splitlines():  # the README shows this very class
        assert line in readme, line


def test_a_requeued_job_keeps_its_first_start(engine):
    """A resumed run's duration counts from its first start, not from the resume."""
    first = utcnow() - timedelta(hours=3)
    with Session(engine) as s:
        job = Job(kind="echo", started_at=first)
        s.add(job)
        s.commit()
        job_id = job.id
    assert execute(job_id) is True
    with Session(engine) as s:
        started = s.get(Job, job_id).started_at
    assert started.replace(tzinfo=first.tzinfo) == first
