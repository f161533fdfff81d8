"""The Celery application shared by the web server (to enqueue) and the worker.

The embedded default is kombu's SQLAlchemy transport on a SQLite file, so
`make run` needs no server; `SFTLAB_BROKER_URL=redis://...` switches to Redis.
Tasks are acknowledged late so a worker that dies mid-task does not lose it.
"""

from celery import Celery

from app.core.config import get_settings


def make_celery() -> Celery:
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    celery = Celery(
        "sftlab", broker=settings.celery_broker, backend=settings.celery_backend, include=["worker.tasks"]
    )
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        broker_connection_retry_on_startup=True,
        task_default_queue="default",
    )
    return celery


celery_app = make_celery()
