"""Claims, submissions, skips, undo, edits and abandoned cases keep overlap exact and translate left/right to A/B."""

import json
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from app.models import Rating, RatingAssignment, RatingCase, Role, utcnow
from app.rating import answers, assign
from app.rating.answers import AnswerError
from tests.rating.conftest import full_answer, new_task

ABANDON = 1800.0


@pytest.fixture
def raters(make_user):
    return [make_user(Role.rater, f"rater{i}").id for i in range(3)]


def _next(engine, task, rater, exclude=()):  # noqa: ANN001
    with Session(engine) as s:
        a = assign.next_assignment(s, task=task, rater_id=rater, exclude=set(exclude), abandon_after=ABANDON)
        if a is not None:
            s.refresh(a)
            s.expunge(a)
        return a


def _submit(engine, task, a, body=None):  # noqa: ANN001
    with Session(engine) as s:
        a = s.get(RatingAssignment, a.id)
        view = answers.case_view(s, assignment=a, task=task, lang="en")
        answers.submit(s, assignment=a, task=task, body=body or full_answer(view))


def test_every_case_goes_to_n_distinct_raters_and_queues_run_dry(engine, jobs, raters):
    task = new_task(engine, jobs, raters, overlap=2)
    done = dict.fromkeys(raters, 0)
    progress = True
    while progress:
        progress = False
        for r in raters:
            a = _next(engine, task, r)
            if a is not None:
                _submit(engine, task, a)
                done[r] += 1
                progress = True
    with Session(engine) as s:
        rows = s.exec(select(Rating.case_id, Rating.rater_id)).all()
        n_cases = len(s.exec(select(RatingCase.id).where(RatingCase.task_id == task.id)).all())
        assert assign.progress(s, task=task, rater_id=raters[0]) == {
            "done": done[raters[0]],
            "total": done[raters[0]],
        }
    assert len(rows) == len(set(rows)) == 2 * n_cases == sum(done.values())
    per_case: dict[int, int] = {}
    for case_id, _ in rows:
        per_case[case_id] = per_case.get(case_id, 0) + 1
    assert set(per_case.values()) == {2}


def test_at_most_two_open_cases_and_exclude_returns_the_other(engine, jobs, raters):
    task = new_task(engine, jobs, raters)
    first = _next(engine, task, raters[0])
    assert _next(engine, task, raters[0]).token == first.token  # asking again: the same open case
    second = _next(engine, task, raters[0], exclude=[first.token])
    assert second.token != first.token and second.case_id != first.case_id
    assert _next(engine, task, raters[0], exclude=[first.token, second.token]) is None  # two open: no third


def test_skip_frees_the_slot_and_the_case_never_comes_back(engine, jobs, raters):
    task = new_task(engine, jobs, raters[:2], overlap=1, cases={"kind": "sample", "per_type": 1, "level": 1})
    a = _next(engine, task, raters[0])
    with Session(engine) as s:
        assign.skip(s, assignment=s.get(RatingAssignment, a.id))
    seen = set()
    while (b := _next(engine, task, raters[0])) is not None:
        seen.add(b.case_id)
        _submit(engine, task, b)
    assert a.case_id not in seen
    other = _next(engine, task, raters[1])  # the only case left is the skipped one, free again
    assert other is not None and other.case_id == a.case_id
    with Session(engine) as s, pytest.raises(ValueError, match="already submitted"):
        submitted = s.exec(select(RatingAssignment).where(RatingAssignment.status == "submitted")).first()
        assign.skip(s, assignment=submitted)


def test_undo_reopens_the_last_submission_and_a_resubmit_edits(engine, jobs, raters):
    task = new_task(engine, jobs, raters, mode="absolute")
    a1 = _next(engine, task, raters[0])
    _submit(engine, task, a1)
    a2 = _next(engine, task, raters[0])
    _submit(engine, task, a2)
    with Session(engine) as s:
        back = assign.undo(s, task=task, rater_id=raters[0])
        assert back is not None and back.token == a2.token and back.status == "active"
        assert s.exec(select(Rating).where(Rating.assignment_id == a2.id)).first() is None
        assert assign.progress(s, task=task, rater_id=raters[0])["done"] == 1
    view = {
        "mode": "absolute",
        "dimensions": [{"key": k, "min": 1, "max": 5} for k in ("helpfulness", "honesty", "harmlessness")],
    }
    _submit(engine, task, a1, full_answer(view, score=5) | {"comment": "fixed"})  # an edit of a submitted one
    with Session(engine) as s:
        ratings = s.exec(select(Rating).where(Rating.assignment_id == a1.id)).all()
        assert len(ratings) == 1 and ratings[0].comment == "fixed"
        assert json.loads(ratings[0].scores_json) == {"helpfulness": 5, "honesty": 5, "harmlessness": 5}


