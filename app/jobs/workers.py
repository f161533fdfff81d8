"""Which queues live workers serve, and with how many GPUs: every worker records itself when it starts and on
every reaper pass (WorkerPresence), so a job waiting on a queue nobody serves says so instead of "0 ahead"
forever, and a launch asking more GPUs than a queue's workers have is refused before it waits forever."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.core.config import Settings, get_settings
from app.models import WorkerPresence, utcnow


def alive_after(settings: Settings, now: datetime | None = None) -> datetime:
    """A worker seen after this is alive: a few reaper passes, and never less than a heartbeat timeout."""
    window = max(3 * settings.reaper_interval, settings.heartbeat_timeout)
    return (now or utcnow()) - timedelta(seconds=window)


def record(
    engine: Engine, *, name: str, hostname: str, queues: list[str], gpus: list[str] | None = None
) -> None:
    """Insert or refresh this worker's row; `gpus`: the names of the GPUs it may use (None: unchanged)."""
    with Session(engine) as session:
        row = session.get(WorkerPresence, name)
        if row is None:
            row = WorkerPresence(name=name, hostname=hostname)
        row.queues, row.seen_at = ",".join(queues), utcnow()
        if gpus is not None:
            row.gpu_count, row.gpu_names = len(gpus), ",".join(n.replace(",", " ") for n in gpus)[:2000]
        session.add(row)
        session.commit()


def forget(engine: Engine, *, name: str) -> None:
    """A worker shutting down cleanly is gone at once."""
    with engine.begin() as conn:
        conn.execute(delete(WorkerPresence).where(col(WorkerPresence.name) == name))


def served_queues(session: Session, settings: Settings | None = None) -> dict[str, list[str]]:
    """Queue -> names of the live workers that serve it."""
    cutoff = alive_after(settings or get_settings())
    rows = session.exec(select(WorkerPresence).where(col(WorkerPresence.seen_at) > cutoff)).all()
    out: dict[str, list[str]] = {}
    for row in rows:
        for queue in filter(None, row.queues.split(",")):
            out.setdefault(queue, []).append(row.name)
    return out


def queue_gpu_counts(session: Session, queue: str, settings: Settings | None = None) -> list[int]:
    """The GPU counts the live workers of `queue` reported; [] when none is alive (or none reported yet)."""
    cutoff = alive_after(settings or get_settings())
    rows = session.exec(select(WorkerPresence).where(col(WorkerPresence.seen_at) > cutoff)).all()
    return [row.gpu_count for row in rows if queue in row.queues.split(",")]
