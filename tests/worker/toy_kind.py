"""A toy job kind for the worker's tests: a stdlib script that writes one JSON event per step, then exits.

Registered through SFTLAB_JOB_KINDS='["tests.worker.toy_kind"]', so real Celery workers started by a test
know it as well as the test process does. Its parameters come from Job.params_json (see `params`); the
script's first event names its pid and interpreter, and every step writes a `progress` event.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.jobs.lifecycle import new_job
from app.jobs.logs import read_tail
from app.models import Job, JobEvent
from worker.kinds import register
from worker.runner import Command, Context, JobKindSpec

KIND, LIMITED = "toy", "toy-limited"
KINDS_ENV = json.dumps(["tests.worker.toy_kind"])

# argv: params.json events.jsonl. Lines are written in two halves with a pause between (`split`), as a
# program killed mid-write leaves them; `grandchild` starts a sleeper in the same process group that names
# the marker; `ignore_term` makes the script sit out SIGTERM, so only the runner's SIGKILL stops it;
# `kill_self` ends it by that signal instead of an exit code.
SCRIPT = r"""
import json, os, signal, subprocess, sys, time

params = json.load(open(sys.argv[1]))
if params.get("ignore_term"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
n, delay = params.get("n", 3), params.get("delay", 0.0)
with open(sys.argv[2], "ab", buffering=0) as events:
    def emit(**event):
        line = json.dumps(event).encode() + b"\n"
        if params.get("split"):
            half = len(line) // 2
            events.write(line[:half])
            time.sleep(delay / 2)
            line = line[half:]
        events.write(line)

    emit(type="start", pid=os.getpid(), python=sys.executable)
    if params.get("grandchild"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", sys.argv[1]])
        emit(type="grandchild", pid=child.pid)
    for i in range(n):
        time.sleep(delay)
        emit(type="progress", done=i + 1, total=n)
        print(f"toy: step {i + 1} of {n}", flush=True)
if params.get("kill_self"):
    print(f"toy: finished {n} steps, killing itself with signal {params['kill_self']}", flush=True)
    os.kill(os.getpid(), params["kill_self"])
code = params.get("exit_code", 0)
print(f"toy: finished {n} steps, exiting with code {code}", flush=True)
sys.exit(code)
"""


def params(
    *,
    n: int = 3,
    delay: float = 0.0,
    exit_code: int = 0,
    python: str = "",
    split: bool = False,
    grandchild: bool = False,
    ignore_term: bool = False,
    kill_self: int = 0,
) -> dict[str, Any]:
    """A toy job's parameters; `python`: the interpreter to run the script with (default: this one)."""
    return dict(
        n=n,
        delay=delay,
        exit_code=exit_code,
        python=python,
        split=split,
        grandchild=grandchild,
        ignore_term=ignore_term,
        kill_self=kill_self,
    )


class Toy(JobKindSpec):
    kind = KIND

    def prepare(self, ctx: Context) -> Command:
        p = json.loads(ctx.job.params_json)
        script, spec = ctx.root / "toy.py", ctx.root / "toy.json"
        script.write_text(SCRIPT, encoding="utf-8")
        spec.write_text(json.dumps(p), encoding="utf-8")
        argv = [p.get("python") or sys.executable, str(script), str(spec), str(ctx.root / "events.jsonl")]
        return Command(argv, env=dict(os.environ), cwd=str(ctx.root), marker=str(spec))


class ToyLimited(Toy):
    kind = LIMITED
    time_limit = 1.0


register(Toy())
register(ToyLimited())


def new_toy(session: Session, *, queue: str = "toy", kind: str = KIND, **kw: Any) -> int:
    """Insert and commit a queued toy job; returns its id (nothing is sent)."""
    job = new_job(
        session, kind=kind, owner_id=None, queue=queue, title="toy", params=params(**kw), unit="steps"
    )
    session.commit()
    assert job.id is not None
    return job.id


def get_job(engine: Engine, job_id: int) -> Job:
    with Session(engine) as s:
        return s.get_one(Job, job_id)


def wait_job(
    engine: Engine,
    job_id: int,
    what: str,
    ok: Callable[[Job], bool],
    timeout: float = 20,
    context: Callable[[], str] = str,
) -> Job:
    """The job once `ok(job)`; else an AssertionError with where it stands, its log and `context()`."""
    deadline = time.monotonic() + timeout
    while True:
        job = get_job(engine, job_id)
        if ok(job):
            return job
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"job {job_id}: {what} not within {timeout}s; status {job.status}, events {job.events_seq}, "
                f"error {job.error!r}\n--- log ---\n{read_tail(job.log_file) if job.log_file else ''}{context()}"
            )
        time.sleep(0.05)


def stored_events(engine: Engine, job_id: int) -> list[tuple[int, str]]:
    """(seq, line) of the job's stored events, in seq order."""
    with Session(engine) as s:
        rows = s.exec(select(JobEvent.seq, JobEvent.data).where(JobEvent.job_id == job_id)).all()
    return sorted((seq, data) for seq, data in rows)


def file_events(job: Job) -> list[str]:
    """The complete lines of the job's events file (a partial last line is left out)."""
    return (Path(job.job_dir) / "events.jsonl").read_text(encoding="utf-8").split("\n")[:-1]
