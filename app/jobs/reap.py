"""Finding jobs whose worker died: the database half of the reaper, and the thread that runs it.

A worker killed outright (SIGKILL, OOM, the machine) cannot record its own end; its job would stay
"running" forever. The web server and every worker run a pass every reaper_interval seconds in a daemon
thread: running jobs silent for longer than heartbeat_timeout become lost (with the reason and the log's
tail), and queued jobs whose message may be lost are sent again. Killing what is left of a lost job needs
its host's processes, so that half lives with the worker (worker.reaper).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.core.db import get_engine
from app.jobs.logs import read_tail
from app.jobs.queue import resend_queued
from app.models import Job, JobStatus, utcnow

log = logging.getLogger("sftlab.jobs")


def mark_lost(engine: Engine, *, settings: Settings, now: datetime | None = None) -> list[Job]:
    """Running jobs silent for longer than heartbeat_timeout become lost; returns them (as they were)."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.heartbeat_timeout)
    with Session(engine, expire_on_commit=False) as session:
        stale = session.exec(
            select(Job).where(Job.status == JobStatus.running, col(Job.heartbeat_at) < cutoff)
        ).all()
    lost = []
    for job in stale:
        beat = job.heartbeat_at
        error = (
            f"worker {job.worker or '?'} stopped heartbeating at {beat:%Y-%m-%d %H:%M:%S} UTC" if beat else ""
        )
        tail = read_tail(Path(job.log_file)) if job.log_file else ""
        with engine.begin() as conn:
            # Guarded again: a worker that beat since the SELECT keeps its job.
            moved = conn.execute(
                update(Job)
                .where(
                    col(Job.id) == job.id,
                    col(Job.status) == JobStatus.running,
                    col(Job.heartbeat_at) < cutoff,
                )
                .values(status=JobStatus.lost, error=error, log_tail=tail, finished_at=now)
            )
        if moved.rowcount == 1:
            log.warning("job %s lost: %s", job.id, error)
            lost.append(job)
    return lost


def server_pass(settings: Settings) -> None:
    """The web server's pass: mark lost jobs and ring the doorbell for forgotten queued ones."""
    engine = get_engine(settings)
    mark_lost(engine, settings=settings)
    resend_queued(engine, settings=settings)


def start_reaper(
    settings: Settings, one_pass: Callable[[Settings], None] = server_pass, *, immediate: bool = False
) -> Callable[[], None] | None:
    """Run `one_pass` every reaper_interval seconds in a daemon thread; returns a stop function (None if off).

    The thread keeps the settings it was started with, so a server started by a test never reaps another
    test's database. `immediate`: a first pass at once (a worker starting after a crash).
    """
    if settings.reaper_interval <= 0:
        return None
    stop = threading.Event()

    def guarded() -> None:
        try:
            one_pass(settings)
        except Exception:  # noqa: BLE001 - a database hiccup must not end the thread
            log.exception("reaper pass failed")

    def loop() -> None:
        if immediate:
            guarded()
        while not stop.wait(settings.reaper_interval):
            guarded()

    thread = threading.Thread(target=loop, name="sftlab-reaper", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=10)

    return halt
