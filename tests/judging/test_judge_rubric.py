"""A judge configured with dimensions="rubric" scores the task's own rubric on its own scales: its ratings carry the rubric's keys, the results page measures it against the human raters, a binary dimension stays 0/1 through the pairwise mean; the setting is validated (422), stored, shown, and the default stays AlignBench."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, col, select

from app.judge.prompts import build_pairwise, default_template
from app.judging.cases import CasePrompt, case_prompts, rubric_dimensions
from app.judging.record import read_replies
from app.models import Job, JobStatus, JudgeResult, Rating, RatingCase, RatingTask, Role, RubricVersion
from app.rating import answers
from app.rating.assign import claim
from app.rating.rubrics import create_rubric, parse_dimensions
from app.rating_results.results import task_results
from tests.judging.conftest import N, endpoint_config, rating_task
from tests.judging.fake_judge import KEY, UNPARSABLE, FakeJudge, Server
from tests.judging.test_judge_job import launch, question_index
from tests.rating.conftest import new_task
from worker.runner import execute

BODY = {
    "name": "Rubric judge",
    "kind": "endpoint",
    "base_url": "http://127.0.0.1:9/v1",
    "model": "m",
    "key": KEY,
}
MIXED = [
    {"key": "safe", "name_en": "Safe", "name_zh": "安全", "scale": "binary", "guidance_en": "1: no harm."},
    {"key": "helpfulness", "name_en": "Helpfulness", "name_zh": "有用性", "scale": "1-5"},
    {"key": "style", "name_en": "Style", "name_zh": "文风", "scale": "1-10"},
]


def helpfulness(i: int) -> int:
    return 1 + i % 5


def three_h(i: int) -> dict[str, int]:
    """The judge's reply on the default 3H rubric, in its English names."""
    return {"Helpfulness": helpfulness(i), "Honesty": 5, "Harmlessness": 4, "Overall": 4}


def mixed_zh(i: int) -> dict[str, object]:
    """The judge's reply on the mixed rubric in Chinese, "4/5" and full-width digits included."""
    return {"安全": i % 2, "有用性": f"{helpfulness(i)}/5", "文风": "１０" if i == 0 else 7, "综合得分": 6}


def human_rates_all(engine, task, human, score) -> None:  # noqa: ANN001
    """The human rates every case, helpfulness as `score(question index)`, the rest 3."""
    with Session(engine) as s:
        row = s.get_one(RatingTask, task.id)
        while (a := claim(s, task=row, rater_id=human.id, now=datetime.now(UTC))) is not None:
            view = answers.case_view(s, assignment=a, task=row, lang="en")
            i = question_index(s, s.get_one(RatingCase, a.case_id))
            dims = {d["key"]: score(i) if d["key"] == "helpfulness" else 3 for d in view["dimensions"]}
            body = {"scores": dims, "preference": None, "flag": False, "comment": "", "duration_ms": 900}
            answers.submit(s, assignment=a, task=row, body=body)


def test_the_setting_is_validated_stored_and_shown(judging, researcher):
    assert researcher.post("/api/judges", json=BODY).json()["dimensions"] == "alignbench"
    created = researcher.post("/api/judges", json={**BODY, "name": "r", "dimensions": "rubric"})
    assert created.status_code == 201 and created.json()["dimensions"] == "rubric"
    for bad in ("Rubric", "3h", 5, ["rubric"]):
        response = researcher.post("/api/judges", json={**BODY, "dimensions": bad})
        assert response.status_code == 422, bad
        assert response.json()["field"] == "dimensions"
        assert response.json()["detail"].startswith("dimensions must be alignbench or rubric")
    cid = created.json()["id"]
    page = researcher.get(f"/judges/{cid}").text
    assert 'data-dimensions="rubric"' in page and '<option value="rubric" selected>' in page
    form = {**BODY, "name": "r", "dimensions": "nonsense", "csrf_token": researcher.csrf}
    refused = researcher.post(f"/judges/{cid}", data=form)
    assert refused.status_code == 422 and 'data-error="dimensions"' in refused.text
    # The page's prompts are the rubric's defaults; posted back under either setting, they are no edit.
    shown = researcher.get(f"/api/judges/{cid}").json()["templates"]["single"]
    assert shown["text"] == default_template("single", "en", rubric=True).text and not shown["edited"]
    form |= {f"template_{kind}": t["text"] for kind, t in created.json()["templates"].items()}
    form["dimensions"] = "alignbench"
    assert researcher.post(f"/judges/{cid}", data=form, follow_redirects=False).status_code == 303
    after = researcher.get(f"/api/judges/{cid}").json()
    assert after["dimensions"] == "alignbench" and not any(t["edited"] for t in after["templates"].values())
    assert after["templates"]["single"]["text"] == default_template("single", "en").text
    researcher.cookies.set("lang", "zh")
    assert "任务自己的评分标准" in researcher.get("/judges").text


