"""Jobs: every piece of background work (a training run, an import, an index build, an estimate, a sample
rendering) has one Job row, which alone says where it stands.

One lifecycle for all kinds: queued -> running -> succeeded | failed | cancelled | lost. A worker starts a
job only through a conditional UPDATE from queued that records its Celery task id (`task_id`); every later
write by that worker is fenced on the same task id, so a redelivered message, or a stale worker whose job
was marked lost and then resumed, can change nothing. The broker only rings the bell: the row is the truth,
and queued jobs whose message was lost are sent again (`sent_at`, `sends`).
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.users import utcnow


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    lost = "lost"  # the worker stopped heartbeating; the reaper gave up on it


FINISHED = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.lost})


class JobKind(StrEnum):
    train = "train"  # a Run: the trainer as a subprocess
    import_ = "import"  # an ImportJob: an uploaded file into a dataset version
    indexing = "index"  # a DatasetVersion's search indexes and statistics
    estimate = "estimate"  # tokens, steps and packing of a launch form, by the trainer's own plan
    render = "render"  # one training sample of a run, rendered with the run's tokenizer
    sample = "sample"  # a SamplingJob: a model answering a dataset version's prompts
    judge = "judge"  # a JudgeJob: an LLM judge rating a rating task's cases


# One piece of background work and where it stands; the kind's own table (Run, ImportJob, ...) points here.
class Job(SQLModel, table=True):
    __table_args__ = (Index("ix_job_status_queue", "status", "queue"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30, index=True)
    owner_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    title: str = Field(default="", max_length=300)  # what the jobs page shows
    queue: str = Field(default="default", max_length=50)
    status: JobStatus = Field(default=JobStatus.queued, index=True)
    params_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    result_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    job_dir: str = Field(default="", max_length=1000)  # its working directory
    log_file: str = Field(default="", max_length=1000)  # its subprocess's stdout and stderr
    marker: str = Field(default="", max_length=1000)  # a path every process of the job names in argv
    task_id: str = Field(default="", max_length=100)  # the Celery task that claimed it (the fence)
    sent_at: datetime | None = None  # last message sent to the broker
    sends: int = 0  # messages sent while queued (resent ones back off)
    worker: str = Field(default="", max_length=200)  # hostname of the worker holding it
    pid: int | None = None  # the subprocess's process-group leader
    heartbeat_at: datetime | None = None
    cancel_requested: bool = False
    progress_done: float = 0.0
    progress_total: float = 0.0  # 0: unknown
    progress_unit: str = Field(default="", max_length=30)  # steps, lines, samples, prompts
    stage: str = Field(default="", max_length=100)  # which step of a multi-step job is running
    events_seq: int = 0  # lines of the job's events file stored so far
    exit_code: int | None = None
    error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    log_tail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def fraction(self) -> float:
        """Progress in 0..1 (0 while the total is unknown)."""
        if self.progress_total <= 0:
            return 1.0 if self.status == JobStatus.succeeded else 0.0
        return max(0.0, min(1.0, self.progress_done / self.progress_total))


# One line of a job's events file, for kinds without a table of their own.
class JobEvent(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("job_id", "seq", name="uq_jobevent_job_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id")
    seq: int  # 0-based line index in the events file
    type: str = Field(max_length=20)
    data: str = Field(sa_column=Column(Text, nullable=False))


# A live Celery worker, the queues it serves and its GPUs, refreshed by its reaper thread; a queue no live
# worker serves is said so on the launch form and on its queued runs' pages, and a launch asking more GPUs
# than that queue's workers have is refused.
class WorkerPresence(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=200)  # the Celery node name, e.g. runs@host
    hostname: str = Field(default="", max_length=200)
    queues: str = Field(default="", max_length=2000)  # comma-separated
    gpu_count: int = 0  # GPUs this worker may hand to runs (after its CUDA_VISIBLE_DEVICES)
    gpu_names: str = Field(default="", max_length=2000)  # comma-separated, e.g. NVIDIA H100 80GB HBM3
    started_at: datetime = Field(default_factory=utcnow)
    seen_at: datetime = Field(default_factory=utcnow, index=True)
