"""worker.runner.execute runs a subprocess job kind to its end: success, exit code, time limit, cancel, interpreter."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from sqlmodel import Session

from app.core.config import get_settings
from app.jobs.lifecycle import request_cancel
from app.models import Job, JobStatus
from tests.worker.toy_kind import LIMITED, file_events, get_job, new_toy, stored_events, wait_job
from worker.processes import job_processes
from worker.runner import execute


def run_toy(engine, **kw) -> Job:
    with Session(engine) as s:
        job_id = new_toy(s, **kw)
    assert execute(job_id) is True
    return get_job(engine, job_id)


def in_thread(job_id: int) -> threading.Thread:
    thread = threading.Thread(target=execute, args=(job_id,), daemon=True)
    thread.start()
    return thread


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_job_that_exits_0_succeeds_with_its_progress_and_every_event(toy, engine):
    job = run_toy(engine, n=3)
    assert (job.status, job.exit_code, job.error) == (JobStatus.succeeded, 0, "")
    assert (job.progress_done, job.progress_total, job.progress_unit, job.fraction) == (3, 3, "steps", 1.0)
    lines = file_events(job)
    assert [json.loads(line)["type"] for line in lines] == ["start", "progress", "progress", "progress"]
    assert stored_events(engine, job.id) == list(enumerate(lines)) and job.events_seq == 4
    assert job.log_tail.splitlines()[-1] == "toy: finished 3 steps, exiting with code 0"
    assert job.started_at <= job.finished_at and job.task_id.startswith("local-")
    # A second message for the same job (a resend, a redelivery) finds it finished and does nothing.
    assert execute(job.id) is False
    assert get_job(engine, job.id).model_dump() == job.model_dump()


def test_a_nonzero_exit_fails_naming_the_code_and_the_logs_last_line(toy, engine):
    job = run_toy(engine, n=2, exit_code=3)
    assert (job.status, job.exit_code) == (JobStatus.failed, 3)
    assert job.error == "the job exited with code 3: toy: finished 2 steps, exiting with code 3"
    assert (job.progress_done, job.progress_total) == (2, 2)  # as far as it got, not forced to the total


@pytest.mark.parametrize("stubborn", [False, True], ids=["polite", "ignores-sigterm"])
def test_a_job_over_its_time_limit_is_stopped_and_fails(toy, engine, stubborn):
    t0 = time.monotonic()
    job = run_toy(engine, kind=LIMITED, n=1000, delay=0.05, grandchild=True, ignore_term=stubborn)
    took = time.monotonic() - t0
    assert job.status == JobStatus.failed and job.error == "stopped after its time limit of 1 s"
    assert job.exit_code == (-9 if stubborn else -15)
    assert 1 + (toy.cancel_grace if stubborn else 0) <= took < 1 + toy.cancel_grace + 3, took
    assert 0 < job.progress_done < 1000
    assert job_processes(job.pid, job.marker) == []


@pytest.mark.parametrize("stubborn", [False, True], ids=["polite", "ignores-sigterm"])
def test_cancel_stops_every_process_of_the_group(toy, engine, stubborn):
    with Session(engine) as s:
        job_id = new_toy(s, n=1000, delay=0.05, grandchild=True, ignore_term=stubborn)
    thread = in_thread(job_id)
    job = wait_job(engine, job_id, "the grandchild", lambda j: j.events_seq >= 2)
    start, child = (json.loads(data) for _, data in stored_events(engine, job_id)[:2])
    assert child["type"] == "grandchild" and start["pid"] == job.pid
    group = job_processes(job.pid, job.marker)
    assert {p.pid for p in group} >= {job.pid, child["pid"]}
    t0 = time.monotonic()
    with Session(engine) as s:
        request_cancel(s, s.get_one(Job, job_id))
    thread.join(timeout=15)
    took = time.monotonic() - t0
    assert not thread.is_alive()
    job = get_job(engine, job_id)
    assert (job.status, job.error) == (JobStatus.cancelled, "cancelled on request")
    assert job.exit_code == (-9 if stubborn else -15)
    # SIGTERM at the next heartbeat; only a process that ignores it waits out cancel_grace for SIGKILL.
    assert (toy.cancel_grace <= took < toy.cancel_grace + 3) if stubborn else took < toy.cancel_grace, took
    assert job_processes(job.pid, job.marker) == []
    assert all(gone(p.pid) for p in group)


def test_a_job_runs_on_the_interpreter_its_command_names(toy, engine, tmp_path):
    venv = tmp_path / "venv2"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True
    )
    python = venv / "bin" / "python"
    job = run_toy(engine, n=1, python=str(python))
    assert job.status == JobStatus.succeeded, job.error
    start = json.loads(file_events(job)[0])
    assert start["python"] == str(python) != sys.executable
    assert f"$ {python} " in Path(job.log_file).read_text()


@pytest.mark.parametrize(
    "sig, reason",
    [
        (signal.SIGTERM, "killed by SIGTERM (signal 15)"),
        (signal.SIGRTMIN + 6, f"killed by SIGRTMIN+6 (signal {signal.SIGRTMIN + 6})"),  # no name of its own
    ],
)
def test_a_job_killed_by_a_signal_fails_naming_it(toy, engine, sig, reason):
    job = run_toy(engine, n=1, kill_self=int(sig))
    assert (job.status, job.exit_code, job.error) == (JobStatus.failed, -int(sig), reason)


def test_a_kinds_module_that_fails_to_import_fails_the_job_with_the_reason(toy, engine, monkeypatch):
    monkeypatch.setenv(
        "SFTLAB_JOB_KINDS", json.dumps(["tests.worker.toy_kind", "tests.worker.no_such_kinds"])
    )
    get_settings.cache_clear()
    with Session(engine) as s:
        job_id = new_toy(s)
    assert execute(job_id) is True
    job = get_job(engine, job_id)
    # Not left running until the reaper calls it lost ("stopped heartbeating"): the worker says why.
    assert job.status == JobStatus.failed
    assert job.error == "ModuleNotFoundError: No module named 'tests.worker.no_such_kinds'"


def test_a_kind_no_module_registers_fails_the_job_naming_the_known_kinds(toy, engine):
    with Session(engine) as s:
        job_id = new_toy(s, kind="nope")
    assert execute(job_id) is True
    job = get_job(engine, job_id)
    assert job.status == JobStatus.failed
    assert job.error.startswith("no job kind 'nope' on this worker (kinds: ") and "toy-limited" in job.error


def test_a_jobs_subprocess_never_sees_the_secret_key_or_the_database(toy, engine, tmp_path, monkeypatch):
    """The kind passes the worker's whole environment; the runner still keeps secrets from the child."""
    monkeypatch.setenv("SFTLAB_SECRET_KEY", "do-not-leak")
    monkeypatch.setenv("SFTLAB_DATABASE_URL", get_settings().sqlalchemy_url)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@db/x")
    monkeypatch.setenv("PGPASSWORD", "pw")
    monkeypatch.setenv("SFTLAB_MODEL_DIR", "/models")
    dump = tmp_path / "child_env.json"
    python = tmp_path / "python"
    python.write_text(
        f"#!/bin/sh\n{sys.executable} -c 'import json, os; print(json.dumps(dict(os.environ)))' > {dump}\n"
        f'exec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    job = run_toy(engine, n=1, python=str(python))
    assert job.status == JobStatus.succeeded, job.error
    env = json.loads(dump.read_text())
    leaked = [k for k in env if k.startswith("SFTLAB_") and k != "SFTLAB_MODEL_DIR"]
    assert not leaked and "DATABASE_URL" not in env and "PGPASSWORD" not in env
    assert env["SFTLAB_MODEL_DIR"] == "/models" and env["PATH"]
