"""The jobs list and one job's view: every kind of background work, where it stands and what it produced.

As for runs (app.runs.listing), filters and the sort run in SQL before the LIMIT, and a row reads only
the columns it shows: a job's log tail, params and result can be long, and estimates and sample
renderings add a job per click.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import String, case, cast, func, literal
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from app.jobs.logs import read_tail
from app.models import (
    FINISHED,
    DatasetVersion,
    ImportJob,
    Job,
    JobKind,
    JobStatus,
    JudgeJob,
    Run,
    SamplingJob,
    User,
    utcnow,
)

SORTS = ("created", "age", "status", "kind", "duration")
LIMIT = 500
LOG_LINES = 200

# What a row shows: not the job's log tail, params, result or error.
COLUMNS: tuple[Any, ...] = (
    Job.id,
    Job.kind,
    Job.title,
    Job.status,
    Job.queue,
    Job.owner_id,
    User.username,
    Job.progress_done,
    Job.progress_total,
    Job.progress_unit,
    Job.stage,
    Job.cancel_requested,
    Job.created_at,
    Job.started_at,
    Job.finished_at,
    col(Run.id).label("run_id"),
    col(ImportJob.id).label("import_id"),
    col(DatasetVersion.dataset_id).label("dataset_id"),
    col(DatasetVersion.number).label("version"),
    col(SamplingJob.id).label("sampling_id"),
    col(JudgeJob.id).label("judge_job_id"),
)


@dataclass
class JobFilter:
    kind: str = ""
    status: str = ""
    queue: str = ""
    owner: str = ""  # username
    sort: str = "created"
    desc: bool = True


# One row of the jobs list, as the page and GET /api/jobs show it.
class JobRow(BaseModel):
    id: int
    kind: str
    title: str
    status: str
    queue: str
    owner: str
    owner_id: int | None
    stage: str
    progress_done: float
    progress_total: float  # 0: unknown
    progress_unit: str
    progress_text: str  # "37 / 200 steps"
    fraction: float  # 0..1
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    age_s: float  # since it was created
    duration_s: float | None  # start to finish, to now while running
    link: str | None  # what it produced: /runs/<id> for a train job


# One job with its outcome and log, as GET /api/jobs/{id} shows it.
class JobDetail(JobRow):
    worker: str
    heartbeat_at: datetime | None
    exit_code: int | None
    error: str
    log_tail: str
    result: Any  # result_json parsed; None when empty or unreadable


# What a cancel request left behind.
class JobCancelled(BaseModel):
    id: int
    status: str
    cancel_requested: bool


def as_utc(t: datetime | None) -> datetime | None:
    # SQLite hands datetimes back naive; they were stored in UTC.
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def duration_sql(dialect: str, now: datetime) -> ColumnElement:
    """Seconds from start to finish (to `now` while not finished) as SQL; NULL where duration_s is None.

    Date arithmetic differs: SQLite subtracts julian days, PostgreSQL extracts the interval's seconds.
    """
    end = func.coalesce(col(Job.finished_at), literal(now, type_=Job.__table__.c.finished_at.type))  # type: ignore[attr-defined]
    if dialect == "sqlite":
        seconds = (func.julianday(end) - func.julianday(col(Job.started_at))) * 86400.0
    else:
        seconds = func.extract("epoch", end - col(Job.started_at))
    # A finished job without finished_at has no duration (as in duration_s), not one up to now.
    return case(
        (col(Job.started_at).is_(None), None),
        (col(Job.finished_at).is_(None) & col(Job.status).in_(list(FINISHED)), None),
        else_=seconds,
    )


def duration_s(
    status: Any, started: datetime | None, finished: datetime | None, now: datetime
) -> float | None:
    """duration_sql on loaded columns, with the same `now`."""
    start, end = as_utc(started), as_utc(finished)
    if start is None:
        return None
    end = end or (None if status in FINISHED else now)
    return max(0.0, (end - start).total_seconds()) if end else None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def progress_text(done: float, total: float, unit: str) -> str:
    """ "37 / 200 steps", "37 steps" while the total is unknown, "" before anything was counted."""
    if total > 0:
        text = f"{_num(done)} / {_num(total)}"
    elif done > 0:
        text = _num(done)
    else:
        return ""
    return f"{text} {unit}".rstrip()


def fraction(status: Any, done: float, total: float) -> float:
    """Job.fraction on loaded columns: 0..1, 0 while the total is unknown (1 once succeeded)."""
    if total <= 0:
        return 1.0 if status == JobStatus.succeeded else 0.0
    return max(0.0, min(1.0, done / total))


@dataclass
class Produced:
    """What a job works on, by kind: a run, an import, a dataset version, a sampling job, a judge job."""

    run_id: int | None = None
    import_id: int | None = None
    dataset_id: int | None = None
    version: int | None = None
    sampling_id: int | None = None
    judge_job_id: int | None = None

    def link(self, kind: str) -> str | None:
        """Where it is shown."""
        if kind == JobKind.train and self.run_id is not None:
            return f"/runs/{self.run_id}"
        if kind == JobKind.import_ and self.import_id is not None:
            return f"/imports/{self.import_id}"
        if kind == JobKind.indexing and self.dataset_id is not None:
            return f"/datasets/{self.dataset_id}/v/{self.version}/stats"
        if kind == JobKind.sample and self.sampling_id is not None:
            return f"/sampling/{self.sampling_id}"
        if kind == JobKind.judge and self.judge_job_id is not None:
            return f"/judges/jobs/{self.judge_job_id}"
        return None


def _order(sort: str, *, desc: bool, duration: ColumnElement) -> list:
    """ORDER BY for a sort key: jobs without a value (not started) go last either way."""
    if sort == "age":  # the oldest first when descending
        sort, desc = "created", not desc
    value = {
        "status": cast(col(Job.status), String),  # by name: PostgreSQL orders its enum by declaration
        "kind": col(Job.kind),
        "duration": duration,
    }.get(sort, col(Job.created_at))
    missing = case((value.is_(None), 1), else_=0)
    if desc:
        return [missing, value.desc(), col(Job.id).desc()]
    return [missing, value.asc(), col(Job.id).asc()]


def _select(now: datetime, dialect: str) -> tuple[Any, ColumnElement]:
    """The row query (COLUMNS, with what each job produced joined in) and its duration expression."""
    query = (
        select(*COLUMNS)  # type: ignore[call-overload]
        .join(User, User.id == Job.owner_id, isouter=True)  # type: ignore[arg-type]
        .join(Run, Run.job_id == Job.id, isouter=True)  # type: ignore[arg-type]
        .join(ImportJob, ImportJob.job_id == Job.id, isouter=True)  # type: ignore[arg-type]
        .join(DatasetVersion, DatasetVersion.index_job_id == Job.id, isouter=True)  # type: ignore[arg-type]
        .join(SamplingJob, SamplingJob.job_id == Job.id, isouter=True)  # type: ignore[arg-type]
        .join(JudgeJob, JudgeJob.job_id == Job.id, isouter=True)  # type: ignore[arg-type]
    )
    return query, duration_sql(dialect, now)


def _row(r: Any, now: datetime) -> JobRow:
    """One selected row (COLUMNS) as the list, the job page and the API show it."""
    created = as_utc(r.created_at) or now
    return JobRow(
        id=r.id,
        kind=r.kind,
        title=r.title,
        status=str(r.status),
        queue=r.queue,
        owner=r.username or "",
        owner_id=r.owner_id,
        stage=r.stage,
        progress_done=r.progress_done,
        progress_total=r.progress_total,
        progress_unit=r.progress_unit,
        progress_text=progress_text(r.progress_done, r.progress_total, r.progress_unit),
        fraction=fraction(r.status, r.progress_done, r.progress_total),
        cancel_requested=r.cancel_requested,
        created_at=created,
        started_at=as_utc(r.started_at),
        finished_at=as_utc(r.finished_at),
        age_s=max(0.0, (now - created).total_seconds()),
        duration_s=duration_s(r.status, r.started_at, r.finished_at, now),
        link=Produced(r.run_id, r.import_id, r.dataset_id, r.version, r.sampling_id, r.judge_job_id).link(
            r.kind
        ),
    )


def list_jobs(session: Session, *, flt: JobFilter | None = None, limit: int = LIMIT) -> list[JobRow]:
    """Jobs matching the filter, sorted; at most `limit` (the first ones in the chosen order)."""
    flt = flt or JobFilter()
    now = utcnow()
    query, duration = _select(now, session.get_bind().dialect.name)
    if flt.kind:
        query = query.where(Job.kind == flt.kind)
    if flt.status in JobStatus.__members__:
        query = query.where(Job.status == JobStatus(flt.status))
    if flt.queue:
        query = query.where(Job.queue == flt.queue)
    if flt.owner:
        query = query.where(User.username == flt.owner)
    rows = session.exec(
        query.order_by(*_order(flt.sort, desc=flt.desc, duration=duration)).limit(limit)
    ).all()
    return [_row(r, now) for r in rows]


def job_row(session: Session, job_id: int) -> JobRow | None:
    """One job's row, by the same query as the list (so the list, its page and the API agree)."""
    now = utcnow()
    query, _ = _select(now, session.get_bind().dialect.name)
    r = session.exec(query.where(Job.id == job_id)).first()
    return _row(r, now) if r is not None else None


