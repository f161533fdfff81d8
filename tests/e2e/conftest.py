"""Live-server fixtures: uvicorn and a real Celery worker as subprocesses on a fresh migrated data dir, and Playwright.

The server and worker run exactly as `make run` starts them (embedded SQLite
database and broker), so a browser test exercises the real import and indexing
path, not an eager in-process shortcut.
"""

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import free_port, stop

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_PASSWORD = "e2e admin password"
PASSWORD = "e2e researcher password"


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    env: dict[str, str]
    server_log: Path
    worker_log: Path

    def logs(self) -> str:
        return (
            f"--- server log ---\n{self.server_log.read_text()[-3000:]}\n"
            f"--- worker log ---\n{self.worker_log.read_text()[-3000:]}\n"
            f"--- run worker log ---\n{(self.worker_log.parent / 'run_worker.log').read_text()[-3000:]}\n"
            f"--- interactive worker log ---\n"
            f"{(self.worker_log.parent / 'interactive_worker.log').read_text()[-3000:]}"
        )

    def create_user(self, username: str, role: str, password: str = PASSWORD) -> None:
        subprocess.run(
            [sys.executable, "-m", "app.cli", "create-user", username, "--role", role, "--password", password],
            cwd=REPO, env=self.env, check=True, capture_output=True,
        )  # fmt: skip

    def import_pclue(self, username: str, name: str) -> int:
        """pCLUE imported for `username` by the importer itself, in this server's environment (the upload
        path has its own browser test); returns the dataset id."""
        code = (
            "from sqlmodel import Session, select\n"
            "from app.core.db import get_engine\n"
            "from app.models import User\n"
            "from tests.runs.conftest import import_pclue\n"
            "with Session(get_engine()) as s:\n"
            f"    owner = s.exec(select(User).where(User.username == {username!r})).one().id\n"
            f"print(import_pclue(owner, name={name!r}).dataset_id)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=self.env, capture_output=True, text=True, check=True
        )
        return int(out.stdout.strip().splitlines()[-1])


def wait_until_serving(live: "LiveServer", server: subprocess.Popen, timeout: float = 30) -> None:
    """Return once /healthz answers 200; fail with the logs if the server died or never answered."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{live.url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            pytest.fail("the server did not start\n" + live.logs())
        time.sleep(0.1)


def start_web(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int, Path]:
    """`app.cli init`, then uvicorn on a free port; (process, port, its log)."""
    subprocess.run(
        [sys.executable, "-m", "app.cli", "init"], cwd=REPO, env=env, check=True, capture_output=True
    )
    port = free_port()
    log = root / "server.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    return server, port, log


def start_worker(
    env: dict[str, str], log: Path, *, queues: str, concurrency: int, name: str
) -> subprocess.Popen:
    """A Celery worker (threads pool) on `queues`, as `make run` starts them."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-P", "threads", "-c",
         str(concurrency), "-Q", queues, "-n", f"{name}@%h", "--loglevel", "INFO", "--without-gossip",
         "--without-mingle"],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def launch_sampling(
    page,
    server: LiveServer,
    *,
    model: str,
    dataset_id: int,
    timeout_ms: int,
    backend: str = "transformers",
    **fields: str,
) -> None:  # noqa: ANN001
    """Fill the open sampling form (pCLUE's anaphora_resolution prompts, `backend`, plus `fields` by input
    name), launch, and wait on the results page until the job has succeeded."""
    from playwright.sync_api import expect

    form = page.locator("form.sampling-form")
    form.locator('input[name="model"]').fill(model)
    form.locator('select[name="dataset"]').select_option(f"{dataset_id}:1")
    form.locator('input[name="task"]').fill("anaphora_resolution")
    form.locator('select[name="backend"]').select_option(backend)
    for name, value in fields.items():
        form.locator(f'input[name="{name}"]').fill(value)
    form.locator("button.primary").click()
    try:
        page.wait_for_url(re.compile(r"/sampling/\d+$"))
    except Exception as exc:
        raise AssertionError(f"the form did not launch: {page.locator('main').inner_text()[:2000]}") from exc
    try:
        expect(page.locator(".job-status")).to_have_text("succeeded", timeout=timeout_ms)
    except AssertionError as exc:
        raise AssertionError(f"the sampling job never finished\n{server.logs()}") from exc


