"""Runs on real `celery worker` processes (embedded SQLite broker, then Redis): events, cancel, a killed worker.

One scenario per broker, on one `-c 1` worker serving queue `cpu`:
1. a tiny-model pCLUE run succeeds and its events are in the database;
2. a second run is cancelled while training: its whole process group is gone;
3. a third run is training and a fourth waits behind it when the worker is SIGKILLed; a second worker
   started afterwards reaps the third (lost, within 60 s, no trainer process left) and, because tasks are
   acknowledged late and the dead worker never took the fourth, runs the fourth to success;
4. (embedded broker) SIGTERM to that worker stops its training run at once: failed, resumable, no process left.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from app.core.config import get_settings
from app.models import Run, RunEvent, RunStatus
from app.runs.launch import launch
from app.runs.lifecycle import request_cancel
from tests.processes import stop
from tests.runs.conftest import no_indexing, pclue_dataset, tiny_model_dir  # noqa: F401 - fixtures
from tests.runs.test_launch import request
from tests.worker.test_celery_real import REPO, worker_env
from trainer.config import tiny_debug
from worker.processes import job_processes as run_processes

FAST = {
    "SFTLAB_HEARTBEAT_INTERVAL": "1",
    "SFTLAB_HEARTBEAT_TIMEOUT": "6",
    "SFTLAB_REAPER_INTERVAL": "1",
    "SFTLAB_TAIL_INTERVAL": "0.2",
    "SFTLAB_CANCEL_GRACE": "2",
    "SFTLAB_TRAINER_THREADS": "1",
}


def config(epochs: float) -> dict:
    cfg = tiny_debug()
    cfg.train.epochs = epochs
    cfg.data.max_seq_len = 256
    cfg.data.over_length = "truncate"
    return cfg.to_dict()


class Workers:
    """Run workers started by the test, with their logs for failure messages."""

    def __init__(self, tmp: Path, env: dict[str, str]):
        self.tmp, self.env = tmp, env
        self.procs: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        n = len(self.procs) + 1
        cmd = [
            sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-P", "threads", "-c", "1",
            "-Q", "cpu", "-n", f"runs{n}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        log = (self.tmp / f"worker{n}.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "".join(
            f"\n--- worker{i} log ---\n" + (self.tmp / f"worker{i}.log").read_text(errors="replace")[-3000:]
            for i in range(1, len(self.procs) + 1)
        )

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                stop(proc)


def get(engine, run_id: int) -> Run:
    with Session(engine) as s:
        return s.get(Run, run_id)


def wait_run(engine, workers: Workers, run_id: int, what: str, ok, timeout: float = 60) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = get(engine, run_id)
        if ok(run):
            return run
        time.sleep(0.2)
    raise AssertionError(
        f"run {run_id}: {what} not within {timeout}s; status {run.status}, events {run.job.events_seq}, "
        f"error {run.error!r}\n--- log tail ---\n{run.job.log_tail}{workers.logs()}"
    )


def training(run: Run) -> bool:
    return run.status == RunStatus.running and run.job.events_seq > 1


def no_processes_left(run: Run, within: float = 10) -> None:
    """No live process in the run's group or naming its run.json (a zombie awaiting init counts as gone)."""
    marker = str(Path(run.run_dir) / "run.json")
    deadline = time.monotonic() + within
    while run_processes(run.job.pid, marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run_processes(run.job.pid, marker) == []


def scenario(
    tmp_path: Path, engine, ds, model_dir: Path, broker_url: str, monkeypatch, shutdown: bool
) -> None:
    data_dir = get_settings().data_dir
    # The test process enqueues on the same broker as the workers; its celery_app stays eager, so a run
    # that executes at all executed in a worker process.
    monkeypatch.setenv("SFTLAB_BROKER_URL", broker_url)
    get_settings.cache_clear()
    env = {**worker_env(data_dir, broker_url), **FAST}
    workers = Workers(tmp_path, env)
    first = workers.start()
    try:
        # 1. a run succeeds; every line the trainer wrote is stored once
        ok_id = launch(request(ds, name="ok", base_model=str(model_dir), config=config(0.05)))
        run = wait_run(engine, workers, ok_id, "success", lambda r: r.status in {"succeeded", "failed"})
        assert run.status == RunStatus.succeeded, run.error + run.job.log_tail
        lines = (Path(run.run_dir) / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        assert run.job.events_seq == len(lines) > 2 and json.loads(lines[-1])["type"] == "done"
        with Session(engine) as s:
            rows = s.exec(select(RunEvent.seq, RunEvent.data).where(RunEvent.run_id == ok_id)).all()
        assert sorted(rows) == [(i, line) for i, line in enumerate(lines)]
        assert run.step == run.total_steps > 0 and run.final_loss is not None
        assert f"jobs.run[{run.job.task_id}]" in (tmp_path / "worker1.log").read_text()
        # 2. cancel a training run: cancelled within seconds, no process of its group left
        cancel_id = launch(request(ds, name="cancel", base_model=str(model_dir), config=config(5.0)))
        run = wait_run(engine, workers, cancel_id, "training", training)
        with Session(engine) as s:
            request_cancel(s, s.get(Run, cancel_id))
        run = wait_run(engine, workers, cancel_id, "cancelled", lambda r: r.status != "running", timeout=15)
        assert run.status == RunStatus.cancelled
        no_processes_left(run)
        # 3. kill the worker under a training run, with another run queued behind it
        killed_id = launch(request(ds, name="killed", base_model=str(model_dir), config=config(5.0)))
        run = wait_run(engine, workers, killed_id, "training", training)
        behind_id = launch(request(ds, name="behind", base_model=str(model_dir), config=config(0.05)))
        time.sleep(1.5)  # let the broker offer it: a worker that prefetched it would now take it to its grave
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = time.monotonic()
        assert get(engine, behind_id).status == RunStatus.queued
        # Gone before any reaper runs: the trainer died with its worker (PR_SET_PDEATHSIG).
        no_processes_left(run, within=5)
        workers.start()  # its reaper looks at once, then every second
        run = wait_run(engine, workers, killed_id, "lost", lambda r: r.status != "running", timeout=60)
        assert run.status == RunStatus.lost and time.monotonic() - killed_at < 60
        assert run.error.startswith(f"worker {run.job.worker} stopped heartbeating at ")
        assert "trainer.train" in run.job.log_tail
        no_processes_left(run)
        run = wait_run(
            engine,
            workers,
            behind_id,
            "the queued run to finish",
            lambda r: r.status in {"succeeded", "failed"},
        )
        assert run.status == RunStatus.succeeded, run.error + run.job.log_tail
        assert f"jobs.run[{run.job.task_id}]" in (tmp_path / "worker2.log").read_text()
        if shutdown:
            # 4. SIGTERM (make run's Ctrl-C): the worker stops its trainer and exits, not hours later
            stop_id = launch(request(ds, name="shutdown", base_model=str(model_dir), config=config(5.0)))
            wait_run(engine, workers, stop_id, "training", training)
            second = workers.procs[-1]
            second.terminate()
            second.wait(timeout=30)
            run = get(engine, stop_id)
            assert run.status == RunStatus.failed and "worker was shut down" in run.error
            no_processes_left(run)
    finally:
        workers.stop_all()


@pytest.mark.slow
def test_runs_on_a_real_worker_with_the_embedded_broker(
    tmp_path,
    settings,
    engine,
    pclue_dataset,  # noqa: F811 - the fixture imported above
    tiny_model_dir,  # noqa: F811
    monkeypatch,
):
    broker = f"sqla+sqlite:///{settings.data_dir / 'broker.db'}"
    scenario(tmp_path, engine, pclue_dataset, tiny_model_dir, broker, monkeypatch, shutdown=True)


@pytest.mark.slow
@pytest.mark.redis
def test_runs_on_a_real_worker_with_redis(
    tmp_path,
    settings,
    engine,
    pclue_dataset,  # noqa: F811 - the fixture imported above
    tiny_model_dir,  # noqa: F811
    redis_url,
    monkeypatch,
):
    scenario(tmp_path, engine, pclue_dataset, tiny_model_dir, redis_url, monkeypatch, shutdown=False)