def filter_options(session: Session) -> dict:
    """Kinds, statuses, queues and owners for the filter selects."""
    queues = session.exec(select(Job.queue).distinct().order_by(Job.queue)).all()
    owners = session.exec(
        select(User.username).where(col(User.id).in_(select(Job.owner_id))).order_by(User.username)
    ).all()
    return {
        "kinds": [k.value for k in JobKind],
        "statuses": [s.value for s in JobStatus],
        "queues": list(queues),
        "owners": list(owners),
    }


@dataclass
class JobView:
    """One job as its page shows it: its list row, plus its log and result."""

    job: Job
    row: JobRow
    log: str  # the last LOG_LINES lines of its log
    result: str = ""  # the job's result, pretty-printed JSON (a large one cut)

    @property
    def finished(self) -> bool:
        return self.job.finished

    @property
    def owner(self) -> str:
        return self.row.owner

    @property
    def link(self) -> str | None:
        return self.row.link

    @property
    def fraction(self) -> float:
        return self.row.fraction

    @property
    def progress_text(self) -> str:
        return self.row.progress_text

    @property
    def duration_s(self) -> float | None:
        return self.row.duration_s


def log_tail(job: Job, n: int = LOG_LINES) -> str:
    """The end of the job's log file, or the tail the worker saved when the file is gone."""
    try:
        text = read_tail(job.log_file, n) if job.log_file else ""
    except OSError:
        text = ""
    return text or job.log_tail


def job_view(session: Session, job: Job) -> JobView:
    assert job.id is not None
    row = job_row(session, job.id)
    assert row is not None  # `job` was just loaded
    return JobView(job=job, row=row, log=log_tail(job), result=pretty_result(job.result_json))


def pretty_result(text: str | None, limit: int = 20_000) -> str:
    """A job's result as indented JSON for its page, cut at `limit` characters (a rendered sample is long)."""
    if not text:
        return ""
    shown = orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    return shown if len(shown) <= limit else shown[:limit] + "\n…"


def job_detail(view: JobView) -> JobDetail:
    """The JSON twin of the job page: its list row, with the outcome and the log."""
    job = view.job
    return JobDetail(
        **view.row.model_dump(),
        worker=job.worker,
        heartbeat_at=as_utc(job.heartbeat_at),
        exit_code=job.exit_code,
        error=job.error,
        log_tail=view.log,
        result=orjson.loads(job.result_json) if job.result_json else None,
    )
