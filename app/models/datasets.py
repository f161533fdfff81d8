"""Datasets, their immutable versions, samples, uploads and import jobs.

Versions are linear per dataset. A sample row never changes its content: it is
visible in version N when `added_in <= N` and (`removed_in` is null or
`removed_in > N`). An edit that retags or re-types a sample closes the old row
(`removed_in = N+1`) and adds a new one whose `origin_id` points back, so a new
version costs rows proportional to the change, not to the dataset, and a diff
between versions is a range query.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, Relationship, SQLModel

from app.models.jobs import Job, JobStatus
from app.models.users import utcnow


class DatasetKind(StrEnum):
    train = "train"
    eval = "eval"  # prompts with optional reference answers, for sampling and rating


class VersionStatus(StrEnum):
    indexing = "indexing"  # rows committed; search indexes and statistics being built
    ready = "ready"
    failed = "failed"


def version_status(job_status: JobStatus | None) -> VersionStatus:
    """A version is ready once its index job succeeded, failed once it ended otherwise, else indexing."""
    if job_status == JobStatus.succeeded:
        return VersionStatus.ready
    if job_status in (JobStatus.failed, JobStatus.cancelled, JobStatus.lost):
        return VersionStatus.failed
    return VersionStatus.indexing


class Dataset(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=200)
    kind: DatasetKind = Field(default=DatasetKind.train)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    owner_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    latest_version: int = 1


class DatasetVersion(SQLModel, table=True):
    __table_args__ = (Index("ix_datasetversion_dataset_number", "dataset_id", "number", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    number: int
    message: str = Field(default="", max_length=500)  # what this version changed
    created_by: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    n_samples: int = 0
    index_job_id: int | None = Field(default=None, foreign_key="job.id")  # search indexes + statistics
    stats_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    import_report_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))

    index_job: Job | None = Relationship(sa_relationship_kwargs={"lazy": "joined"})

    # Where the version stands is its index job's; these read through for the pages and the API.
    @property
    def status(self) -> VersionStatus:
        return version_status(self.index_job.status if self.index_job else None)

    @property
    def progress(self) -> float:
        return self.index_job.fraction if self.index_job else 0.0

    @property
    def stage(self) -> str:
        return self.index_job.stage if self.index_job else ""

    @property
    def error(self) -> str:
        return self.index_job.error if self.index_job else ""


class Sample(SQLModel, table=True):
    __table_args__ = (
        Index("ix_sample_visible", "dataset_id", "added_in", "removed_in"),
        Index("ix_sample_task", "dataset_id", "task_l1", "task_l2", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)  # also the rowid of the search indexes
    dataset_id: int = Field(foreign_key="dataset.id")
    added_in: int
    removed_in: int | None = None
    origin_id: int | None = None  # the row this one was edited from
    line_no: int = 0  # line (or row) in the uploaded file, for reports
    messages: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of {role, content, ...}
    prompt: str = Field(sa_column=Column(Text, nullable=False))  # system/user/tool turns joined by "\n"
    answer: str = Field(sa_column=Column(Text, nullable=False))  # assistant turns joined by "\n"
    reference: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # eval sets
    task_l1: str = Field(max_length=200)
    task_l2: str = Field(default="", max_length=200)
    tags: str = Field(default="", max_length=2000)  # comma-separated, sorted; see SampleTag for filtering
    has_system: bool = False
    n_turns: int = 0  # user turns
    prompt_chars: int = 0
    answer_chars: int = 0
    # Of messages only: the exact-duplicate key. Not indexed: duplicates are grouped by the statistics pass,
    # never looked up, and a random-order B-tree on 1M hashes was a large share of the import time.
    content_hash: str = Field(max_length=32)


class SampleTag(SQLModel, table=True):
    sample_id: int = Field(foreign_key="sample.id", primary_key=True)
    tag: str = Field(primary_key=True, max_length=100, index=True)


class UploadStatus(StrEnum):
    uploaded = "uploaded"  # on disk, waiting for the mapping step
    importing = "importing"
    imported = "imported"
    failed = "failed"


class Upload(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", index=True)
    filename: str = Field(max_length=500)  # as the browser sent it; never used as a path
    stored_name: str = Field(max_length=100)  # our own name under uploads_dir
    size: int = 0
    detected_format: str = Field(default="", max_length=40)
    status: UploadStatus = Field(default=UploadStatus.uploaded)
    created_at: datetime = Field(default_factory=utcnow)


class ImportOutcome(StrEnum):
    imported = "imported"
    rejected = "rejected"  # bad lines, and the policy imports nothing then
    validated = "validated"  # validation only, by request


# An upload imported with options; a job of kind `import` runs it, and its outcome and report land here.
class ImportJob(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", unique=True)
    upload_id: int = Field(foreign_key="upload.id", index=True)
    owner_id: int = Field(foreign_key="user.id")
    dataset_id: int | None = Field(default=None, foreign_key="dataset.id")  # set once committed
    target_dataset_id: int | None = None  # merge into this dataset (new version) instead of creating one
    options_json: str = Field(sa_column=Column(Text, nullable=False))  # format, mapping, defaults, policy
    outcome: str = Field(default="", max_length=20)  # an ImportOutcome once the job succeeded
    n_ok: int = 0
    n_bad: int = 0
    report_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))

    job: Job = Relationship(sa_relationship_kwargs={"lazy": "joined", "innerjoin": True})

    @property
    def status(self) -> str:
        """queued, running, succeeded (imported), rejected, validated, failed, cancelled or lost.

        A rejected import's job failed (with the reason as its error); a validation-only one succeeded.
        """
        if self.outcome in (ImportOutcome.rejected, ImportOutcome.validated):
            return self.outcome
        return self.job.status.value

    @property
    def error(self) -> str:
        return self.job.error

    @property
    def progress(self) -> float:
        return self.job.fraction

    @property
    def created_at(self) -> datetime:
        return self.job.created_at
