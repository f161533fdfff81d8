"""Shared fixtures: a throwaway migrated database per test, settings, users per role, logged-in clients."""

import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from app.core.config import Settings, get_settings
from app.core.db import get_engine, make_engine
from app.models import JobKind, Role, Run, User

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PASSWORD = "correct horse battery"


def _env(data_dir: Path, url: str) -> dict[str, str]:
    return {
        "SFTLAB_DATA_DIR": str(data_dir),
        "SFTLAB_DATABASE_URL": url,
        "SFTLAB_SECRET_KEY": "test-secret",
        "SFTLAB_REAPER_INTERVAL": "0",  # test_reaper.py turns it on where it is the subject
    }


def eager_dataset_jobs(monkeypatch) -> None:  # noqa: ANN001
    """Imports and index builds run at once, inside the send, as a worker would run them; other jobs go to
    the test's own broker file (a test runs them itself, or checks the message)."""
    from app.jobs import queue
    from app.models import JobKind

    real = queue.send

    def send(job, **kw):  # noqa: ANN001, ANN003
        if job.kind in (JobKind.import_, JobKind.indexing):
            from worker.runner import execute

            execute(job.id)
            return f"eager-{job.id}"
        return real(job, **kw)

    monkeypatch.setattr(queue, "send", send)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    """Migrations run once; each test gets a copy of the resulting file."""
    from app.cli import migrate

    path = tmp_path_factory.mktemp("template") / "sftlab.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def settings(tmp_path, template_db, monkeypatch) -> Iterator[Settings]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(template_db, data_dir / "sftlab.db")
    for key, value in _env(data_dir, f"sqlite:///{data_dir / 'sftlab.db'}").items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    eager_dataset_jobs(monkeypatch)
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def engine(settings):
    return get_engine(settings)


@pytest.fixture
def make_user(settings):
    from app.cli import create_user

    def make(role: Role = Role.researcher, username: str | None = None) -> User:
        return create_user(username=username or f"{role.value}1", password=PASSWORD, role=role)

    return make


class LoggedInClient(TestClient):
    """A TestClient that sends the CSRF token of its login with every unsafe request."""

    csrf: str = ""
    user: User

    def request(self, method, url, **kwargs):  # noqa: ANN001
        if method.upper() in {"POST", "PUT", "PATCH", "DELETE"} and self.csrf:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRF-Token", self.csrf)
            kwargs["headers"] = headers
        return super().request(method, url, **kwargs)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Logs in and returns the CSRF token of that session, read from a page as a browser would."""
    response = client.post(
        "/login", data={"username": username, "password": password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    page = client.get("/runs")
    match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def client(settings) -> Iterator[TestClient]:
    from app.main import app

    with TestClient(app) as c:
        yield c


@pytest.fixture
def client_as(settings, make_user):
    """client_as(Role.researcher) -> a client logged in as a fresh user of that role."""
    from app.main import app

    clients: list[TestClient] = []

    def make(role: Role, username: str | None = None) -> LoggedInClient:
        user = make_user(role, username)
        c = LoggedInClient(app)
        c.__enter__()
        c.csrf = login(c, user.username)
        c.user = user
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def researcher(client_as) -> LoggedInClient:
    return client_as(Role.researcher)


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get("SFTLAB_TEST_POSTGRES_URL")
    if not url:
        pytest.fail("SFTLAB_TEST_POSTGRES_URL is not set: .ci/run starts PostgreSQL and sets it")
    return url


@pytest.fixture
def pg(postgres_url, tmp_path) -> Iterator[tuple]:
    """A fresh database with migrations applied, dropped afterwards; yields (engine, settings)."""
    from app.cli import migrate

    name = "sftlab_t_" + uuid.uuid4().hex[:12]
    admin = make_engine(postgres_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        settings = Settings(database_url=url, data_dir=tmp_path)
        engine = make_engine(url)
        yield engine, settings
        engine.dispose()
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class InlineWorker:
    """Jobs sent to the broker run at once in a thread of this process, as a worker's `jobs.run` runs them."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def send(self, job, **_) -> str:  # noqa: ANN001, ANN003
        from worker.runner import execute

        thread = threading.Thread(target=execute, args=(job.id,), daemon=True)
        thread.start()
        self.threads.append(thread)
        return f"inline-{job.id}"

    def join(self, timeout: float = 120.0) -> None:
        for thread in self.threads:
            thread.join(timeout)


@pytest.fixture
def inline_worker(settings, monkeypatch) -> Iterator[InlineWorker]:
    worker = InlineWorker()
    monkeypatch.setattr("app.jobs.queue.send", worker.send)
    yield worker
    worker.join()


@pytest.fixture
def sent_runs(engine, monkeypatch) -> Iterator[list[int]]:
    """Instead of the broker: the ids of the runs whose job was sent to a worker, in order. Other jobs
    (estimates, sample renderings) run inline."""
    worker = InlineWorker()
    out: list[int] = []

    def send(job, **_):  # noqa: ANN001, ANN003
        if job.kind != JobKind.train:
            return worker.send(job)
        with Session(engine) as s:
            out.append(s.exec(select(Run.id).where(Run.job_id == job.id)).one())
        return "held"

    monkeypatch.setattr("app.jobs.queue.send", send)
    yield out
    worker.join()
