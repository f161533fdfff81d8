"""The launch form's version picker: failed versions are filtered in SQL, in a fixed number of queries."""

from sqlalchemy import event
from sqlmodel import Session, select

from app.models import Dataset, DatasetVersion, Job, JobKind, JobStatus, Role, User
from app.runs.pickers import dataset_choices
from tests.runs.conftest import import_pclue


def _index_job_status(engine, dataset_id: int, status: JobStatus) -> None:
    """Give the dataset's version an index job that ended (or stands) with `status`."""
    with Session(engine) as s:
        version = s.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id)).one()
        job = Job(kind=JobKind.indexing, status=status)
        s.add(job)
        s.flush()
        version.index_job_id = job.id
        s.add(version)
        s.commit()


def _choices_and_queries(engine) -> tuple[list[dict], list[str]]:
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with Session(engine) as s:
            choices = dataset_choices(s)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return choices, statements


def test_versions_whose_index_job_failed_are_not_offered(engine, make_user, no_indexing):
    owner = make_user(Role.researcher, "owner")
    ready, failed, cancelled, indexing = (import_pclue(owner.id, name=n).dataset_id for n in "abcd")
    _index_job_status(engine, ready, JobStatus.succeeded)
    _index_job_status(engine, failed, JobStatus.failed)
    _index_job_status(engine, cancelled, JobStatus.cancelled)
    _index_job_status(engine, indexing, JobStatus.running)
    choices, statements = _choices_and_queries(engine)
    assert [d["id"] for d in choices] == [ready, indexing]
    assert all([v["number"] for v in d["versions"]] == [1] for d in choices)
    # filtered by the database, not after loading every version with its job
    versions = next(q for q in statements if "FROM datasetversion" in q)
    assert "job.status NOT IN" in versions


def test_the_picker_reads_versions_in_one_query_whatever_their_number(engine, make_user, no_indexing):
    owner = make_user(Role.researcher, "owner")
    import_pclue(owner.id, name="first")
    _, few = _choices_and_queries(engine)
    for name in ("second", "third", "fourth"):
        import_pclue(owner.id, name=name)
    choices, many = _choices_and_queries(engine)
    assert len(choices) == 4 and len(many) == len(few) == 2  # the datasets, then their usable versions


def test_the_failed_version_filter_runs_on_postgresql(pg):
    """PostgreSQL keeps job.status as an enum: the NOT IN must compare with its labels."""
    engine, _ = pg
    with Session(engine) as s:
        owner = User(username="pg", password_hash="x", role=Role.researcher)
        s.add(owner)
        s.flush()
        ds = Dataset(name="d", owner_id=owner.id)
        s.add(ds)
        s.flush()
        for number, status in ((1, JobStatus.succeeded), (2, JobStatus.failed), (3, None)):
            job = Job(kind=JobKind.indexing, status=status) if status else None
            if job:
                s.add(job)
                s.flush()
            s.add(
                DatasetVersion(
                    dataset_id=ds.id, number=number, created_by=owner.id, index_job_id=job.id if job else None
                )
            )
        s.commit()
        (choice,) = dataset_choices(s)
    assert [v["number"] for v in choice["versions"]] == [3, 1]
