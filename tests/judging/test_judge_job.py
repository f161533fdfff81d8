"""The judge job in this process against a real local HTTP judge: pairwise ratings in A/B terms through
`swapped`, the MT-Bench combination and position consistency by hand count, the unparsable reply kept as a
failure with its reason, a 429 retried, assignments that take no human slot, absolute scores."""

from __future__ import annotations

import json

from sqlmodel import Session, col, select

from app.core.config import get_settings
from app.judging import jobs as judge_jobs
from app.models import (
    Job,
    JobStatus,
    JudgeJob,
    JudgeResult,
    Rating,
    RatingAssignment,
    RatingCase,
    Sample,
)
from app.rating.assign import claim, progress
from tests.judging.conftest import N, endpoint_config, rating_task
from tests.judging.fake_judge import KEY, RATE_LIMITED, UNPARSABLE
from worker.runner import execute


def question_index(session: Session, case: RatingCase) -> int:
    sample = session.get_one(Sample, case.sample_id)
    return int(sample.prompt.split()[1].rstrip("?"))


def swap_odd_cases(engine, task_id: int) -> dict[int, int]:  # noqa: ANN001
    """Cases of odd question index shown with B on the left; returns case id -> question index."""
    out = {}
    with Session(engine) as session:
        for case in session.exec(select(RatingCase).where(RatingCase.task_id == task_id)).all():
            i = question_index(session, case)
            case.swapped = i % 2 == 1
            session.add(case)
            out[case.id or 0] = i
        session.commit()
    return out


def launch(engine, config, task) -> JudgeJob:  # noqa: ANN001
    with Session(engine) as session:
        jj = judge_jobs.launch(
            session, config=config, task=session.get_one(type(task), task.id), owner_id=config.owner_id,
            settings=get_settings(),
        )  # fmt: skip
        session.expunge(jj)
        return jj


def check_pairwise_outcome(engine, fake, config, task, jj: JudgeJob, index: dict[int, int]) -> None:  # noqa: ANN001
    """Everything a finished pairwise judge job must have stored (shared with the real-worker test)."""
    with Session(engine) as session:
        job = session.get_one(Job, jj.job_id)
        assert job.status == JobStatus.succeeded, job.error
        assert (job.progress_done, job.progress_total, job.progress_unit) == (N, N, "cases")
        ratings = session.exec(select(Rating).where(Rating.task_id == task.id)).all()
        by_case = {r.case_id: r for r in ratings}
        assert all(r.rater_id == config.user_id for r in ratings)
        assert sorted(index[c] for c in by_case) == [i for i in range(N) if i != UNPARSABLE]
        expected = {0: "a", 1: "tie", 2: "tie", 3: "b"}
        for case_id, rating in by_case.items():
            assert rating.preference == expected[index[case_id] % 4], index[case_id]
            assert json.loads(rating.scores_json)["a"]["factuality"] == 8  # (8 + 7) / 2 rounded half up
            assert json.loads(rating.scores_json)["b"]["factuality"] == 5  # (4 + 5) / 2
            assert rating.rubric_version_id == task.rubric_version_id
        assignments = session.exec(
            select(RatingAssignment).where(RatingAssignment.rater_id == config.user_id)
        ).all()
        assert len(assignments) == N - 1 and all(
            a.slot is None and a.status == "submitted" for a in assignments
        )
        detail = judge_jobs.detail(session, session.get_one(JudgeJob, jj.id))
    assert detail["rated"] == N - 1 and detail["failed"] == 1
    [failure] = detail["failures"]
    assert index[failure["case_id"]] == UNPARSABLE
    assert (
        "no JSON object with scores" in failure["reason"] and "would not want to choose" in failure["excerpt"]
    )
    # By hand, cases 0..7 by i % 4: A, first-position both times, tie, B; case 2 failed.
    table = {row["task_type"]: row for row in detail["consistency"]}
    assert (table["math/arith"]["n"], table["math/arith"]["consistent"], table["math/arith"]["a_wins"]) == (
        2,
        2,
        2,
    )
    assert (
        table["math/algebra"]["consistent"],
        table["math/algebra"]["first"],
        table["math/algebra"]["ties"],
    ) == (0, 2, 2)
    assert (table["writing/poem"]["n"], table["writing/poem"]["consistent"]) == (1, 1)
    assert (table["qa"]["consistent"], table["qa"]["b_wins"]) == (2, 2)
    assert (table["*"]["n"], table["*"]["consistent"]) == (7, 5) and abs(table["*"]["share"] - 5 / 7) < 1e-9
    ok = [r for r in fake.judge.requests if r.status == 200]
    # Each case asked in the screen's order first: B first exactly where the case is swapped.
    firsts = {}
    for r in ok:
        firsts.setdefault(r.case, r.first)
    assert firsts == {i: "B" if i % 2 else "A" for i in range(N)}
    assert [r.status for r in fake.judge.requests if r.case == RATE_LIMITED].count(429) == 2
    assert all(r.auth == f"Bearer {KEY}" for r in fake.judge.requests)


