"""A real uvicorn pushes newly stored events to 20 open live streams at once, while /healthz and database-backed requests keep answering.

Runs on SQLite and, where SFTLAB_TEST_POSTGRES_URL is set, on a fresh PostgreSQL database.
"""

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import Session, select

from app.core.db import make_engine
from app.models import Run, RunStatus, User
from tests.real_server import real_server
from tests.runs.fake_runs import add_events, make_run, synthetic_events

PASSWORD = "live stream admin password"
STREAMS = 20
TIMEOUT = 20.0  # a liveness bound, not a speed check: a blocked loop or an exhausted pool never answers


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request, tmp_path) -> Iterator[tuple[str, str]]:
    # Fewer request slots than open streams: a stream gives its slot back once its route returns.
    env = {"SFTLAB_DB_POOL_SIZE": "4", "SFTLAB_LIVE_STREAMS": str(STREAMS + 4)}
    with real_server(tmp_path, request.param, PASSWORD, **env) as srv:
        yield srv.base, srv.database_url


class Reader(threading.Thread):
    """One browser tab: a single GET of the stream, its messages recorded as they arrive."""

    def __init__(self, base: str, cookies: dict, path: str) -> None:
        super().__init__(daemon=True)
        self.base, self.cookies, self.path = base, cookies, path
        self.opened = threading.Event()
        self.seqs: list[int] = []
        self.finished = threading.Event()
        self.requests: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        hooks = {"request": [lambda r: self.requests.append(str(r.url))]}
        try:
            with httpx.Client(
                base_url=self.base, cookies=self.cookies, timeout=TIMEOUT, event_hooks=hooks
            ) as c:
                with c.stream("GET", self.path) as r:
                    assert r.status_code == 200, r.status_code
                    for line in r.iter_lines():
                        if line.startswith("retry:"):
                            self.opened.set()
                        elif line.startswith("id: "):
                            self.seqs.append(int(line[4:]))
                        elif line == "event: finished":
                            self.finished.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def _wait(events: list[threading.Event]) -> bool:
    deadline = time.monotonic() + TIMEOUT
    return all(e.wait(max(0.0, deadline - time.monotonic())) for e in events)


@pytest.mark.slow
def test_events_are_pushed_to_20_streams_and_the_server_stays_responsive(server):
    base, url = server
    engine = make_engine(url)
    events = synthetic_events(20, done=False)
    with Session(engine) as session:
        owner = session.exec(select(User)).first()
        run_id = make_run(session, owner.id, status=RunStatus.running, events=events[:5]).id
    with httpx.Client(base_url=base, timeout=TIMEOUT) as c:
        assert c.post("/login", data={"username": "admin", "password": PASSWORD}).status_code == 303
        cookies = dict(c.cookies)

    readers = [Reader(base, cookies, f"/api/runs/{run_id}/stream?after=4") for _ in range(STREAMS)]
    for r in readers:
        r.start()
    try:
        assert _wait([r.opened for r in readers]), [r.error for r in readers if r.error]
        with httpx.Client(base_url=base, cookies=cookies, timeout=TIMEOUT) as c:
            # With every stream open: the loop answers, and requests still get a connection from the pool.
            assert c.get("/healthz").status_code == 200
            assert c.get(f"/api/runs/{run_id}").json()["events_seq"] == 5
            assert c.get(f"/api/runs/{run_id}/series").status_code == 200
        with Session(engine) as session:
            add_events(session, session.get_one(Run, run_id), events[5:15])
        deadline = time.monotonic() + TIMEOUT
        while not all(r.seqs for r in readers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.seqs for r in readers] == [[14]] * STREAMS
        # Pushed: each reader made its one stream request and never polled.
        assert all(r.requests == [f"{base}/api/runs/{run_id}/stream?after=4"] for r in readers)
        with Session(engine) as session:
            job = session.get_one(Run, run_id).job
            job.status = RunStatus.succeeded
            session.add(job)
            session.commit()
        assert _wait([r.finished for r in readers])
    finally:
        for r in readers:
            r.join(TIMEOUT)
        engine.dispose()
    assert not [r.error for r in readers if r.error]
    # Every finished stream gave its slot back: as many again open (and end at once, the run is over).
    with httpx.Client(base_url=base, cookies=cookies, timeout=TIMEOUT) as c:
        codes = [c.get(f"/api/runs/{run_id}/stream?after=14").status_code for _ in range(STREAMS + 4)]
    assert codes == [200] * (STREAMS + 4)
