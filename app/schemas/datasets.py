"""Datasets, their versions, the diff between two versions and the answer to an edit."""

from pydantic import BaseModel


# A row of the datasets list: the latest version's figures.
class DatasetRow(BaseModel):
    id: int
    name: str
    kind: str
    versions: int
    samples: int
    tasks: int
    owner: str
    created: str
    status: str


class DatasetList(BaseModel):
    datasets: list[DatasetRow]


# A version as the dataset lists it.
class VersionSummary(BaseModel):
    number: int
    id: int
    message: str
    by: str
    n_samples: int
    created: str
    status: str
    progress: float
    stage: str
    error: str
    tasks: int
    normalised: int  # task_type values that normalisation changed at import
    n_bad: int


# One version alone, with its samples per task_type.
class VersionDetail(VersionSummary):
    task_counts: dict[str, int]


class DatasetDetail(BaseModel):
    id: int
    name: str
    kind: str
    description: str
    owner_id: int
    latest_version: int
    created: str
    versions: list[VersionSummary]
    task_counts: dict[str, int]  # of the latest version
    imports: list[int]  # ids of the import jobs that made versions
    no_reference: int | None = None  # eval sets: samples of the latest version without a reference


# A sample in a diff: the start of its prompt (160 characters) and answer (80).
class DiffSample(BaseModel):
    id: int
    line_no: int
    prompt: str
    answer: str
    task_type: str
    tags: list[str]


class DiffModified(BaseModel):
    before: DiffSample
    after: DiffSample


class DiffTaskType(BaseModel):
    task_type: str
    a: int
    b: int
    delta: int


# What changed from version a to version b; the sample lists are one page (offset, limit).
class VersionDiff(BaseModel):
    dataset_id: int
    a: int
    b: int
    n_added: int
    n_removed: int
    n_modified: int
    n_a: int
    n_b: int
    task_types: list[DiffTaskType]
    added: list[DiffSample]
    removed: list[DiffSample]
    modified: list[DiffModified]
    offset: int
    limit: int


# The version an edit made.
class EditDone(BaseModel):
    dataset_id: int
    version: int
    version_id: int
    changed: int
    requested: int
    message: str
