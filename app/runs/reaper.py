"""Marks runs whose worker stopped heartbeating as lost, and kills what is left of them on this host.

A worker killed outright (SIGKILL, OOM, the machine) cannot record its own end; its run would stay
"running" forever. Every web server and every worker process runs `reap()` in a daemon thread every
reaper_interval seconds; several reapers at once are safe because the change is a conditional UPDATE.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import psutil
from sqlalchemy import update
from sqlmodel import Session, col, select

from app.core.config import Settings, get_settings
from app.core.db import get_engine
from app.models import Run, RunStatus, utcnow
from app.runs.executor import run_processes
from app.runs.rundir import LOG_FILE, RUN_JSON, log_tail

log = logging.getLogger("sftlab.runs")


def reap(now: datetime | None = None, *, settings: Settings | None = None) -> list[int]:
    """One pass: running runs silent for longer than heartbeat_timeout become lost; returns their ids."""
    settings = settings or get_settings()
    engine = get_engine(settings)
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.heartbeat_timeout)
    with Session(engine) as session:
        stale = session.exec(
            select(Run).where(Run.status == RunStatus.running, col(Run.heartbeat_at) < cutoff)
        ).all()
    lost = []
    for run in stale:
        beat = run.heartbeat_at
        error = (
            f"worker {run.worker or '?'} stopped heartbeating at {beat:%Y-%m-%d %H:%M:%S} UTC" if beat else ""
        )
        tail = log_tail(Path(run.run_dir) / LOG_FILE) if run.run_dir else ""
        with engine.begin() as conn:
            # Guarded again: a worker that beat since the SELECT keeps its run.
            moved = conn.execute(
                update(Run)
                .where(
                    col(Run.id) == run.id,
                    col(Run.status) == RunStatus.running,
                    col(Run.heartbeat_at) < cutoff,
                )
                .values(status=RunStatus.lost, error=error, log_tail=tail, finished_at=now)
            )
        if moved.rowcount != 1:
            continue
        assert run.id is not None
        lost.append(run.id)
        log.warning("run %s lost: %s", run.id, error)
        if run.pid and run.run_dir and run.worker == socket.gethostname():
            _kill_leftovers(run.pid, str(Path(run.run_dir) / RUN_JSON))
    return lost


def _kill_leftovers(pgid: int, marker: str) -> None:
    # Only when one of them still names this run's run.json: after a reboot the group id may be reused.
    procs = run_processes(pgid, marker)
    ours = False
    for p in procs:
        with contextlib.suppress(psutil.Error):
            ours = ours or marker in p.cmdline()
    if not ours:
        return
    log.warning("killing %d leftover process(es) of group %s", len(procs), pgid)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.send_signal(signal.SIGKILL)


def start_reaper(settings: Settings, *, immediate: bool = False) -> Callable[[], None] | None:
    """Run reap() every reaper_interval seconds in a daemon thread; returns a stop function (None if off).

    The thread keeps the settings it was started with, so a server started by a test never reaps
    another test's database. `immediate`: a first pass at once (a worker starting after a crash).
    """
    if settings.reaper_interval <= 0:
        return None
    stop = threading.Event()

    def loop() -> None:
        if immediate:
            _pass(settings)
        while not stop.wait(settings.reaper_interval):
            _pass(settings)

    thread = threading.Thread(target=loop, name="sftlab-reaper", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=10)

    return halt


def _pass(settings: Settings) -> None:
    try:
        reap(settings=settings)
    except Exception:  # noqa: BLE001 - a database hiccup must not end the thread
        log.exception("reaper pass failed")
