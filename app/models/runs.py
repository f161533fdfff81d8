"""Training runs, the events their trainer wrote, and sweeps.

A run's numbers live in the trainer's metrics.jsonl; the worker's tailer copies
every line into RunEvent keyed by (run_id, seq), seq being the line's index in
the file, so a tailer restarted after a crash resumes from the last stored seq
and never stores an event twice.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.users import utcnow


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    lost = "lost"  # the worker stopped heartbeating; the reaper gave up on it


FINISHED = frozenset({RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled, RunStatus.lost})


# One training run: what was asked (form + resolved trainer config) and where it stands.
class Run(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    owner_id: int = Field(foreign_key="user.id", index=True)
    status: RunStatus = Field(default=RunStatus.queued, index=True)
    queue: str = Field(default="cpu", max_length=50)
    n_gpus: int = 0  # 0: CPU
    n_procs: int = 1  # ranks: GPUs, or CPU processes
    base_model: str = Field(default="", max_length=1000)  # "" embedded; a path or hub id; "run:<id>/<ckpt>"
    parent_run_id: int | None = Field(default=None, foreign_key="run.id")  # cloned or continued from
    sweep_id: int | None = Field(default=None, foreign_key="sweep.id", index=True)
    form_json: str = Field(sa_column=Column(Text, nullable=False))  # what the form held, for clone
    config_json: str = Field(sa_column=Column(Text, nullable=False))  # the trainer config as launched
    run_dir: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    worker: str = Field(default="", max_length=200)  # hostname of the worker holding it
    pid: int | None = None  # the trainer's process-group leader
    task_id: str = Field(default="", max_length=100)  # the Celery task
    cancel_requested: bool = False
    resume: bool = False  # continue from the latest checkpoint in run_dir
    total_steps: int = 0
    step: int = 0
    final_loss: float | None = None
    exit_code: int | None = None
    error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    log_tail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    events_seq: int = 0  # lines of metrics.jsonl stored so far


# A dataset version a run trains (role "train") or validates (role "eval") on.
class RunDataset(SQLModel, table=True):
    run_id: int = Field(foreign_key="run.id", primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", primary_key=True)
    version: int = Field(primary_key=True)
    role: str = Field(default="train", max_length=10, primary_key=True)


# One line of a run's metrics.jsonl.
class RunEvent(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("run_id", "seq", name="uq_runevent_run_seq"),
        Index("ix_runevent_run_type_step", "run_id", "type", "step"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id")
    seq: int  # 0-based line index in metrics.jsonl
    type: str = Field(max_length=20)
    step: int = 0
    time: float = 0.0  # when the trainer wrote it (unix seconds)
    data: str = Field(sa_column=Column(Text, nullable=False))  # the event as written, JSON


# A grid of runs: epochs × learning rate × share of one task_type.
class Sweep(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    owner_id: int = Field(foreign_key="user.id", index=True)
    spec_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
