"""A small rating task with ratings written straight into the database, so every figure is hand-computable."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import pytest
from sqlmodel import Session, col, select

from app.models import (
    AssignmentStatus,
    JudgeConfig,
    Rating,
    RatingAssignment,
    RatingCase,
    RatingTask,
    Role,
    User,
)
from tests.rating.conftest import make_jobs, new_task


@dataclass
class Task:
    id: int
    owner_id: int
    rubric_version_id: int
    cases: list[RatingCase]  # in id order; task types cycle math/arith, math/algebra, writing/poem, qa
    raters: dict[str, int]  # username -> id


def make_task(
    engine,  # noqa: ANN001
    make_user,  # noqa: ANN001
    *,
    mode: str = "absolute",
    n: int = 8,
    raters: int = 3,
    owner_id: int | None = None,
    score_sides: bool = True,
    users: dict[str, int] | None = None,
) -> Task:
    """A task over n prompts of two fresh sampling jobs, rated by rater1..raterN, owned by `owner_id`
    (default: the jobs' owner, who cannot log in); `users` reuses another task's raters."""
    jobs = make_jobs(engine, n=n, owner=f"sampler-{secrets.token_hex(4)}")
    users = users or {f"rater{i}": make_user(Role.rater, f"rater{i}").id or 0 for i in range(1, raters + 1)}
    task = new_task(
        engine, jobs, list(users.values()), mode=mode, overlap=min(2, raters), score_sides=score_sides
    )
    with Session(engine) as s:
        if owner_id is not None:
            row = s.get(RatingTask, task.id)
            assert row is not None
            row.owner_id = owner_id
            s.add(row)
            s.commit()
        cases = list(
            s.exec(select(RatingCase).where(RatingCase.task_id == task.id).order_by(col(RatingCase.id)))
        )
        for c in cases:
            s.expunge(c)
    return Task(task.id or 0, owner_id or jobs.owner_id, task.rubric_version_id, cases, users)


def rate(
    engine,  # noqa: ANN001
    task: Task,
    case: RatingCase,
    rater: str,
    scores: dict,
    *,
    preference: str | None = None,
    comment: str = "",
    version_id: int | None = None,
) -> None:
    """One submitted rating in A/B terms, with the assignment it answers."""
    with Session(engine) as s:
        taken = s.exec(select(RatingAssignment.slot).where(RatingAssignment.case_id == case.id)).all()
        a = RatingAssignment(
            token=secrets.token_urlsafe(12),
            task_id=task.id,
            case_id=case.id or 0,
            rater_id=task.raters[rater],
            slot=len(taken),
            status=AssignmentStatus.submitted.value,
        )
        s.add(a)
        s.flush()
        s.add(
            Rating(
                assignment_id=a.id or 0,
                task_id=task.id,
                case_id=case.id or 0,
                rater_id=task.raters[rater],
                rubric_version_id=version_id or task.rubric_version_id,
                scores_json=json.dumps(scores),
                preference=preference,
                comment=comment,
            )
        )
        s.commit()


def set_gold(engine, case: RatingCase, scores: dict, preference: str | None = None) -> None:  # noqa: ANN001
    with Session(engine) as s:
        row = s.get(RatingCase, case.id)
        assert row is not None
        row.gold_json = json.dumps({"scores": scores, "preference": preference})
        s.add(row)
        s.commit()


def task_row(engine, task: Task) -> RatingTask:  # noqa: ANN001
    with Session(engine) as s:
        row = s.get(RatingTask, task.id)
        assert row is not None
        s.expunge(row)
        return row


def owner_name(engine, task: Task) -> str:  # noqa: ANN001
    with Session(engine) as s:
        user = s.get(User, task.owner_id)
        assert user is not None
        return user.username


def s3(h: int, o: int, m: int) -> dict[str, int]:
    """Scores on the default 3H rubric."""
    return {"helpfulness": h, "honesty": o, "harmlessness": m}


def rate_small(engine, task: Task) -> None:  # noqa: ANN001
    """Cases 0-3 (math/arith, math/algebra, writing/poem, qa) rated by two raters each; 4-7 unrated.
    Helpfulness case means 3, 5, 2, 4; rater2 leaves a comment with markup on case 2."""
    c = task.cases
    rate(engine, task, c[0], "rater1", s3(4, 5, 5))
    rate(engine, task, c[0], "rater2", s3(2, 5, 5))
    rate(engine, task, c[1], "rater1", s3(5, 5, 5))
    rate(engine, task, c[1], "rater3", s3(5, 5, 5))
    rate(engine, task, c[2], "rater2", s3(3, 3, 3), comment="<script>alert(1)</script>")
    rate(engine, task, c[2], "rater3", s3(1, 3, 5))
    rate(engine, task, c[3], "rater1", s3(4, 4, 4))
    rate(engine, task, c[3], "rater2", s3(4, 4, 5))


@pytest.fixture
def absolute(engine, make_user) -> Task:
    return make_task(engine, make_user)


def add_judge(
    engine, make_user, task: Task, preferences: list, scores: dict, name: str = "judge-1-gpt"
) -> None:  # noqa: ANN001
    """An LLM judge (its own rater account and JudgeConfig) rating the first cases of `task`, one
    preference each (None in absolute mode), all with `scores`; as a judge job stores them, without a slot."""
    judge = make_user(Role.rater, name)
    with Session(engine) as s:
        s.add(JudgeConfig(owner_id=task.owner_id, user_id=judge.id or 0, name=name))
        for case, pref in zip(task.cases, preferences, strict=False):
            held = RatingAssignment(
                token=secrets.token_urlsafe(12), task_id=task.id, case_id=case.id or 0, rater_id=judge.id or 0,
                slot=None, status=AssignmentStatus.submitted.value,
            )  # fmt: skip
            s.add(held)
            s.flush()
            s.add(
                Rating(
                    assignment_id=held.id or 0, task_id=task.id, case_id=case.id or 0, rater_id=judge.id or 0,
                    rubric_version_id=task.rubric_version_id, preference=pref, scores_json=json.dumps(scores),
                )
            )  # fmt: skip
        s.commit()
