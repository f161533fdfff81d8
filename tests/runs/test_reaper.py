"""The reaper marks silent running runs lost with a reason and log tail, and kills only their own leftovers."""

import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import get_settings
from app.jobs.reap import start_reaper
from app.models import Run, RunStatus, utcnow
from tests.runs.fake_runs import insert_run
from worker.reaper import reap


def make_run(engine, owner_id: int, root: Path, *, status=RunStatus.running, age: float = 60.0, **kw) -> Run:
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.log").write_text("".join(f"line {i}\n" for i in range(150)))
    with Session(engine, expire_on_commit=False) as s:
        return insert_run(
            s,
            owner_id=owner_id,
            name="r",
            run_dir=str(root),
            status=status,
            worker=kw.pop("worker", "gpu-box-7"),
            heartbeat_at=utcnow() - timedelta(seconds=age),
            log_file=str(root / "train.log"),
            marker=str(root / "run.json"),
            **kw,
        )


def sleeper(marker: str) -> subprocess.Popen:
    """A stand-in for a trainer: its own session, run.json on its command line."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", marker], start_new_session=True
    )


def wait_until_lost(engine, run_id: int, who: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(engine) as s:
            if s.get(Run, run_id).status == RunStatus.lost:
                return
        time.sleep(0.05)
    pytest.fail(f"{who} did not mark the run lost")


@pytest.fixture
def owner(make_user):
    return make_user().id


def test_a_silent_run_becomes_lost_with_reason_and_log_tail(engine, owner, tmp_path):
    run = make_run(engine, owner, tmp_path / "1", age=31)
    fresh = make_run(engine, owner, tmp_path / "2", age=5)
    queued = make_run(engine, owner, tmp_path / "3", status=RunStatus.queued, age=999)
    done = make_run(engine, owner, tmp_path / "4", status=RunStatus.failed, age=999)
    assert reap() == [run.job_id]
    with Session(engine) as s:
        lost = s.get(Run, run.id)
        assert lost.status == RunStatus.lost and lost.finished_at is not None
        assert (
            lost.error
            == f"worker gpu-box-7 stopped heartbeating at {run.job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
        )
        assert lost.job.log_tail.splitlines() == [f"line {i}" for i in range(50, 150)]
        assert [s.get(Run, r.id).status for r in (fresh, queued, done)] == [
            RunStatus.running,
            RunStatus.queued,
            RunStatus.failed,
        ]
    assert reap() == []  # once
    # The clock is a parameter: 30 s on, the fresh run is silent too.
    assert reap(utcnow() + timedelta(seconds=30)) == [fresh.job_id]


def test_leftover_processes_on_this_host_are_killed(engine, owner, tmp_path):
    root = tmp_path / "1"
    proc = sleeper(str(root / "run.json"))
    try:
        make_run(engine, owner, root, pid=proc.pid, worker=socket.gethostname())
        assert len(reap()) == 1
        assert proc.wait(timeout=10) == -9
    finally:
        proc.kill()


@pytest.mark.parametrize("case", ["other host", "reused group id"])
def test_processes_that_are_not_the_runs_own_are_left_alone(engine, owner, tmp_path, case):
    root = tmp_path / "1"
    marker = str(root / "run.json") if case == "other host" else str(tmp_path / "unrelated")
    worker = "another-box" if case == "other host" else socket.gethostname()
    proc = sleeper(marker)
    try:
        make_run(engine, owner, root, pid=proc.pid, worker=worker)
        assert len(reap()) == 1
        time.sleep(0.3)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_the_reaper_thread_runs_until_stopped(settings, engine, owner, tmp_path, monkeypatch):
    monkeypatch.setenv("SFTLAB_REAPER_INTERVAL", "0")
    get_settings.cache_clear()
    assert start_reaper(get_settings()) is None
    monkeypatch.setenv("SFTLAB_REAPER_INTERVAL", "0.1")
    get_settings.cache_clear()
    run = make_run(engine, owner, tmp_path / "1", age=60)
    stop = start_reaper(get_settings())
    try:
        wait_until_lost(engine, run.id, "the reaper thread")
    finally:
        stop()
    assert not [t for t in threading.enumerate() if t.name == "sftlab-reaper"]


def test_the_web_server_reaps_while_it_runs_and_leaves_no_thread(
    settings, engine, owner, tmp_path, monkeypatch
):
    monkeypatch.setenv("SFTLAB_REAPER_INTERVAL", "0.1")
    get_settings.cache_clear()
    from app.main import app

    run = make_run(engine, owner, tmp_path / "1", age=60)
    with TestClient(app):
        assert [t for t in threading.enumerate() if t.name == "sftlab-reaper"]
        wait_until_lost(engine, run.id, "the server's reaper")
    assert not [t for t in threading.enumerate() if t.name == "sftlab-reaper"]
    monkeypatch.setenv("SFTLAB_REAPER_INTERVAL", "0")
    get_settings.cache_clear()
    with TestClient(app):
        assert not [t for t in threading.enumerate() if t.name == "sftlab-reaper"]
