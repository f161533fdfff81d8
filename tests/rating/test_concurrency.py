"""20 raters claiming and submitting at once, each in their own session, on SQLite and PostgreSQL: no rating is
lost or duplicated, and every case ends with exactly N ratings from N distinct raters."""

import threading
from collections import Counter

import pytest
from sqlmodel import Session, select

from app.models import Rating, RatingAssignment, RatingCase, Role, User
from app.rating import answers, assign
from tests.rating.conftest import make_jobs, new_task

RATERS = 20
PER_RATER = 100
OVERLAP = 2
CASES = RATERS * PER_RATER // OVERLAP
BODY = {"scores": {"helpfulness": 4, "honesty": 3, "harmlessness": 5}, "preference": None, "flag": False,
        "comment": "", "duration_ms": 10}  # fmt: skip


def _rate_all(engine) -> None:  # noqa: ANN001
    jobs = make_jobs(engine, n=CASES, owner="crowd-owner")
    with Session(engine) as s:
        users = [User(username=f"crowd{i}", password_hash="x", role=Role.rater) for i in range(RATERS)]
        s.add_all(users)
        s.commit()
        raters = [u.id or 0 for u in users]
    task = new_task(engine, jobs, raters, mode="absolute", overlap=OVERLAP)
    submitted: Counter[int] = Counter()
    errors: list[BaseException] = []
    start = threading.Barrier(RATERS)

    def rater(rater_id: int) -> None:
        try:
            start.wait()
            with Session(engine) as s:
                while True:
                    a = assign.next_assignment(
                        s, task=task, rater_id=rater_id, exclude=set(), abandon_after=1800
                    )
                    if a is None:
                        return
                    answers.submit(s, assignment=a, task=task, body=BODY)
                    submitted[rater_id] += 1
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            errors.append(exc)

    threads = [threading.Thread(target=rater, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors[:3]
    with Session(engine) as s:
        ratings = s.exec(select(Rating.case_id, Rating.rater_id).where(Rating.task_id == task.id)).all()
        cases = s.exec(select(RatingCase.id).where(RatingCase.task_id == task.id)).all()
        open_left = s.exec(select(RatingAssignment.id).where(RatingAssignment.status != "submitted")).all()
    assert len(cases) == CASES
    assert len(ratings) == sum(submitted.values()) == CASES * OVERLAP  # none lost
    assert len(set(ratings)) == len(ratings)  # none duplicated: (case, rater) pairs are distinct
    per_case = Counter(case for case, _ in ratings)
    assert set(per_case) == set(cases) and set(per_case.values()) == {OVERLAP}
    assert not open_left
    assert min(submitted.values()) > 0 and len(submitted) == RATERS  # everyone got work


def test_twenty_raters_at_once_on_sqlite(engine):
    _rate_all(engine)


@pytest.mark.postgres
def test_twenty_raters_at_once_on_postgres(pg):
    engine, _ = pg
    _rate_all(engine)
