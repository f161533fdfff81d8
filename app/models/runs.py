"""Training runs, the events their trainer wrote, and sweeps.

A run is a job of kind `train`: where it stands (status, heartbeat, progress in steps, error) lives on its
Job; the Run holds what was asked and what it produced. Its numbers live in the trainer's metrics.jsonl;
the worker's tailer copies every line into RunEvent keyed by (run_id, seq), seq being the line's index in
the file, so a tailer restarted after a crash resumes from the last stored seq (Job.events_seq) and never
stores an event twice.
"""

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, Relationship, SQLModel

from app.models.jobs import Job, JobStatus
from app.models.users import utcnow

RunStatus = JobStatus  # a run's status is its job's


# One training run: what was asked (form + resolved trainer config) and where it stands.
class Run(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    owner_id: int = Field(foreign_key="user.id", index=True)
    job_id: int = Field(foreign_key="job.id", unique=True)
    n_gpus: int = 0  # 0: CPU
    n_procs: int = 1  # ranks: GPUs, or CPU processes
    num_nodes: int = 1  # > 1: a DeepSpeed multi-node run over the first num_nodes hosts of `hostfile`
    hostfile: str = Field(default="", max_length=1000)  # a path on the worker; n_gpus is then per node
    base_model: str = Field(default="", max_length=1000)  # "" embedded; a path or hub id; "run:<id>/<ckpt>"
    parent_run_id: int | None = Field(default=None, foreign_key="run.id")  # cloned or continued from
    sweep_id: int | None = Field(default=None, foreign_key="sweep.id", index=True)
    form_json: str = Field(sa_column=Column(Text, nullable=False))  # what the form held, for clone
    config_json: str = Field(sa_column=Column(Text, nullable=False))  # the trainer config as launched
    run_dir: str = Field(default="", max_length=1000)
    resume: bool = False  # continue from the latest checkpoint in run_dir
    final_loss: float | None = None  # the overall channel's last train loss

    job: Job = Relationship(sa_relationship_kwargs={"lazy": "joined", "innerjoin": True})

    # Read-through views of the job, for the pages and the API that show a run.
    @property
    def status(self) -> JobStatus:
        return self.job.status

    @property
    def queue(self) -> str:
        return self.job.queue

    @property
    def error(self) -> str:
        return self.job.error

    @property
    def created_at(self) -> datetime:
        return self.job.created_at

    @property
    def started_at(self) -> datetime | None:
        return self.job.started_at

    @property
    def finished_at(self) -> datetime | None:
        return self.job.finished_at

    @property
    def step(self) -> int:
        return int(self.job.progress_done)

    @property
    def total_steps(self) -> int:
        return int(self.job.progress_total)


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
