"""A real worker SIGKILLed under a toy job: a second worker's reaper marks the job lost with the reason and
the log's tail, and kills what the job left behind on this host."""

import json
import signal
import time

import psutil
import pytest
from sqlmodel import Session

from app.jobs.queue import enqueue_or_fail
from app.models import Job, JobStatus
from tests.worker.conftest import FAST_WORKER
from tests.worker.toy_kind import new_toy, stored_events, wait_job
from worker.processes import job_processes


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return gone(pid)


@pytest.mark.slow
def test_a_job_whose_worker_is_sigkilled_is_lost_and_leaves_no_process(toy, engine, workers):
    first = workers.start("toy")  # the embedded SQLite broker, as the test process sends
    with Session(engine) as s:
        job_id = new_toy(s, n=100_000, delay=0.1, grandchild=True)
        assert enqueue_or_fail(s, s.get_one(Job, job_id)) == ""
    job = wait_job(
        engine,
        job_id,
        "the grandchild started and two steps done",
        lambda j: j.events_seq >= 4,
        timeout=30,
        context=workers.logs,
    )
    grandchild = json.loads(stored_events(engine, job_id)[1][1])["pid"]
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.monotonic()
    # The toy dies with its worker (die-with-parent); the grandchild it started has no such tie and
    # survives in the job's process group until a reaper on this host kills it by the job's marker.
    assert wait_gone(job.pid, within=5)
    assert not gone(grandchild)
    assert wait_job(engine, job_id, "still running", lambda j: j.status == JobStatus.running)
    workers.start("toy")
    timeout = float(FAST_WORKER["SFTLAB_HEARTBEAT_TIMEOUT"])
    job = wait_job(
        engine, job_id, "lost", lambda j: j.status != JobStatus.running, timeout=30, context=workers.logs
    )
    assert job.status == JobStatus.lost
    assert time.monotonic() - killed_at >= timeout - 1  # not before its heartbeat went stale
    assert job.error.startswith(f"worker {job.worker} stopped heartbeating at ")
    assert "toy: step" in job.log_tail and job.finished_at is not None
    assert wait_gone(grandchild, within=5)
    assert job_processes(job.pid, job.marker) == []
    assert f"killed 1 leftover process(es) of group {job.pid}" in workers.log(2)
