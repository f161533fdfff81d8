"""Worker fixtures: the toy job kind registered with short intervals, real Celery workers, a real Redis."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.config import Settings, get_settings
from tests.processes import RedisServer, stop
from tests.worker.toy_kind import KINDS_ENV

REPO = Path(__file__).resolve().parents[2]

# In-process executions: a heartbeat (and so a cancel check) every 0.2 s, the events file read every 0.05 s.
FAST = {
    "SFTLAB_HEARTBEAT_INTERVAL": "0.2",
    "SFTLAB_TAIL_INTERVAL": "0.05",
    "SFTLAB_CANCEL_GRACE": "1",
}

# Real workers: a job silent for 6 s is lost, and the reaper looks every second.
FAST_WORKER = {
    "SFTLAB_HEARTBEAT_INTERVAL": "1",
    "SFTLAB_HEARTBEAT_TIMEOUT": "6",
    "SFTLAB_REAPER_INTERVAL": "1",
    "SFTLAB_TAIL_INTERVAL": "0.1",
    "SFTLAB_CANCEL_GRACE": "1",
    "SFTLAB_JOB_KINDS": KINDS_ENV,
}


@pytest.fixture
def toy(settings, monkeypatch) -> Settings:
    """The test settings, with the toy kind registered and short intervals."""
    for key, value in {**FAST, "SFTLAB_JOB_KINDS": KINDS_ENV}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    try:
        server = RedisServer(tmp_path)
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    return redis_server.url


class Workers:
    """`celery worker` processes started by a test (threads pool, one slot), with their logs."""

    def __init__(self, tmp: Path, data_dir: Path):
        self.tmp, self.data_dir = tmp, data_dir
        self.procs: list[subprocess.Popen] = []
        self.extra_env: dict[str, str] = {}  # more SFTLAB_* settings for the workers a test starts

    def env(self, broker_url: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SFTLAB_")}
        env.update(
            SFTLAB_DATA_DIR=str(self.data_dir),
            SFTLAB_DATABASE_URL=f"sqlite:///{self.data_dir / 'sftlab.db'}",
            SFTLAB_BROKER_URL=broker_url,
            SFTLAB_SECRET_KEY="test-secret",
            PYTHONPATH=str(REPO),
            **FAST_WORKER,
        )
        env.update(self.extra_env)
        return env

    def start(self, queue: str, broker_url: str = "") -> subprocess.Popen:
        n = len(self.procs) + 1
        cmd = [
            sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-P", "threads", "-c", "1",
            "-Q", queue, "-n", f"toy{n}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
            "--without-heartbeat",
        ]  # fmt: skip
        log = (self.tmp / f"worker{n}.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=REPO, env=self.env(broker_url), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def log(self, n: int) -> str:
        return (self.tmp / f"worker{n}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "".join(
            f"\n--- worker{i} log ---\n{self.log(i)[-3000:]}" for i in range(1, len(self.procs) + 1)
        )

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                stop(proc)


@pytest.fixture
def workers(tmp_path, settings) -> Iterator[Workers]:
    w = Workers(tmp_path, settings.data_dir)
    yield w
    w.stop_all()
