"""Every table, imported here so SQLModel.metadata (and Alembic) sees them all."""

from app.models.datasets import (
    Dataset,
    DatasetKind,
    DatasetVersion,
    ImportJob,
    ImportOutcome,
    Sample,
    SampleTag,
    Upload,
    UploadStatus,
    VersionStatus,
    version_status,
)
from app.models.jobs import FINISHED, Job, JobEvent, JobKind, JobStatus, WorkerPresence
from app.models.runs import Run, RunDataset, RunEvent, RunStatus, Sweep
from app.models.sampling import Generation, SamplingBackend, SamplingJob, SamplingMode
from app.models.users import ApiToken, LoginFailure, Role, User, UserCreate, UserPublic, utcnow

__all__ = [
    "FINISHED",
    "Job",
    "JobEvent",
    "JobKind",
    "JobStatus",
    "WorkerPresence",
    "Run",
    "RunDataset",
    "RunEvent",
    "RunStatus",
    "Sweep",
    "Generation",
    "SamplingBackend",
    "SamplingJob",
    "SamplingMode",
    "ApiToken",
    "LoginFailure",
    "Dataset",
    "DatasetKind",
    "DatasetVersion",
    "ImportJob",
    "ImportOutcome",
    "Role",
    "Sample",
    "SampleTag",
    "Upload",
    "UploadStatus",
    "User",
    "UserCreate",
    "UserPublic",
    "VersionStatus",
    "version_status",
    "utcnow",
]
