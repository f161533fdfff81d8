"""A real `celery worker` process runs tasks on the embedded SQLite broker and on a real Redis."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
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
            return {**result.get(timeout=timeout), "task_id": result.id}
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
        answer = round_trip(redis_url, redis_url, log, timeout=60)
        again = round_trip(redis_url, redis_url, log, timeout=30)
    finally:
        stop(proc)
    assert answer["pong"] == "你好" and again["pid"] == answer["pid"] != os.getpid()
    # The worker consumed from Redis and stored its results there (not a fallback transport); how fast is
    # measured in bench/, not asserted here, since a loaded 2-core CI machine makes any bound flaky.
    port = urlsplit(redis_url).port
    assert re.search(rf"Connected to redis://\S*127\.0\.0\.1:{port}/", log.read_text())
    stored = redis.Redis.from_url(redis_url)
    for task_id in (answer["task_id"], again["task_id"]):
        assert json.loads(stored.get(f"celery-task-meta-{task_id}"))["result"]["pong"] == "你好"
