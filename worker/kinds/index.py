"""The `index` job kind: a dataset version's search indexes, statistics and near duplicates, in-process.

The build (app.datasets.indexing.build_index) is resumable: a retried or re-run job continues after the
last committed batch. Progress (0..1) and the stage go to the job, written at most twice a second.
"""

from __future__ import annotations

import json
import time
from typing import Any

from app.core.config import Settings, get_settings
from app.core.db import get_engine
from app.datasets import jobs
from app.datasets.indexing import build_index
from worker.kinds import register
from worker.runner import Context, JobKindSpec, execute

PROGRESS_EVERY = 0.5  # seconds between two progress writes


class Index(JobKindSpec):
    kind = "index"
    events_name = None
    uses_directory = False

    def run(self, ctx: Context) -> dict[str, Any]:
        version_id = int(json.loads(ctx.job.params_json)["version_id"])
        last = [0.0]

        def progress(fraction: float, stage: str) -> None:
            now = time.monotonic()
            if now - last[0] < PROGRESS_EVERY and fraction < 1:
                ctx.check()
                return
            last[0] = now
            ctx.progress(round(min(fraction, 0.999), 4), 1.0, stage=stage)

        timings = build_index(version_id=version_id, progress=progress, settings=ctx.settings)
        ctx.progress(1.0, 1.0, stage="")
        return timings


def index_version(*, version_id: int, settings: Settings | None = None) -> None:
    """Give the version an index job and run it here, now (what a worker does with it; tests and the bench
    call this). Nothing happens for a version that does not exist."""
    settings = settings or get_settings()
    job = jobs.index_job(version_id, engine=get_engine(settings))
    if job is not None and job.id is not None:
        execute(job.id, settings=settings)


register(Index())
