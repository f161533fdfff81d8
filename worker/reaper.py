"""The worker's reaper pass: the database half (app.jobs.reap) plus killing what is left of lost jobs on
this host, which only a process on that host can do."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import datetime

from app.core.config import Settings, get_settings
from app.core.db import get_engine
from app.jobs.queue import resend_queued
from app.jobs.reap import mark_lost, start_reaper
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


def worker_pass(settings: Settings) -> None:
    reap(settings=settings)
    resend_queued(get_engine(settings), settings=settings)


def start(settings: Settings) -> Callable[[], None] | None:
    """The worker's reaper thread, with a first pass at once: a worker started after a crash finds the
    crashed worker's jobs without waiting."""
    return start_reaper(settings, worker_pass, immediate=True)
