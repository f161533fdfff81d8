"""A real uvicorn serving the app in a subprocess, on SQLite or on a fresh PostgreSQL database.

For tests that need what TestClient cannot show: the event loop and the connection pool of a real
server under concurrent clients or open streams.
"""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url, text

from tests.processes import free_port, stop

REPO = Path(__file__).resolve().parents[1]


@dataclass
class RealServer:
    base: str
    database_url: str
    log: Path


@contextmanager
def database(kind: str) -> Iterator[str]:
    """ "" for SQLite (the server makes its own in its data dir), else a fresh PostgreSQL database's URL."""
    if kind == "sqlite":
        yield ""
        return
    from app.core.db import make_engine

    pg = os.environ.get("SFTLAB_TEST_POSTGRES_URL")
    if not pg:
        pytest.fail("SFTLAB_TEST_POSTGRES_URL is not set: .ci/run starts PostgreSQL and sets it")
    name = "sftlab_t_" + uuid.uuid4().hex[:12]
    admin = make_engine(pg).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def real_server(tmp_path: Path, kind: str, password: str, **env_extra: str) -> Iterator[RealServer]:
    """An initialised data dir (admin with `password`) and uvicorn on a free port, stopped afterwards."""
    with database(kind) as url:
        data = tmp_path / "data"
        data.mkdir()
        url = url or f"sqlite:///{data / 'sftlab.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SFTLAB_")}
        env.update(
            SFTLAB_DATA_DIR=str(data),
            SFTLAB_DATABASE_URL=url,
            SFTLAB_SECRET_KEY="real-server-secret",
            SFTLAB_ADMIN_PASSWORD=password,
            SFTLAB_REAPER_INTERVAL="0",
            PYTHONPATH=str(REPO),
            **env_extra,
        )
        subprocess.run(
            [sys.executable, "-m", "app.cli", "init"], cwd=REPO, env=env, check=True, capture_output=True
        )
        port = free_port()
        log = tmp_path / "server.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"],
            cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_healthy(proc, base, log)
            yield RealServer(base=base, database_url=url, log=log)
        finally:
            stop(proc)


def _wait_healthy(proc: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail("the server did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.1)
