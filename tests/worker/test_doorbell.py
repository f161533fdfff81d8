"""The broker is only a doorbell: queued jobs are rung again with a backoff, once per pass however many
processes race, and a job whose message a restarted Redis lost runs exactly once when a worker starts."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlmodel import Session

from app.core.config import get_settings
from app.jobs.lifecycle import requeue
from app.jobs.queue import MAX_RESEND_BACKOFF, enqueue_or_fail, resend_due, resend_queued
from app.models import Job, JobStatus, utcnow
from tests.worker.toy_kind import file_events, get_job, new_toy, stored_events, wait_job

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "sends, after, due",
    [
        (1, 59, False),
        (1, 60, True),
        (2, 119, False),
        (2, 120, True),
        (3, 239, False),
        (3, 240, True),
        (30, MAX_RESEND_BACKOFF - 1, False),  # doubling stops at an hour
        (30, MAX_RESEND_BACKOFF, True),
    ],
)
def test_a_queued_job_is_rung_again_after_a_doubling_wait(sends, after, due):
    job = Job(kind="toy", sent_at=T0, sends=sends)
    assert resend_due(job, T0 + timedelta(seconds=after), 60.0) is due
    # A naive sent_at (as SQLite may give it back) is read as UTC.
    naive = Job(kind="toy", sent_at=T0.replace(tzinfo=None), sends=sends)
    assert resend_due(naive, T0 + timedelta(seconds=after), 60.0) is due


def test_a_job_never_sent_is_due_at_once():
    assert resend_due(Job(kind="toy"), T0, 60.0)


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """Instead of the broker: the ids of the jobs sent, in order."""
    out: list[int] = []
    lock = threading.Lock()

    def send(job, **_):  # noqa: ANN001, ANN003
        with lock:
            out.append(job.id)
        return f"sent-{job.id}"

    monkeypatch.setattr("app.jobs.queue.send", send)
    return out


def queued(engine, *, sent_ago: float | None, sends: int, queue: str = "toy") -> int:
    with Session(engine) as s:
        job_id = new_toy(s, queue=queue)
        job = s.get_one(Job, job_id)
        job.sent_at = None if sent_ago is None else utcnow() - timedelta(seconds=sent_ago)
        job.sends = sends
        s.add(job)
        s.commit()
    return job_id


def test_resend_rings_due_jobs_of_its_queues_and_backs_off(settings, engine, sent):
    due = queued(engine, sent_ago=61, sends=1)
    recent = queued(engine, sent_ago=10, sends=1)
    other = queued(engine, sent_ago=None, sends=0, queue="elsewhere")
    assert resend_queued(engine, queues=["toy"]) == [due] == sent
    job = get_job(engine, due)
    assert job.sends == 2 and utcnow() - job.sent_at < timedelta(seconds=5)
    # Rung a second time just now: its next wait is twice the first, while `recent` waits the first.
    assert resend_queued(engine, queues=["toy"], now=utcnow() + timedelta(seconds=60)) == [recent]
    assert resend_queued(engine, queues=["toy"], now=utcnow() + timedelta(seconds=121)) == [due]
    # A worker that starts rings every queued job of its queues at once; nothing else.
    assert resend_queued(engine, queues=["elsewhere"], force=True) == [other]
    # Finished jobs are never rung.
    with Session(engine) as s:
        s.get_one(Job, other).status = JobStatus.cancelled
        s.commit()
    assert resend_queued(engine, force=True) == [due, recent]
    assert get_job(engine, other).sends == 1


def race_resend(engine, monkeypatch, *, force: bool, settings=None) -> list[list[int]]:
    """Two passes that have both read the queued jobs before either rings one."""
    barrier = threading.Barrier(2)

    class ReadThenWait(Session):
        def __exit__(self, *exc):  # noqa: ANN002
            super().__exit__(*exc)
            barrier.wait(timeout=10)

    monkeypatch.setattr("app.jobs.queue.Session", ReadThenWait)
    results: list[list[int]] = [[], []]

    def one(i: int) -> None:
        results[i] = resend_queued(engine, settings=settings, force=force)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    return results


@pytest.mark.parametrize("force", [False, True], ids=["reaper-pass", "worker-start"])
def test_racing_resends_ring_each_job_once(settings, engine, sent, monkeypatch, force):
    jobs = [queued(engine, sent_ago=61, sends=1) for _ in range(5)]
    first, second = race_resend(engine, monkeypatch, force=force)
    assert sorted(first + second) == sorted(sent) == jobs
    assert [get_job(engine, j).sends for j in jobs] == [2] * 5


@pytest.mark.postgres
def test_racing_resends_ring_each_job_once_on_postgresql(pg, sent, monkeypatch):
    engine, settings = pg
    jobs = [queued(engine, sent_ago=61, sends=1) for _ in range(5)]
    first, second = race_resend(engine, monkeypatch, force=True, settings=settings)
    assert sorted(first + second) == sorted(sent) == jobs
    assert [get_job(engine, j).sends for j in jobs] == [2] * 5


@pytest.mark.slow
@pytest.mark.redis
def test_a_job_whose_message_a_restarted_redis_lost_runs_once_when_a_worker_starts(
    toy, engine, redis_server, workers, monkeypatch
):
    monkeypatch.setenv("SFTLAB_BROKER_URL", redis_server.url)
    get_settings.cache_clear()
    with Session(engine) as s:
        job_id = new_toy(s, queue="bell", n=3, delay=0.05)
        assert enqueue_or_fail(s, s.get_one(Job, job_id)) == ""
    broker = redis.Redis.from_url(redis_server.url)
    assert broker.llen("bell") == 1
    # Redis without persistence, killed and started again on the same port: the message is gone.
    redis_server.kill()
    redis_server.start()
    broker = redis.Redis.from_url(redis_server.url)
    assert broker.llen("bell") == 0
    assert (get_job(engine, job_id).status, get_job(engine, job_id).sends) == (JobStatus.queued, 1)
    # A worker that starts rings again for the queued jobs of its queues.
    workers.start("bell", redis_server.url)
    job = wait_job(engine, job_id, "its end", lambda j: j.finished, timeout=30, context=workers.logs)
    assert job.status == JobStatus.succeeded, job.error
    assert job.sends == 2
    lines = file_events(job)
    assert len(lines) == 4 and stored_events(engine, job_id) == list(enumerate(lines))
    log = open(job.log_file).read()
    assert log.count("$ ") == 1 and log.count("toy: finished") == 1  # one subprocess, once
    assert workers.log(1).count(f"jobs.run[{job.task_id}] received") == 1


def test_a_requeued_job_is_rung_again_as_soon_as_a_new_one(settings, engine, sent):
    # A run that waited an hour in the queue was rung several times, then ran and failed.
    job_id = queued(engine, sent_ago=7200, sends=7)
    with Session(engine) as s:
        job = s.get_one(Job, job_id)
        job.status = JobStatus.failed
        s.add(job)
        s.commit()
        # Resumed: queued and sent again; if that message is lost, it is rung after the first wait.
        assert requeue(s, job)
        s.commit()
        assert enqueue_or_fail(s, s.get_one(Job, job_id)) == ""
    assert get_job(engine, job_id).sends == 1
    assert resend_queued(engine, now=utcnow() + timedelta(seconds=61)) == [job_id]
