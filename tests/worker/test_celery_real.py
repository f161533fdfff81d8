"""A real `celery worker` process runs tasks on the embedded SQLite broker and on a real Redis."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery

from tests.processes import stop
from worker.celery_app import celery_app

REPO = Path(__file__).resolve().parents[2]


# Registered in the worker through `--include tests.worker.test_celery_real`; the test process only sends it.
@celery_app.task(name="tests.ping")
def ping(value: str) -> dict:
    return {"pong": value, "pid": os.getpid()}


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-P", "threads", "-c", "2",
        "--include", "tests.worker.test_celery_real", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def worker_env(data_dir: Path, broker_url: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFTLAB_")}
    env.update(
        SFTLAB_DATA_DIR=str(data_dir),
        SFTLAB_DATABASE_URL=f"sqlite:///{data_dir / 'sftlab.db'}",
        SFTLAB_BROKER_URL=broker_url,
        SFTLAB_SECRET_KEY="test-secret",
        PYTHONPATH=str(REPO),
    )
    return env


def round_trip(broker: str, backend: str, log: Path, timeout: float) -> dict:
    client = Celery("client", broker=broker, backend=backend)
    client.conf.broker_connection_retry_on_startup = True
    try:
        result = client.send_task("tests.ping", args=["你好"], queue="default")
        try:
            return result.get(timeout=timeout)
        except Exception as exc:
            raise AssertionError(
                f"no answer from the worker: {exc!r}\n--- worker log ---\n{log.read_text()[-4000:]}"
            ) from exc
    finally:
        client.close()


@pytest.mark.slow
def test_worker_process_runs_a_task_on_the_embedded_sqlite_broker(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log = tmp_path / "worker.log"
    proc = start_worker(worker_env(data_dir), log)
    try:
        answer = round_trip(
            f"sqla+sqlite:///{data_dir / 'broker.db'}",
            f"db+sqlite:///{data_dir / 'results.db'}",
            log,
            timeout=60,
        )
    finally:
        stop(proc)
    assert answer["pong"] == "你好"
    assert answer["pid"] != os.getpid()  # ran in the worker, not eagerly here
    assert "tests.ping" in log.read_text()


@pytest.mark.slow
@pytest.mark.redis
def test_worker_process_runs_a_task_on_redis(tmp_path, redis_url):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log = tmp_path / "worker.log"
    proc = start_worker(worker_env(data_dir, redis_url), log)
    try:
        started = time.monotonic()
        answer = round_trip(redis_url, redis_url, log, timeout=60)
        # A second task on a warm worker: Redis delivers in milliseconds, not the SQLite transport's ~1 s poll.
        t0 = time.monotonic()
        again = round_trip(redis_url, redis_url, log, timeout=10)
        warm = time.monotonic() - t0
    finally:
        stop(proc)
    assert answer["pong"] == "你好" and again["pid"] == answer["pid"] != os.getpid()
    assert warm < 0.9, f"warm round trip took {warm:.2f}s (cold start {t0 - started:.1f}s)"
