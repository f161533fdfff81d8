"""Migration 0045 on SQLite and PostgreSQL: the rating tables exist and the slot constraints hold overlap
(a second holder of one slot, or a second assignment of one case to one rater, is refused; skipped rows
with no slot never collide)."""

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.models import RatingAssignment, Role, User
from tests.rating.conftest import make_jobs, new_task

TABLES = {"rubric", "rubricversion", "ratingtask", "ratingtaskrater", "ratingcase", "ratingassignment", "rating",
          "adjudication"}  # fmt: skip


def _check(engine) -> None:  # noqa: ANN001
    assert TABLES <= set(inspect(engine).get_table_names())
    jobs = make_jobs(engine, n=4)
    with Session(engine) as s:
        users = [User(username=f"m{i}", password_hash="x", role=Role.rater) for i in range(3)]
        s.add_all(users)
        s.commit()
        r1, r2, r3 = (u.id or 0 for u in users)
    task = new_task(engine, jobs, [r1, r2, r3], overlap=2)

    def add(token: str, rater: int, slot: int | None, status: str = "active") -> None:
        with Session(engine) as s:
            s.add(
                RatingAssignment(
                    token=token, task_id=task.id or 0, case_id=1, rater_id=rater, slot=slot, status=status
                )
            )
            s.commit()

    add("t1", r1, 0)
    with pytest.raises(IntegrityError):
        add("t2", r2, 0)  # slot 0 is held
    with pytest.raises(IntegrityError):
        add("t3", r1, 1)  # r1 has the case already
    add("t4", r2, None, "skipped")
    add("t5", r3, None, "skipped")  # two skipped rows without a slot do not collide
    with pytest.raises(IntegrityError):
        add("t1", r3, 1)  # tokens are unique


def test_sqlite_schema_and_constraints(engine):
    _check(engine)


@pytest.mark.postgres
def test_postgres_schema_and_constraints(pg):
    engine, _ = pg
    _check(engine)
