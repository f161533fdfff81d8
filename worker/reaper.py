"""The worker's reaper pass: the database half (app.jobs.reap) plus killing what is left of lost jobs on
this host, which only a process on that host can do."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine

from app.core.config import Settings, get_settings
from app.core.db import get_engine
from app.jobs.queue import resend_queued
from app.jobs.reap import mark_lost, start_reaper
from app.jobs.workers import forget, record
from worker.processes import kill_leftovers

log = logging.getLogger("sftlab.jobs")


def reap(now: datetime | None = None, *, settings: Settings | None = None) -> list[int]:
    """Running jobs silent for longer than heartbeat_timeout become lost, and what is left of them on this
    host is killed; returns their ids."""
    settings = settings or get_settings()
    lost = mark_lost(get_engine(settings), settings=settings, now=now)
    for job in lost:
        if job.pid and job.marker and job.worker == socket.gethostname():
            if n := kill_leftovers(job.pid, job.marker):
                log.warning("job %s: killed %d leftover process(es) of group %s", job.id, n, job.pid)
    return [job.id for job in lost if job.id is not None]


class Presence:
    """This worker's row in WorkerPresence: written at start (with its GPUs) and on every pass, removed at
    shutdown (under a lock, so a pass running during the shutdown cannot write it back)."""

    def __init__(self) -> None:
        self.name = ""
        self.queues: list[str] = []
        self._lock = threading.Lock()

    def announce(
        self, engine: Engine, *, name: str, queues: list[str], gpus: list[str] | None = None
    ) -> None:
        with self._lock:
            self.name, self.queues = name, queues
            record(engine, name=name, hostname=socket.gethostname(), queues=queues, gpus=gpus or [])

    def beat(self, engine: Engine) -> None:
        with self._lock:
            if self.name:
                record(engine, name=self.name, hostname=socket.gethostname(), queues=self.queues)

    def leave(self, engine: Engine) -> None:
        with self._lock:
            name, self.name = self.name, ""
            if name:
                forget(engine, name=name)


def worker_pass(settings: Settings, presence: Presence | None = None) -> None:
    """Record this worker as alive (with its queues), reap, and ring for forgotten queued jobs."""
    engine = get_engine(settings)
    if presence is not None:
        presence.beat(engine)
    reap(settings=settings)
    resend_queued(engine, settings=settings)


def start(settings: Settings, *, presence: Presence | None = None) -> Callable[[], None] | None:
    """The worker's reaper thread, with a first pass at once: a worker started after a crash finds the
    crashed worker's jobs without waiting, and the pages know at once which queues it serves."""
    return start_reaper(settings, lambda s: worker_pass(s, presence), immediate=True)