def test_pairwise_job_in_process(judging, engine, pairs, make_user, fake_judge):
    task, human = rating_task(engine, pairs, make_user)
    index = swap_odd_cases(engine, task.id)
    config = endpoint_config(engine, fake_judge.url, pairs.owner_id)
    jj = launch(engine, config, task)
    assert execute(jj.job_id)
    check_pairwise_outcome(engine, fake_judge, config, task, jj, index)
    with Session(engine) as session:
        # The judge took no slot: with overlap 1 the human still has every case to claim.
        assert progress(session, task=task, rater_id=human.id) == {"done": 0, "total": N}
        assert claim(session, task=task, rater_id=human.id, now=task.created_at) is not None
        stored = session.exec(select(JudgeResult).where(JudgeResult.judge_job_id == jj.id)).all()
        assert {r.template_version.split(":")[0] for r in stored} == {"pairwise_ref"}


def test_absolute_job_scores_one_answer(judging, engine, pairs, make_user, fake_judge):
    task, _ = rating_task(engine, pairs, make_user, mode="absolute")
    config = endpoint_config(engine, fake_judge.url, pairs.owner_id)
    jj = launch(engine, config, task)
    assert execute(jj.job_id)
    with Session(engine) as session:
        job = session.get_one(Job, jj.job_id)
        assert job.status == JobStatus.succeeded, job.error
        ratings = session.exec(
            select(Rating).where(Rating.task_id == task.id).order_by(col(Rating.case_id))
        ).all()
        assert len(ratings) == N - 1
        for rating in ratings:
            i = question_index(session, session.get_one(RatingCase, rating.case_id))
            scores = json.loads(rating.scores_json)
            assert rating.preference is None and set(scores.values()) == {1 + i % 10}
            # Only "qa" is a factual task for AlignBench (math: reasoning, writing: writing): each its own set.
            assert ("clarity" in scores) == (i % 4 == 3)
    assert all(r.first == "A" for r in fake_judge.judge.requests)


def test_a_refused_key_fails_the_job_with_the_reason_and_not_the_key(
    judging, engine, pairs, make_user, fake_judge
):
    task, _ = rating_task(engine, pairs, make_user)
    wrong = "sk-wrong-key-9876543210zyxw"
    config = endpoint_config(engine, fake_judge.url, pairs.owner_id, key=wrong)
    jj = launch(engine, config, task)
    assert execute(jj.job_id)
    with Session(engine) as session:
        job = session.get_one(Job, jj.job_id)
        shown = json.dumps(judge_jobs.detail(session, session.get_one(JudgeJob, jj.id)))
    assert job.status == JobStatus.failed
    assert job.error.startswith("case ") and "the endpoint refused the key (HTTP 401)" in job.error
    assert "Incorrect API key: ***" in job.error
    for text in (job.error, job.log_tail, shown):
        assert wrong not in text and wrong[-10:] not in text
    assert len(fake_judge.judge.requests) == 1  # a refused key is not retried
