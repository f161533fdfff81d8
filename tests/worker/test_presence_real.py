"""A real worker records the queues it serves when it starts and removes itself when it stops, so the pages
can tell a queue nobody serves."""

import time

from sqlmodel import Session

from app.jobs.workers import served_queues
from tests.processes import stop


def served(engine) -> dict[str, list[str]]:
    with Session(engine) as s:
        return served_queues(s)


def test_a_worker_announces_its_queues_and_leaves(engine, workers, settings):
    proc = workers.start("presence-q")
    deadline = time.monotonic() + 60
    while "presence-q" not in served(engine) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert served(engine).get("presence-q", [""])[0].startswith("toy1@"), workers.logs()
    stop(proc)  # a warm shutdown
    assert "presence-q" not in served(engine), workers.logs()