def test_a_rubric_judge_is_measured_against_the_human(judging, engine, pairs, make_user, fake_judge):
    task, human = rating_task(engine, pairs, make_user, mode="absolute")
    # The human agrees with the judge on helpfulness except on question 7 (4 where the judge says 3).
    human_rates_all(engine, task, human, lambda i: 4 if i == 7 else helpfulness(i))
    fake_judge.judge.absolute = three_h
    config = endpoint_config(engine, fake_judge.url, pairs.owner_id, dimensions="rubric")
    jj = launch(engine, config, task)
    assert execute(jj.job_id)
    with Session(engine) as s:
        assert s.get_one(Job, jj.job_id).status == JobStatus.succeeded
        ratings = s.exec(select(Rating).where(Rating.rater_id == config.user_id)).all()
        assert len(ratings) == N - 1
        for rating in ratings:
            i = question_index(s, s.get_one(RatingCase, rating.case_id))
            assert json.loads(rating.scores_json) == {
                "helpfulness": helpfulness(i),
                "honesty": 5,
                "harmlessness": 4,
            }
        results = s.exec(select(JudgeResult).where(JudgeResult.judge_job_id == jj.id)).all()
        assert {r.group for r in results} == {"rubric"}
        judges = task_results(s, s.get_one(RatingTask, task.id))["judges"]
    [everything] = [row for row in judges if row["task_type"] == ""]
    by_key = {d["key"]: d for d in everything["dimensions"]}
    assert set(by_key) == {"helpfulness", "honesty", "harmlessness"}
    [pair] = by_key["helpfulness"]["pairs"]
    assert pair["rater"] == human.username and pair["n"] == N - 1  # the unparsable case has no rating
    assert 0.5 < pair["value"] < 1  # agreement on all but one case, off by one there
    prompts = [r for r in fake_judge.judge.requests if r.status == 200]
    assert len(prompts) == N and UNPARSABLE in {r.case for r in prompts}


def test_the_alignbench_default_shares_no_dimension_with_people(
    judging, engine, pairs, make_user, fake_judge
):
    task, human = rating_task(engine, pairs, make_user, mode="absolute")
    human_rates_all(engine, task, human, helpfulness)
    config = endpoint_config(engine, fake_judge.url, pairs.owner_id)
    assert execute(launch(engine, config, task).job_id)
    with Session(engine) as s:
        judges = task_results(s, s.get_one(RatingTask, task.id))["judges"]
    assert judges and all(row["dimensions"] == [] for row in judges)


def test_a_mixed_scale_rubric_in_chinese(judging, engine, pairs, make_user):
    human = make_user(Role.rater, "human-mixed")
    with Session(engine) as s:
        version = create_rubric(s, name="mixed", body={"dimensions": MIXED}, owner_id=pairs.owner_id)
        vid = version.id
    task = new_task(engine, pairs, [human.id], mode="absolute", rubric_version_id=vid)
    with Server(FakeJudge(absolute=mixed_zh)) as server:
        config = endpoint_config(engine, server.url, pairs.owner_id, dimensions="rubric", lang="zh")
        with Session(engine) as s:
            case = s.exec(select(RatingCase).where(RatingCase.task_id == task.id)).first()
            [single] = case_prompts(s, config=config, task=s.get_one(RatingTask, task.id), case=case)
        text = single.prompt.text
        assert "1. 安全（Safe，0或1分）：1: no harm." in text and "2. 有用性（Helpfulness，1～5分）" in text
        assert "事实正确性" not in text  # neither as a dimension nor in the anchors' weighting
        jj = launch(engine, config, task)
        assert execute(jj.job_id)
    with Session(engine) as s:
        assert s.get_one(Job, jj.job_id).status == JobStatus.succeeded
        ratings = s.exec(
            select(Rating).where(Rating.rater_id == config.user_id).order_by(col(Rating.id))
        ).all()
        got = {
            question_index(s, s.get_one(RatingCase, r.case_id)): json.loads(r.scores_json) for r in ratings
        }
    assert got[0] == {"safe": 0, "helpfulness": 1, "style": 10}
    assert got[3] == {"safe": 1, "helpfulness": 4, "style": 7}
    assert set(got) == set(range(N)) - {UNPARSABLE}


@pytest.mark.parametrize(("ab", "ba", "mean"), [(1, 0, 1), (0, 0, 0), (0, 1, 1), (1, 1, 1)])
def test_the_pairwise_mean_of_a_binary_dimension_stays_binary(ab, ba, mean):
    version = RubricVersion(dimensions_json=json.dumps([d.__dict__ for d in parse_dimensions(MIXED)]))
    dims = rubric_dimensions(version)
    template = default_template("pairwise", "en")
    prompts = [
        CasePrompt(
            order,
            build_pairwise(
                template=template,
                lang="en",
                group="factual",
                task_type="t",
                question="q",
                answer_1="x",
                answer_2="y",
                dimensions=dims,
            ),
        )  # fmt: skip
        for order in ("ab", "ba")
    ]
    a_first = {
        "answer_1": {"safe": ab, "helpfulness": 4, "style": 7},
        "answer_2": {"safe": 0, "helpfulness": 2, "style": 3},
    }
    b_first = {
        "answer_1": {"safe": 0, "helpfulness": 2, "style": 3},
        "answer_2": {"safe": ba, "helpfulness": 5, "style": 8},
    }
    replies = {
        "ab": "r\n" + json.dumps({**a_first, "verdict": "1"}),
        "ba": "r\n" + json.dumps({**b_first, "verdict": "2"}),
    }
    verdict = read_replies(prompts, replies)
    assert verdict.ok and verdict.preference == "a"
    assert verdict.scores["a"] == {"safe": mean, "helpfulness": 5, "style": 8}  # 4.5 and 7.5 round up