@contextmanager
def sampling_live_server(root: Path, name: str, extra_env: dict[str, str]) -> Iterator[LiveServer]:
    """A server and one worker (queues cpu and default) of their own, on a fresh SQLite data dir under
    ``root``, for the sampling tests: the shared live server's worker would run other settings."""
    data_dir = root / "data"
    data_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFTLAB_")}
    env.update({"PYTHONPATH": str(REPO), "SFTLAB_SECRET_KEY": "e2e-secret", "SFTLAB_DATA_DIR": str(data_dir),
                "SFTLAB_DATABASE_URL": f"sqlite:///{data_dir / 'sftlab.db'}", **extra_env})  # fmt: skip
    server, port, server_log = start_web(root, env)
    worker_log = root / "worker.log"
    (root / "run_worker.log").write_text("")
    (root / "interactive_worker.log").write_text("")
    worker = start_worker(env, worker_log, queues="cpu,default", concurrency=1, name=name)
    live = LiveServer(f"http://127.0.0.1:{port}", data_dir, env, server_log, worker_log)
    try:
        wait_until_serving(live, server)
        yield live
    finally:
        stop(worker)
        stop(server)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("live")
    data_dir = root / "data"
    data_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFTLAB_")}
    env.update(
        SFTLAB_DATA_DIR=str(data_dir),
        SFTLAB_DATABASE_URL=f"sqlite:///{data_dir / 'sftlab.db'}",
        SFTLAB_SECRET_KEY="e2e-secret",
        SFTLAB_ADMIN_USER="admin",
        SFTLAB_ADMIN_PASSWORD=ADMIN_PASSWORD,
        SFTLAB_TRAINER_THREADS="1",  # tiny models: a second OpenMP thread only competes with the browser
        PYTHONPATH=str(REPO),
    )
    server, port, server_log = start_web(root, env)
    worker_log = root / "worker.log"
    worker = start_worker(env, worker_log, queues="default", concurrency=2, name="celery")
    # Runs block a worker slot for their whole length, so they get their own worker, as in `make run`.
    run_worker = start_worker(env, root / "run_worker.log", queues="cpu", concurrency=1, name="runs")
    # Short jobs a page waits for (estimates, sample renderings) have a worker of their own, as in `make run`.
    interactive_worker = start_worker(
        env, root / "interactive_worker.log", queues="interactive", concurrency=2, name="interactive"
    )
    live = LiveServer(f"http://127.0.0.1:{port}", data_dir, env, server_log, worker_log)
    try:
        wait_until_serving(live, server)
        yield live
    finally:
        stop(interactive_worker)
        stop(run_worker)
        stop(worker)
        stop(server)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it (apt-get install -y chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@contextmanager
def browser_page(browser, base_url: str, *, locale: str = "en-US") -> Iterator:  # noqa: ANN001
    """A page in a fresh context of the session's Chromium (1366x860, 15 s timeouts); on leaving, the
    context closes and any JavaScript error the page raised fails the test."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1366, "height": 860}, locale=locale)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser, live_server):
    with browser_page(browser, live_server.url) as pg:
        yield pg


def shot(page, name: str, *, full_page: bool = True) -> None:  # noqa: ANN001
    """Saves a screenshot when SFTLAB_SHOTS_DIR is set (used to review the UI and for the README)."""
    folder = os.environ.get("SFTLAB_SHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)


def log_in(page, username: str, password: str, next_path: str = "") -> None:  # noqa: ANN001
    page.goto("/login" + (f"?next={next_path}" if next_path else ""))
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_load_state()


@pytest.fixture
def db_server(settings, tmp_path) -> Iterator[str]:
    """uvicorn alone on the test's own database (no worker: jobs it queues stay queued)."""
    port = free_port()
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the server did not start\n" + log.read_text()[-3000:])
            time.sleep(0.1)
    try:
        yield url
    finally:
        stop(proc)