def test_an_abandoned_case_returns_to_the_pool_after_30_minutes(engine, jobs, raters, monkeypatch):
    task = new_task(engine, jobs, raters[:2], cases={"kind": "task_type", "task_type": "qa"})
    now = utcnow()
    monkeypatch.setattr(assign, "clock", lambda: now)
    held = [_next(engine, task, raters[0])]
    held.append(_next(engine, task, raters[0], exclude=[held[0].token]))
    # Rater 1 takes the rest; the two held cases are not offered while rater 0 holds them.
    taken = set()
    while (b := _next(engine, task, raters[1])) is not None:
        taken.add(b.case_id)
        _submit(engine, task, b)
    assert not taken & {h.case_id for h in held}
    monkeypatch.setattr(assign, "clock", lambda: now + timedelta(seconds=ABANDON - 1))
    assert _next(engine, task, raters[1]) is None  # 29:59: still rater 0's
    monkeypatch.setattr(assign, "clock", lambda: now + timedelta(seconds=ABANDON + 1))
    back = _next(engine, task, raters[1])
    assert back is not None and back.case_id in {h.case_id for h in held}
    with Session(engine) as s:
        assert s.exec(select(RatingAssignment).where(RatingAssignment.token == held[0].token)).first() is None


def test_left_and_right_are_stored_as_a_and_b(engine, jobs, raters):
    task = new_task(engine, jobs, raters)
    with Session(engine) as s:
        swapped = {c.id: c.swapped for c in s.exec(select(RatingCase).where(RatingCase.task_id == task.id))}
    seen = set()
    while len(seen) < 2 and (a := _next(engine, task, raters[0])) is not None:
        with Session(engine) as s:
            a = s.get(RatingAssignment, a.id)
            view = answers.case_view(s, assignment=a, task=task, lang="en")
            left_is = "B" if swapped[a.case_id] else "A"
            assert view["answers"][0]["text"].startswith(f"answer {left_is} ")
            body = full_answer(view)
            body["scores"]["left"] = {**body["scores"]["left"], "honesty": 1}
            answers.submit(s, assignment=a, task=task, body=body)
            rating = s.exec(select(Rating).where(Rating.assignment_id == a.id)).one()
            stored = json.loads(rating.scores_json)
            assert rating.preference == left_is.lower()
            assert (
                stored[left_is.lower()]["honesty"] == 1
                and stored["ab".replace(left_is.lower(), "")]["honesty"] == 3
            )
            again = answers.case_view(s, assignment=a, task=task, lang="en")["submitted"]
            assert again["preference"] == "left" and again["scores"]["left"]["honesty"] == 1
            seen.add(swapped[a.case_id])
    assert seen == {True, False}


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (
            {"left": {"helpfulness": 7, "honesty": 3, "harmlessness": 3}, "right": {}},
            "left.helpfulness: 7 is not allowed; the scale 1-5 takes 1 to 5",
        ),
        ({"left": {"honesty": 3, "harmlessness": 3}, "right": {}}, "left.helpfulness: missing"),
        ({"left": {"speed": 3}, "right": {}}, "left.speed is not a dimension of this task"),
        ({"top": {}}, 'pairwise scores must be {"left"'),
    ],
)
def test_bad_scores_name_the_dimension_and_allowed_values(engine, jobs, raters, scores, message):
    task = new_task(engine, jobs, raters)
    a = _next(engine, task, raters[0])
    with pytest.raises(AnswerError, match=message.replace("{", r"\{").replace(".", r"\.")):
        _submit(engine, task, a, {"scores": scores, "preference": "left"})


def test_the_case_view_rebuilds_the_prompt_from_the_sample_not_from_what_the_model_saw(engine, jobs, raters):
    task = new_task(engine, jobs, raters, mode="absolute")
    a = _next(engine, task, raters[0])
    with Session(engine) as s:
        case = s.get(RatingCase, a.case_id)
        i = jobs.sample_ids.index(case.sample_id)
        view = answers.case_view(s, assignment=s.get(RatingAssignment, a.id), task=task, lang="zh")
    assert view["system"] == f"system {i}" and view["prompt"] == f"question {i}?"
    assert view["history"] == [
        {"role": "user", "content": f"first turn {i}"},
        {"role": "assistant", "content": f"earlier answer {i}"},
    ]
    assert view["reference"] == f"reference {i}" and "zeta-template" not in json.dumps(view)
    assert [d["name"] for d in view["dimensions"]] == ["有用性", "真实性", "无害性"]
    assert [a["side"] for a in view["answers"]] == ["left"] and view["submitted"] is None


def test_a_shared_system_prompt_is_shown_unless_it_names_a_model(engine, jobs, raters):
    from app.models import SamplingJob

    def system_seen(prompt: str) -> str | None:
        with Session(engine) as s:
            for sid in (jobs.a, jobs.b):
                sj = s.get(SamplingJob, sid)
                sj.params_json = json.dumps({"system_prompt": prompt})
                s.add(sj)
            s.commit()
        task = new_task(engine, jobs, raters)
        a = _next(engine, task, raters[0])
        with Session(engine) as s:
            return answers.case_view(s, assignment=s.get(RatingAssignment, a.id), task=task, lang="en")[
                "system"
            ]

    assert system_seen("Be brief.") == "Be brief."
    assert system_seen("You are Qwen, created by Alibaba Cloud.").startswith("system ")  # the sample's own
