"""Judge configurations through the API and the pages: the key never comes back (pages, API, errors), the
judge's rater account cannot log in, prompt edits are versions, refusals name their field, owners only
change, and the job page lists failures (in Chinese too) and position consistency."""

from __future__ import annotations

import json
import re

from sqlmodel import Session, select

from app.judge.keys import decrypt_key
from app.judge.prompts import default_template
from app.models import JudgeConfig, JudgePrompt, RatingTask, Role, User
from app.rating_results.results import task_results
from tests.conftest import PASSWORD
from tests.judging.conftest import N, rating_task
from tests.judging.fake_judge import KEY
from worker.runner import execute

BODY = {"name": "Strict judge", "kind": "endpoint", "base_url": "http://127.0.0.1:9/v1", "model": "judge-1"}


def no_key(text: str, token: str) -> None:
    assert KEY not in text and KEY[-12:] not in text and not (token and token in text)


def test_the_key_is_stored_encrypted_and_never_returned(judging, researcher, engine):
    created = researcher.post("/api/judges", json={**BODY, "key": KEY})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert created.json()["key"] == {"set": True, "last4": "CRET", "needs_reentry": False}
    with Session(engine) as session:
        token = session.get_one(JudgeConfig, cid).key_token or ""
    assert token and KEY not in token and decrypt_key(token, secret_key=judging.secret_key) == KEY
    responses = [
        created,
        researcher.get("/api/judges"),
        researcher.get(f"/api/judges/{cid}"),
        researcher.get("/judges"),
        researcher.get(f"/judges/{cid}"),
        researcher.put(f"/api/judges/{cid}", json={**BODY, "temperature": 9}),
        researcher.post(f"/judges/{cid}", data={**BODY, "temperature": "9", "csrf_token": researcher.csrf}),
        researcher.post(f"/api/judges/{cid}/jobs", json={"task_id": 999}),
        researcher.put(f"/api/judges/{cid}", json=BODY),  # no "key": the stored one is kept
    ]
    for response in responses:
        assert response.status_code < 500
        no_key(response.text, token)
    assert [r.status_code for r in responses[:5]] == [201, 200, 200, 200, 200]
    assert [r.status_code for r in responses[5:8]] == [422, 422, 422]
    assert "…CRET" in responses[4].text  # the edit page says which key is set, by its last four
    assert responses[5].json()["field"] == "temperature"
    assert "temperature must be between 0 and 2" in responses[6].text
    with Session(engine) as session:
        assert session.get_one(JudgeConfig, cid).key_token == token
    # The form with an empty key field keeps it too; the box clears it.
    form = {**BODY, "key": "", "csrf_token": researcher.csrf}
    assert researcher.post(f"/judges/{cid}", data=form, follow_redirects=False).status_code == 303
    assert researcher.get(f"/api/judges/{cid}").json()["key"]["set"] is True
    researcher.post(f"/judges/{cid}", data={**form, "clear_key": "on"}, follow_redirects=False)
    assert researcher.get(f"/api/judges/{cid}").json()["key"] == {
        "set": False,
        "last4": "",
        "needs_reentry": False,
    }


def test_the_judge_is_a_rater_that_cannot_log_in(judging, researcher, engine, client):
    cid = researcher.post("/api/judges", json=BODY).json()["id"]
    with Session(engine) as session:
        account = session.get_one(User, session.get_one(JudgeConfig, cid).user_id)
    assert account.username == f"judge-{cid}-strict-judge"
    assert (account.role, account.is_active) == (Role.rater, False)
    for password in ("", PASSWORD, account.password_hash):
        response = client.post("/login", data={"username": account.username, "password": password})
        assert response.status_code != 303


def test_prompt_edits_are_versions_and_defaults_are_not_stored(judging, researcher, engine):
    default = default_template("single", "en").text
    edited = default.replace("You are an impartial judge", "You are a very strict judge")
    cid = researcher.post("/api/judges", json={**BODY, "templates": {"single": edited}}).json()["id"]
    shown = researcher.get(f"/api/judges/{cid}").json()["templates"]
    assert shown["single"]["edited"] and shown["single"]["text"] == edited
    assert (
        not shown["pairwise"]["edited"]
        and shown["pairwise"]["version"] == default_template("pairwise", "en").version
    )
    first = shown["single"]["version"]
    again = researcher.put(
        f"/api/judges/{cid}", json={**BODY, "templates": {"single": edited + "\nBe brief."}}
    )
    second = again.json()["templates"]["single"]["version"]
    assert second != first
    with Session(engine) as session:
        assert {p.version for p in session.exec(select(JudgePrompt)).all()} == {first, second}
    back = researcher.put(f"/api/judges/{cid}", json={**BODY, "templates": {"single": None}})
    assert back.json()["templates"]["single"] == {"version": default_template("single", "en").version, "edited": False,
                                                   "text": default}  # fmt: skip
    bad = researcher.put(f"/api/judges/{cid}", json={**BODY, "templates": {"single": "Judge {{answer}}"}})
    assert bad.status_code == 422 and bad.json()["field"] == "templates.single"
    assert "must contain {{question}}" in bad.json()["detail"]
    # The form: a prompt left as the default is no edit.
    form = {**BODY, "csrf_token": researcher.csrf, "template_single": default, "groups": "qa = reasoning"}
    assert researcher.post(f"/judges/{cid}", data=form, follow_redirects=False).status_code == 303
    shown = researcher.get(f"/api/judges/{cid}").json()
    assert not shown["templates"]["single"]["edited"] and shown["groups"] == {"qa": "reasoning"}


