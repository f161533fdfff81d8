"""Sampling: a model answering the prompts of a dataset version, as a job, and the answers it gave.

A SamplingJob says what was asked (model, prompts, parameters); its Job says where it stands. Each answer
is one Generation row, unique per (sampling job, prompt, index): the sampling program's events are
stored exactly once by the tailer, and a prompt answered again after a resume keeps its first answers.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.users import utcnow


class SamplingMode(StrEnum):
    chat = "chat"  # the messages through the chat template
    continuation = "continuation"  # raw text, no template: does a base model continue sensibly?


class SamplingBackend(StrEnum):
    vllm = "vllm"
    transformers = "transformers"


# One sampling request: what the job's spec.json is built from.
class SamplingJob(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", index=True)
    job_id: int = Field(foreign_key="job.id", unique=True)
    model_ref: str = Field(max_length=1000)  # as typed: run:<id>/step-N, run:<id>, embedded, a path
    model_dir: str = Field(max_length=1000)  # what it resolved to at launch
    dataset_version_id: int = Field(foreign_key="datasetversion.id", index=True)
    filter_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    params_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    mode: str = Field(default=SamplingMode.chat.value, max_length=20)  # a SamplingMode
    backend: str = Field(default=SamplingBackend.vllm.value, max_length=20)  # a SamplingBackend
    backend_version: str = Field(default="", max_length=100)  # from the program's start event
    n_prompts: int = 0  # prompts the filter selected
    tokens: int = 0  # output tokens stored so far
    created_at: datetime = Field(default_factory=utcnow)


# One answer to one prompt (index k of the n asked for), with the program's timings.
class Generation(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("sampling_job_id", "prompt_id", "index", name="uq_generation_prompt_index"),
        Index("ix_generation_page", "sampling_job_id", "sample_id", "index"),
        Index("ix_generation_task", "sampling_job_id", "task_type", "sample_id"),
        Index("ix_generation_finish", "sampling_job_id", "finish_reason", "sample_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    sampling_job_id: int = Field(foreign_key="samplingjob.id")
    sample_id: int  # the dataset sample the prompt came from
    prompt_id: str = Field(max_length=100)  # the id in prompts.jsonl
    index: int = 0  # 0..n-1
    task_type: str = Field(default="", max_length=401)  # the sample's, "l1" or "l1/l2"
    prompt_text: str = Field(sa_column=Column(Text, nullable=False))  # exactly what the model saw
    text: str = Field(sa_column=Column(Text, nullable=False))
    tokens: int = 0
    prompt_tokens: int = 0
    finish_reason: str = Field(default="", max_length=20)  # stop | length
    ttft_s: float = 0.0
    tpot_s: float = 0.0
    time_s: float = 0.0
