"""Celery tasks: thin wrappers that call plain functions in app/, which tests call directly."""

from typing import Any

from celery.signals import worker_ready, worker_shutting_down

from worker.celery_app import celery_app


@celery_app.task(name="datasets.import_upload")
def import_upload(job_id: int) -> None:
    from app.datasets.import_job import run_import

    run_import(job_id=job_id)


@celery_app.task(name="datasets.index_version")
def index_version(version_id: int) -> None:
    from app.datasets.indexing import index_version as build

    build(version_id=version_id)


@celery_app.task(name="runs.execute", bind=True)
def execute_run(self: Any, run_id: int) -> None:
    from app.runs.executor import execute

    execute(run_id, task_id=self.request.id or "")


@worker_ready.connect
def start_reaper(**_: Any) -> None:
    """Every worker reaps: a worker started after a crash finds the crashed worker's runs at once."""
    from app.core.config import get_settings
    from app.runs.reaper import start_reaper as start

    start(get_settings(), immediate=True)


@worker_shutting_down.connect
def stop_runs(**_: Any) -> None:
    """Stop running trainers (the runs end failed, resumable) rather than wait hours for a warm shutdown."""
    from app.runs.executor import SHUTDOWN

    SHUTDOWN.set()
