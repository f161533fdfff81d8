"""A queue that no live worker serves is said so on the launch form and on a queued run's page, instead of
"0 run(s) ahead" forever; a worker's presence comes and goes with its heartbeat."""

from datetime import timedelta

from sqlmodel import Session

from app.core.config import get_settings
from app.jobs.workers import forget, record, served_queues
from app.models import RunStatus, WorkerPresence, utcnow
from tests.runs.fake_runs import insert_run


def test_served_queues_follow_live_workers(engine, settings):
    record(engine, name="runs@a", hostname="a", queues=["cpu"])
    record(engine, name="gpu@b", hostname="b", queues=["gpu-8", "default"])
    with Session(engine) as s:
        assert served_queues(s) == {"cpu": ["runs@a"], "gpu-8": ["gpu@b"], "default": ["gpu@b"]}
        stale = s.get(WorkerPresence, "gpu@b")
        stale.seen_at = utcnow() - timedelta(seconds=get_settings().heartbeat_timeout + 60)
        s.add(stale)
        s.commit()
        assert served_queues(s) == {"cpu": ["runs@a"]}
    forget(engine, name="runs@a")
    with Session(engine) as s:
        assert served_queues(s) == {}


def test_the_run_page_and_the_form_say_when_no_worker_serves_the_queue(engine, researcher):
    with Session(engine) as s:
        run = insert_run(s, owner_id=researcher.user.id, name="waiting", status=RunStatus.queued, queue="cpu")
    page = researcher.get(f"/runs/{run.id}")
    assert 'id="run-unserved"' in page.text and "-Q cpu" in page.text and 'id="run-ahead"' not in page.text
    form = researcher.get("/runs/new")
    assert 'id="queue-unserved"' in form.text
    record(engine, name="runs@a", hostname="a", queues=["cpu"])
    page = researcher.get(f"/runs/{run.id}")
    assert 'id="run-unserved"' not in page.text and 'id="run-ahead"' in page.text
    assert 'id="queue-unserved"' not in researcher.get("/runs/new").text