def test_refusals_name_their_field(judging, researcher):
    cases = [
        ({**BODY, "name": ""}, "name"),
        ({**BODY, "kind": "magic"}, "kind"),
        ({**BODY, "base_url": "ftp://x"}, "base_url"),
        ({**BODY, "model": " "}, "model"),
        ({**BODY, "max_tokens": 1.5}, "max_tokens"),
        ({**BODY, "max_tokens": 0}, "max_tokens"),
        ({**BODY, "temperature": "hot"}, "temperature"),
        ({**BODY, "groups": {"qa": "poetry"}}, "groups"),
        ({**BODY, "templates": {"nonsense": "x"}}, "templates"),
        ({**BODY, "kind": "local", "model_ref": "relative/path"}, "model_ref"),
        ({**BODY, "lang": "fr"}, "lang"),
        ("not an object", "body"),
    ]
    for body, field in cases:
        response = researcher.post("/api/judges", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field, (body, response.json())


def test_only_the_owner_changes_a_judge_and_raters_see_nothing(judging, researcher, client_as):
    cid = researcher.post("/api/judges", json=BODY).json()["id"]
    other = client_as(Role.researcher, "other")
    assert other.get(f"/api/judges/{cid}").status_code == 200
    assert other.put(f"/api/judges/{cid}", json=BODY).status_code == 403
    assert other.post(f"/api/judges/{cid}/jobs", json={"task_id": 1}).status_code == 403
    rater = client_as(Role.rater, "rater-x")
    assert rater.get("/api/judges").status_code == 403 and rater.get(f"/judges/{cid}").status_code == 403
    admin = client_as(Role.admin, "boss")
    assert admin.put(f"/api/judges/{cid}", json={**BODY, "name": "renamed"}).status_code == 200


def test_the_job_page_lists_failures_and_consistency(
    judging, researcher, engine, pairs, make_user, fake_judge
):
    task, _ = rating_task(engine, pairs, make_user)
    cid = researcher.post("/api/judges", json={**BODY, "base_url": fake_judge.url, "key": KEY}).json()["id"]
    started = researcher.post(f"/api/judges/{cid}/jobs", json={"task_id": task.id})
    assert started.status_code == 201, started.text
    jid = started.json()["id"]
    assert execute(started.json()["job_id"])
    api = researcher.get(f"/api/judges/jobs/{jid}").json()
    assert api["status"] == "succeeded" and api["rated"] == N - 1 and api["failed"] == 1
    assert [row["task_type"] for row in api["consistency"]][-1] == "*"
    page = researcher.get(f"/judges/jobs/{jid}")
    assert page.status_code == 200
    assert "no JSON object with scores at the end of the reply" in page.text
    assert 'data-task-type="math/algebra"' in page.text
    no_key(page.text, "")
    researcher.cookies.set("lang", "zh")
    zh = researcher.get(f"/judges/jobs/{jid}")
    assert re.search("顺序 (AB|BA)：回复末尾没有包含分数的 JSON 对象", zh.text) and "位置一致性" in zh.text
    fragment = researcher.get(f"/judges/jobs/{jid}", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith("<section") and "<html" not in fragment.text
    # A finished job cannot be cancelled: a 409 that says why; a succeeded one resumed only to nothing.
    refused = researcher.post(f"/api/judges/jobs/{jid}/cancel")
    assert refused.status_code == 409 and "already succeeded" in refused.json()["detail"]
    results = researcher.get(f"/api/judges/jobs/{jid}/results").json()
    assert len(results) == N and sum(r["outcome"] == "ok" for r in results) == N - 1
    ok = next(r for r in results if r["outcome"] == "ok")
    assert ok["detail"]["ab"]["explanation"].startswith("Answer 1 and answer 2 compared")
    assert ok["template_version"].startswith("pairwise_ref:") and ok["verdict_ab"] in ("1", "2", "tie")
    # The judge's ratings reach the task's ratings, which the agreement view reads, under its account.
    rater = json.loads(researcher.get(f"/api/judges/{cid}").text)["rater"]
    assert rater.startswith(f"judge-{cid}-")
    rows = researcher.get(f"/api/rating/tasks/{task.id}/ratings").json()
    assert len(rows) == N - 1 and {r["rater"] for r in rows} == {rater}
    assert {r["preference"] for r in rows} <= {"a", "b", "tie"}
    # The jobs list links the job to its page; the results page reads the judge against the raters.
    jobs = researcher.get("/api/jobs?kind=judge").json()
    assert [(r["id"], r["link"]) for r in jobs] == [(started.json()["job_id"], f"/judges/jobs/{jid}")]
    with Session(engine) as s:  # the task belongs to the sampling jobs' owner, not this researcher
        judged = task_results(s, s.get(RatingTask, task.id))
    assert judged["task"]["judge_ratings"] == N - 1 and {j["judge"] for j in judged["judges"]} == {rater}


def test_the_route_walk_covers_the_judge_routes():
    from tests.api.test_route_access import all_endpoints

    endpoints, _ = all_endpoints()
    judge = {
        (e.method, e.template): e.levels
        for e in endpoints
        if e.template.startswith(("/judges", "/api/judges"))
    }
    assert len(judge) == 15 and all(levels == ["researcher"] for levels in judge.values()), judge


def test_the_judge_pages_speak_chinese(judging, researcher):
    cid = researcher.post("/api/judges", json={**BODY, "key": KEY}).json()["id"]
    researcher.cookies.set("lang", "zh")
    for path, chinese, english in (
        ("/judges", ("LLM 评审", "新建评审", "提示语言", "维度组"), ("New judge", "Prompt language")),
        (
            f"/judges/{cid}",
            ("评分员账号", "评审一个评分任务", "已设置密钥，末四位"),
            ("Rater account", "a key is set"),
        ),
    ):
        page = researcher.get(path)
        assert page.status_code == 200
        assert all(word in page.text for word in chinese), path
        assert not any(word in page.text for word in english), path
