"""Celery tasks: `jobs.run`, the one task every job kind is sent as, and the worker's start and stop.

The web server sends tasks by name (app.jobs.queue); the body is worker.runner.execute, which tests call
directly.
"""

import logging
import socket
from typing import Any

from celery.signals import worker_ready, worker_shutting_down

from worker.celery_app import celery_app
from worker.reaper import Presence

# This worker's node name and queues in WorkerPresence, refreshed by its reaper thread.
PRESENCE = Presence()


@celery_app.task(name="jobs.run", bind=True)
def run_job(self: Any, job_id: int) -> None:
    from worker.runner import execute

    execute(job_id, task_id=self.request.id or "")


@worker_ready.connect
def on_start(sender: Any = None, **_: Any) -> None:
    """Every worker records its queues and GPUs, reaps, and rings again for the queued jobs of its queues:
    a worker started after a crash, or after the broker lost its messages, finds that work at once."""
    from app.core.config import get_settings
    from app.core.db import get_engine
    from app.jobs.queue import resend_queued
    from worker.devices import worker_gpus
    from worker.reaper import start

    settings = get_settings()
    task_consumer = getattr(sender, "task_consumer", None)  # the sender is the worker's consumer
    queues = [q.name for q in task_consumer.queues] if task_consumer is not None else None
    name = str(getattr(sender, "hostname", "") or socket.gethostname())
    gpus = [gpu.name for gpu in worker_gpus(settings)]
    PRESENCE.announce(get_engine(settings), name=name, queues=queues or [], gpus=gpus)
    start(settings, presence=PRESENCE)
    resend_queued(get_engine(settings), settings=settings, queues=queues, force=True)


@worker_shutting_down.connect
def stop_jobs(**_: Any) -> None:
    """Stop running subprocesses (runs end failed, resumable) rather than wait hours for a warm shutdown."""
    from app.core.config import get_settings
    from app.core.db import get_engine
    from worker.runner import SHUTDOWN

    SHUTDOWN.set()
    try:
        PRESENCE.leave(get_engine(get_settings()))
    except Exception:  # noqa: BLE001 - the row then ages out
        logging.getLogger("sftlab.jobs").warning("could not remove this worker's presence")
