"""Celery tasks: thin wrappers that call plain functions in app/, which tests call directly."""

from worker.celery_app import celery_app


@celery_app.task(name="datasets.import_upload")
def import_upload(job_id: int) -> None:
    from app.datasets.importer import run_import

    run_import(job_id=job_id)


@celery_app.task(name="datasets.index_version")
def index_version(version_id: int) -> None:
    from app.datasets.indexing import index_version as build

    build(version_id=version_id)
