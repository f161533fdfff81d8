"""Rating: rubrics (versioned), rating tasks built from sampling jobs, their cases, who rates what, and the ratings.

Overlap is held by the database, not by a read-then-write: an assignment takes one of its case's N slots,
and the unique constraints on (case, slot) and (case, rater) make a second claim of the same slot, or of
the same case by the same rater, fail as an INSERT does, on SQLite and PostgreSQL alike. A skipped
assignment keeps its row (the rater is not offered the case again) but gives its slot back (slot NULL,
which neither database counts as a duplicate).

Scores are stored in the terms of the sampling jobs, never of the screen: absolute `{dimension: int}`;
pairwise `{"a": {dimension: int}, "b": {...}}` with the preference "a" | "b" | "tie". A case's `swapped`
says B was shown on the left; the translation happens on the way in and out (app.rating.answers).
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.users import utcnow


class RatingMode(StrEnum):
    absolute = "absolute"  # one answer scored on the rubric
    pairwise = "pairwise"  # two answers to the same prompt: which is better, and the rubric per side


class AssignmentStatus(StrEnum):
    active = "active"  # claimed, holding a slot, not answered yet
    submitted = "submitted"  # answered; holds its slot
    skipped = "skipped"  # the rater passed; the slot went back to the pool


# A named rubric; its content lives in its versions, so that scores keep the version they were given under.
class Rubric(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    owner_id: int | None = Field(default=None, foreign_key="user.id")  # None: the built-in default
    latest_version: int = 1
    created_at: datetime = Field(default_factory=utcnow)


# One version of a rubric: its dimensions (key, names, guidance, scale, weight) and the usability threshold.
class RubricVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("rubric_id", "number", name="uq_rubricversion_number"),)

    id: int | None = Field(default=None, primary_key=True)
    rubric_id: int = Field(foreign_key="rubric.id")
    number: int
    # JSON list of {key, name_en, name_zh, guidance_en, guidance_zh, scale, weight}
    dimensions_json: str = Field(sa_column=Column(Text, nullable=False))
    usable_threshold: float = 0.0  # usability (the weighted mean, on a 0..1 scale) at or above it: usable
    created_by: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


# A rating task: which answers (one sampling job, or two for pairwise), under which rubric, rated by whom, N times.
class RatingTask(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    task_key: str = Field(max_length=64, unique=True)  # the opaque name raters see in URLs
    owner_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=200)
    mode: str = Field(default=RatingMode.absolute.value, max_length=20)  # a RatingMode
    rubric_version_id: int = Field(foreign_key="rubricversion.id")
    sampling_a_id: int = Field(foreign_key="samplingjob.id")
    sampling_b_id: int | None = Field(default=None, foreign_key="samplingjob.id")
    score_sides: bool = True  # pairwise: the rubric is scored for each side, not only the preference
    overlap: int = 1  # N: distinct raters per case
    selection_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    seed: int = 0  # of the case sample and of the left/right draw
    n_cases: int = 0
    created_at: datetime = Field(default_factory=utcnow)


# Who may rate a task.
class RatingTaskRater(SQLModel, table=True):
    task_id: int = Field(foreign_key="ratingtask.id", primary_key=True)
    rater_id: int = Field(foreign_key="user.id", primary_key=True, index=True)


# One prompt of a task and the answer(s) rated for it (answer index 0 of each job).
class RatingCase(SQLModel, table=True):
    __table_args__ = (Index("ix_ratingcase_task_type", "task_id", "task_type"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="ratingtask.id", index=True)
    sample_id: int
    task_type: str = Field(default="", max_length=401)
    generation_a_id: int = Field(foreign_key="generation.id")
    generation_b_id: int | None = Field(default=None, foreign_key="generation.id")
    swapped: bool = False  # B is shown on the left
    identity_flag: bool = (
        False  # an answer names a model (app.sampling_analysis.flags): the researcher sees it
    )
    gold_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # {scores, preference}


# One rater's hold on one case: the opaque token the rater's page uses, and the slot it occupies.
class RatingAssignment(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("case_id", "slot", name="uq_assignment_slot"),
        UniqueConstraint("case_id", "rater_id", name="uq_assignment_rater"),
        Index("ix_assignment_rater", "task_id", "rater_id", "status"),
        Index("ix_assignment_claimed", "task_id", "status", "claimed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(max_length=64, unique=True)
    task_id: int = Field(foreign_key="ratingtask.id")
    case_id: int = Field(foreign_key="ratingcase.id")
    rater_id: int = Field(foreign_key="user.id")
    slot: int | None = None  # 0..N-1 while active or submitted; None once skipped
    status: str = Field(default=AssignmentStatus.active.value, max_length=20)  # an AssignmentStatus
    claimed_at: datetime = Field(default_factory=utcnow)
    submitted_at: datetime | None = None


# A rater's answer for one assignment, in A/B terms, under the rubric version of its task at the time.
class Rating(SQLModel, table=True):
    __table_args__ = (Index("ix_rating_task_case", "task_id", "case_id"),)

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="ratingassignment.id", unique=True)
    task_id: int = Field(foreign_key="ratingtask.id")
    case_id: int = Field(foreign_key="ratingcase.id")
    rater_id: int = Field(foreign_key="user.id", index=True)
    rubric_version_id: int = Field(foreign_key="rubricversion.id")
    scores_json: str = Field(sa_column=Column(Text, nullable=False))
    preference: str | None = Field(default=None, max_length=10)  # pairwise: a | b | tie
    flag: bool = False
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    duration_ms: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# A researcher's settled scores for a case the raters disagreed on; they can replace the raters' mean.
class Adjudication(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="ratingcase.id", unique=True)
    scores_json: str = Field(sa_column=Column(Text, nullable=False))
    preference: str | None = Field(default=None, max_length=10)
    by_id: int = Field(foreign_key="user.id")
    at: datetime = Field(default_factory=utcnow)
