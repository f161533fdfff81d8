"""Every line of a job's events file is stored in JobEvent exactly once: through crashing, racing tailers and
through an executor process SIGKILLed mid-job whose file a second tailer then drains."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from app.models import JobStatus, utcnow
from tests.tailing import race as race_tailers
from tests.worker.conftest import REPO
from tests.worker.toy_kind import file_events, get_job, new_toy, stored_events, wait_job
from worker.processes import job_processes
from worker.reaper import reap
from worker.runner import drain
from worker.tailer import READ_LIMIT, JobEventSink, Tailer

N_EVENTS = 400


def tailer(engine, job_id: int, path: Path) -> Tailer:
    return Tailer(engine, job_id, path, JobEventSink(job_id))


def check_exactly_once(engine, job_id: int, lines: list[str]) -> None:
    """Stored rows are the file's complete lines, seq 0..n-1, none twice, none missing."""
    assert stored_events(engine, job_id) == list(enumerate(lines))
    job = get_job(engine, job_id)
    assert job.events_seq == len(lines)
    progress = [json.loads(line) for line in lines if json.loads(line)["type"] == "progress"]
    if progress:
        assert (job.progress_done, job.progress_total) == (progress[-1]["done"], progress[-1]["total"])


def race(engine, job_id: int, path: Path) -> None:
    """A writer splitting lines at random bytes, and two tailers that crash (lose their memory) at random."""
    events = [{"type": "progress", "done": i + 1, "total": N_EVENTS, "note": "步骤"} for i in range(N_EVENTS)]
    race_tailers(
        path,
        [json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in events],
        lambda: tailer(engine, job_id, path),
        seed=11,
    )
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == N_EVENTS
    check_exactly_once(engine, job_id, lines[:-1])


def test_racing_crashing_tailers_store_each_line_once(toy, engine, tmp_path):
    with Session(engine) as s:
        job_id = new_toy(s)
    race(engine, job_id, tmp_path / "events.jsonl")


@pytest.mark.postgres
def test_racing_crashing_tailers_store_each_line_once_on_postgresql(pg, tmp_path):
    engine, _ = pg
    with Session(engine) as s:
        job_id = new_toy(s)
    race(engine, job_id, tmp_path / "events.jsonl")


def test_an_executor_sigkilled_mid_job_leaves_lines_a_second_tailer_stores_once(toy, engine):
    # Lines written in halves, so the file may end in the middle of one when the job dies.
    with Session(engine) as s:
        job_id = new_toy(s, n=1000, delay=0.02, split=True)
    code = "import sys; from worker.runner import execute; execute(int(sys.argv[1]))"
    # Its tailer reads every 0.5 s, and is killed between two reads: lines wait that it never stored.
    env = {**os.environ, "PYTHONPATH": str(REPO), "SFTLAB_TAIL_INTERVAL": "0.5"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(job_id)], cwd=REPO, env=env)
    try:
        wait_job(engine, job_id, "some events stored", lambda j: j.events_seq >= 20)
        time.sleep(0.25)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    job = get_job(engine, job_id)
    # The toy received SIGTERM when its executor died (die-with-parent): the file stops growing.
    deadline = time.monotonic() + 5
    while job_processes(job.pid, job.marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job_processes(job.pid, job.marker) == []
    job = get_job(engine, job_id)
    assert job.status == JobStatus.running and 20 <= job.events_seq
    lines = file_events(job)
    assert len(lines) > job.events_seq
    # A second tailer (the task that resumes it, or anyone) picks up from the database, not from line 0.
    second = tailer(engine, job_id, Path(job.job_dir) / "events.jsonl")
    drain(second, timeout=10, interval=0.01)
    assert second.seq == len(lines)
    check_exactly_once(engine, job_id, lines)
    assert second.poll() == 0 and tailer(engine, job_id, Path(job.job_dir) / "events.jsonl").poll() == 0
    check_exactly_once(engine, job_id, lines)
    # Nobody heartbeats it any more: the reaper gives it up, with the log's tail.
    assert reap(utcnow() + timedelta(seconds=toy.heartbeat_timeout + 1)) == [job_id]
    job = get_job(engine, job_id)
    assert job.status == JobStatus.lost and "toy: step" in job.log_tail


def test_a_line_longer_than_one_read_is_stored_and_so_are_those_after_it(toy, engine, tmp_path):
    with Session(engine) as s:
        job_id = new_toy(s)
    path = tmp_path / "events.jsonl"
    big = json.dumps({"type": "report", "text": "x" * (READ_LIMIT + 10)})
    lines = [json.dumps({"type": "start"}), big, json.dumps({"type": "progress", "done": 1, "total": 1})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    drain(tailer(engine, job_id, path), timeout=5, interval=0.01)
    check_exactly_once(engine, job_id, lines)
