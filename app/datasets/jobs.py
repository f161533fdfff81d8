"""Enqueueing background work; the one place app/ talks to Celery."""


def enqueue_import(job_id: int) -> None:
    from worker.tasks import import_upload

    import_upload.delay(job_id)


def enqueue_index(version_id: int) -> None:
    from worker.tasks import index_version

    index_version.delay(version_id)
