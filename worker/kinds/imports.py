"""The `import` job kind: an upload into a dataset version, in-process (the parsing runs in a child process
of its own, app.datasets.parsing). A rejected import (bad lines under the import-nothing policy) fails with
the reason; a validation-only one succeeds with its report."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from app.core.db import get_engine
from app.datasets.import_job import run_import
from app.models import ImportJob
from worker.kinds import register
from worker.runner import Context, JobFailed, JobKindSpec, execute


class Import(JobKindSpec):
    kind = "import"
    events_name = None
    uses_directory = False

    def run(self, ctx: Context) -> dict[str, Any]:
        with Session(ctx.engine) as session:
            import_job_id = session.exec(select(ImportJob.id).where(ImportJob.job_id == ctx.job_id)).one()
        assert import_job_id is not None
        result = run_import(job_id=import_job_id, settings=ctx.settings, check=lambda: ctx.check(beat=False))
        if result.status == "rejected":
            raise JobFailed(str(result.report.get("rejected") or "the import was rejected"))
        return {"outcome": result.status, "n_ok": result.n_ok, "n_bad": result.n_bad}


def run_import_job(import_job_id: int) -> bool:
    """Run an import job here, now, as a worker would (False when it was not queued: nothing done)."""
    with Session(get_engine()) as session:
        job_id = session.get_one(ImportJob, import_job_id).job_id
    return execute(job_id)


register(Import())
