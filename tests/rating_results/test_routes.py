"""The results page, its API, exports and adjudication: rendering in English and Chinese, escaping,
who may see and change what, CSRF, and clear refusals of bad input."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from app.models import Adjudication, Role, Rubric
from app.rating import rubrics
from tests.api.test_route_access import all_endpoints
from tests.rating_results.conftest import add_judge, make_task, rate, rate_small, s3

NEW_ROUTES = {
    ("GET", "/rating/{task_id}/results"),
    ("GET", "/api/rating/{task_id}/results"),
    ("GET", "/api/rating/{task_id}/results.csv"),
    ("GET", "/api/rating/{task_id}/ratings.jsonl"),
    ("POST", "/api/rating/cases/{case_id}/adjudication"),
}


@pytest.fixture
def owned(engine, make_user, researcher):
    task = make_task(engine, make_user, owner_id=researcher.user.id)
    rate_small(engine, task)
    return task


def test_the_route_walk_covers_the_results_routes():
    endpoints, _ = all_endpoints()
    found = {(e.method, e.template): e.level for e in endpoints}
    assert {k: found.get(k) for k in NEW_ROUTES} == dict.fromkeys(NEW_ROUTES, "researcher")


def test_page_renders_in_english_and_chinese_with_user_content_escaped(researcher, owned):
    page = researcher.get(f"/rating/{owned.id}/results")
    assert page.status_code == 200
    html = page.text
    for section in ("scores", "agreement", "disputes", "gold"):
        assert f'data-section="{section}"' in html
    assert "Usability and dimensions" in html and "<svg" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "not enough overlap" in html  # rater1 and rater3 share one case: no kappa for that pair
    researcher.cookies.set("lang", "zh")
    zh = researcher.get(f"/rating/{owned.id}/results")
    assert zh.status_code == 200
    assert "可用性与各维度" in zh.text and "有用性" in zh.text and "重叠不足" in zh.text
    assert "Usability and dimensions" not in zh.text


def test_htmx_gets_the_body_alone(researcher, owned):
    fragment = researcher.get(f"/rating/{owned.id}/results?adjudicated=true", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'data-section="scores"' in fragment.text


def test_task_page_links_to_results(researcher, owned):
    assert f'href="/rating/{owned.id}/results"' in researcher.get(f"/rating/tasks/{owned.id}").text


def test_roles_and_owners(client_as, researcher, owned, client):
    rater = client_as(Role.rater, "some-rater")
    other = client_as(Role.researcher, "other-researcher")
    admin = client_as(Role.admin, "boss")
    case = owned.cases[0].id
    for path in (
        f"/rating/{owned.id}/results",
        f"/api/rating/{owned.id}/results",
        f"/api/rating/{owned.id}/results.csv",
        f"/api/rating/{owned.id}/ratings.jsonl",
    ):
        assert rater.get(path).status_code == 403, path
        assert other.get(path).status_code == 403, path
        assert admin.get(path).status_code == 200, path
        assert researcher.get(path).status_code == 200, path
    assert researcher.get("/api/rating/999999/results").status_code == 404
    assert (
        client.get(f"/rating/{owned.id}/results", follow_redirects=False)
        .headers["location"]
        .startswith("/login")
    )
    body = {"scores": s3(3, 3, 3)}
    assert rater.post(f"/api/rating/cases/{case}/adjudication", json=body).status_code == 403
    assert other.post(f"/api/rating/cases/{case}/adjudication", json=body).status_code == 403
    assert admin.post(f"/api/rating/cases/{case}/adjudication", json=body).status_code == 200


def test_adjudication_needs_the_csrf_token(researcher, owned, engine):
    case = owned.cases[0].id
    url = f"/api/rating/cases/{case}/adjudication"
    refused = researcher.post(url, json={"scores": s3(3, 3, 3)}, headers={"X-CSRF-Token": "0" * 64})
    assert refused.status_code == 403
    with Session(engine) as s:
        assert s.exec(select(Adjudication)).first() is None


def test_the_form_stores_an_adjudication_and_the_toggle_applies_it(researcher, owned, engine):
    case = owned.cases[2]
    page = researcher.get(f"/rating/{owned.id}/results").text
    assert f'action="/api/rating/cases/{case.id}/adjudication"' in page
    form = {
        "csrf_token": researcher.csrf,
        "score.helpfulness": "5",
        "score.honesty": "5",
        "score.harmlessness": "5",
    }
    token, researcher.csrf = researcher.csrf, ""  # no header: the form's own field must be enough
    posted = researcher.post(f"/api/rating/cases/{case.id}/adjudication", data=form, follow_redirects=False)
    researcher.csrf = token
    assert posted.status_code == 303, posted.text
    assert posted.headers["location"] == f"/rating/{owned.id}/results?adjudicated=true#case-{case.id}"
    with Session(engine) as s:
        stored = s.exec(select(Adjudication).where(Adjudication.case_id == case.id)).one()
        assert json.loads(stored.scores_json) == s3(5, 5, 5) and stored.by_id == researcher.user.id
    plain = researcher.get(f"/api/rating/{owned.id}/results").json()
    settled = researcher.get(f"/api/rating/{owned.id}/results?adjudicated=true").json()
    assert plain["scores"]["a"][0]["dimensions"]["helpfulness"]["mean"] == pytest.approx(3.5)
    assert settled["scores"]["a"][0]["dimensions"]["helpfulness"]["mean"] == pytest.approx(4.25)
    assert settled["scores"]["a"][0]["adjudicated"] == 1
    html = researcher.get(f"/rating/{owned.id}/results?adjudicated=true").text
    assert 'name="adjudicated" value="true" checked' in html


def test_bad_adjudications_are_refused_with_what_is_wrong(researcher, owned):
    url = f"/api/rating/cases/{owned.cases[0].id}/adjudication"
    out_of_scale = researcher.post(url, json={"scores": s3(9, 3, 3)})
    assert out_of_scale.status_code == 422 and "helpfulness" in out_of_scale.json()["detail"]
    missing = researcher.post(url, json={"scores": {"helpfulness": 3}})
    assert missing.status_code == 422 and "honesty: missing" in missing.json()["detail"]
    assert (
        researcher.post(url, content=b"{not json", headers={"content-type": "application/json"}).status_code
        == 422
    )
    assert researcher.post(url, content=b"{}", headers={"content-type": "text/plain"}).status_code == 415
    assert researcher.post("/api/rating/cases/999999/adjudication", json={}).status_code == 404
    form = {
        "csrf_token": researcher.csrf,
        "score.helpfulness": "x",
        "score.honesty": "3",
        "score.harmlessness": "3",
    }
    page = researcher.post(url, data=form, follow_redirects=False)
    assert page.status_code == 422
    assert 'data-error-case="' in page.text and "helpfulness" in page.text


def test_a_version_must_be_one_of_the_tasks_rubric(researcher, owned, engine):
    assert researcher.get(f"/api/rating/{owned.id}/results?version=abc").status_code == 422
    with Session(engine) as s:
        other = rubrics.create_rubric(
            s, name="other", body={"dimensions": [{"key": "x", "name_en": "X"}]}, owner_id=1
        )
        other_id = other.id
    refused = researcher.get(f"/api/rating/{owned.id}/results?version={other_id}")
    assert refused.status_code == 422 and "not a version of this task's rubric" in refused.json()["detail"]
    assert researcher.get(f"/rating/{owned.id}/results?version={other_id}").status_code == 422


def test_exports(researcher, owned):
    csv_response = researcher.get(f"/api/rating/{owned.id}/results.csv")
    assert csv_response.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_response.headers["content-disposition"]
    assert csv_response.text.splitlines()[0].startswith("task_type,case_id,sample_id,rater1.helpfulness")
    lines = researcher.get(f"/api/rating/{owned.id}/ratings.jsonl").text.splitlines()
    assert len(lines) == 8
    first = json.loads(lines[0])
    assert first["rater"] == "rater1" and first["scores"] == s3(4, 5, 5)


def test_pairwise_page_names_a_and_b_for_the_researcher(engine, make_user, researcher):
    task = make_task(engine, make_user, mode="pairwise", owner_id=researcher.user.id)
    both = {"a": s3(4, 4, 4), "b": s3(2, 2, 2)}
    rate(engine, task, task.cases[0], "rater1", both, preference="a")
    rate(engine, task, task.cases[0], "rater2", both, preference="tie")
    html = researcher.get(f"/rating/{task.id}/results").text
    assert 'data-section="pairwise"' in html and "run:9871/step-00004242" in html
    assert "/models/omega-mistral-asdfgh-B" in html
    assert 'name="score.a.helpfulness"' in html and 'name="preference"' in html
    assert "63%" in html and "81%" in html


def test_a_preference_only_task_is_adjudicated_by_its_preference(engine, make_user, researcher):
    task = make_task(engine, make_user, mode="pairwise", owner_id=researcher.user.id, score_sides=False)
    empty = {"a": {}, "b": {}}
    rate(engine, task, task.cases[0], "rater1", empty, preference="a")
    rate(engine, task, task.cases[0], "rater2", empty, preference="b")
    r = researcher.get(f"/api/rating/{task.id}/results").json()
    assert r["scores"] == {} and r["task"]["score_sides"] is False
    assert r["pairwise"][0]["counts"] == {"win": 1, "tie": 0, "loss": 1}
    assert [d["case_id"] for d in r["disputes"]] == [task.cases[0].id]  # a split preference is a dispute
    html = researcher.get(f"/rating/{task.id}/results").text
    assert "data-preference-only" in html and 'name="score.' not in html
    form = {"csrf_token": researcher.csrf, "preference": "tie"}
    posted = researcher.post(
        f"/api/rating/cases/{task.cases[0].id}/adjudication", data=form, follow_redirects=False
    )
    assert posted.status_code == 303, posted.text
    after = researcher.get(f"/api/rating/{task.id}/results?adjudicated=true").json()
    assert after["pairwise"][0]["counts"] == {"win": 0, "tie": 1, "loss": 0}
    csv_lines = researcher.get(f"/api/rating/{task.id}/results.csv").text.splitlines()
    assert len(csv_lines) == 1 + 8


def test_the_form_checks_against_the_tasks_version_and_returns_to_the_one_shown(engine, researcher, owned):
    with Session(engine) as s:
        rubric = s.exec(select(Rubric).where(Rubric.name == rubrics.DEFAULT_NAME)).one()
        dims = [{"key": "helpfulness", "name_en": "Helpfulness", "scale": "1-5", "weight": 1}]
        v2 = rubrics.new_version(s, rubric=rubric, body={"dimensions": dims}, by=1).id
    case = owned.cases[0].id
    html = researcher.get(f"/rating/{owned.id}/results?version={v2}").text
    # The task's three dimensions are asked for even while the page shows version 2's one.
    assert html.count(f'name="version" value="{v2}"') >= 1
    assert 'name="score.harmlessness"' in html
    form = {"csrf_token": researcher.csrf, "version": str(v2), **{f"score.{k}": "3" for k in s3(3, 3, 3)}}
    posted = researcher.post(f"/api/rating/cases/{case}/adjudication", data=form, follow_redirects=False)
    assert (
        posted.headers["location"] == f"/rating/{owned.id}/results?version={v2}&adjudicated=true#case-{case}"
    )
    bad = researcher.post(f"/api/rating/cases/{case}/adjudication", data={**form, "version": "x"})
    assert bad.status_code == 422


def test_a_judges_agreement_with_the_raters_has_its_own_table(researcher, owned, engine, make_user):
    add_judge(engine, make_user, owned, [None] * 4, s3(4, 4, 4), name="judge-7-<b>local</b>")
    page = researcher.get(f"/rating/{owned.id}/results").text
    assert 'data-section="judges-table"' in page
    assert "judge-7-&lt;b&gt;local&lt;/b&gt;" in page and "<b>local</b>" not in page
    assert (
        'data-judge="judge-7-&lt;b&gt;local&lt;/b&gt;" data-task-type="" data-dimension="a.helpfulness"'
        in page
    )
