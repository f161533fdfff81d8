"""The LLM judge as a rater: its configurations, its prompt versions, its jobs and what each case gave.

A judge configuration owns a User row (role rater, never active, so it can never log in): its Ratings
go through the same tables, and the same agreement view, as a human's. Its assignments hold no slot
(slot NULL, status submitted), so a task's overlap N still counts humans only, and the claim queries,
which count slots, never see them. What a rating cannot hold stays here: each reply's explanation,
the per-order verdicts and scores of a pairwise case, the prompt version, and the replies that did not
parse (a failure is never a score).
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.users import utcnow


class JudgeKind(StrEnum):
    endpoint = "endpoint"  # an OpenAI-compatible /chat/completions endpoint, with a key
    local = "local"  # a model the sampling program loads (run:<id>/step-N, run:<id>, embedded, a path)


class JudgeDimensions(StrEnum):
    alignbench = "alignbench"  # AlignBench's dimension set for the case's task_type, on 1-10
    rubric = "rubric"  # the task's rubric version, each dimension on its own scale, as people score it


class JudgeOutcome(StrEnum):
    ok = "ok"  # parsed; a Rating was stored
    failed = "failed"  # the reply did not parse: reason and excerpt kept, no score


# A researcher's judge: where it runs, how it samples, which prompt versions it uses, and its rater account.
class JudgeConfig(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", index=True)
    user_id: int = Field(foreign_key="user.id", unique=True)  # the judge's own rater account
    name: str = Field(max_length=200)
    kind: str = Field(default=JudgeKind.endpoint.value, max_length=20)  # a JudgeKind
    base_url: str = Field(default="", max_length=1000)  # endpoint: the API root ("https://host/v1")
    model: str = Field(default="", max_length=300)  # endpoint: the model name it serves
    key_token: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # Fernet, never shown
    model_ref: str = Field(default="", max_length=1000)  # local: as a sampling job takes it
    mode: str = Field(default="chat", max_length=20)  # local: chat or continuation (a SamplingMode)
    lang: str = Field(default="en", max_length=5)  # the prompts' language
    temperature: float = 0.0
    max_tokens: int = 2048
    # {template kind: version} of edited prompts; a kind not named uses the shipped default
    templates_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    # {task_type or its level 1: dimension group}, over the built-in map
    groups_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    # a JudgeDimensions: what the judge scores; "rubric" makes its ratings comparable with people's
    dimensions: str = Field(default=JudgeDimensions.alignbench.value, max_length=20)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# One stored prompt text, named by its content hash; an edit is a new row, never a change of one.
class JudgePrompt(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("kind", "version", name="uq_judgeprompt_version"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # single | single_ref | pairwise | pairwise_ref
    version: str = Field(max_length=12)  # app.judge.templates.Template.version
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_by: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


# A judge job: one configuration judging every case of one rating task; its Job says where it stands.
class JudgeJob(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", unique=True)
    config_id: int = Field(foreign_key="judgeconfig.id", index=True)
    task_id: int = Field(foreign_key="ratingtask.id", index=True)
    owner_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


# What the judge made of one case in one job: the rating it stored, or why the reply did not parse.
class JudgeResult(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("judge_job_id", "case_id", name="uq_judgeresult_case"),)

    id: int | None = Field(default=None, primary_key=True)
    judge_job_id: int = Field(foreign_key="judgejob.id", index=True)
    case_id: int = Field(foreign_key="ratingcase.id")
    task_type: str = Field(default="", max_length=401)
    outcome: str = Field(max_length=10)  # a JudgeOutcome
    rating_id: int | None = Field(default=None, foreign_key="rating.id")
    template_version: str = Field(default="", max_length=40)  # "<kind>:<version>" of the prompt used
    group: str = Field(default="", max_length=20)  # the dimension group
    verdict_ab: str | None = Field(default=None, max_length=4)  # pairwise, A shown first: 1 | 2 | tie
    verdict_ba: str | None = Field(default=None, max_length=4)  # pairwise, B shown first
    # per order ("ab", "ba"; "single" for absolute): {explanation, scores..., overall?}
    detail_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    excerpt: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)
