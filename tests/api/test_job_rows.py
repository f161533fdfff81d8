"""A job's row is built once: the list, the job page and GET /api/jobs/{id} share it, in one query."""

from sqlalchemy import event
from sqlmodel import Session

from app.jobs.listing import job_detail, job_view, list_jobs
from app.models import Job
from tests.runs.fake_runs import insert_run


def test_job_page_reads_its_row_in_one_query_and_agrees_with_the_list(engine, researcher):
    with Session(engine) as session:
        run = insert_run(session, owner_id=researcher.user.id, name="train me", progress_total=200)
        job_id = run.job_id
        (listed,) = (r for r in list_jobs(session) if r.id == job_id)
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        statements.append(statement)

    with Session(engine) as session:
        job = session.get_one(Job, job_id)
        event.listen(engine, "before_cursor_execute", count)
        try:
            view = job_view(session, job)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        detail = job_detail(view)
    assert len(statements) == 1  # owner, run, import and version come joined, as in the list
    for name in type(listed).model_fields:
        if name not in ("age_s", "duration_s"):  # measured against a later "now"
            assert getattr(detail, name) == getattr(listed, name), name
    assert view.link == f"/runs/{run.id}" and view.owner == researcher.user.username
    api = researcher.get(f"/api/jobs/{job_id}").json()
    assert api["link"] == listed.link and api["progress_text"] == listed.progress_text
