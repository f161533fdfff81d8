"""Researchers create rating tasks (API and form) with checked input, see progress, set gold and adjudicated
scores, and version rubrics; raters reach only the tasks they are on."""

import pytest
from sqlmodel import Session, select

from app.models import RatingCase, Role
from app.rating.rubrics import DEFAULT_DIMENSIONS, parse_dimensions
from app.rating_results.data import stats_rubric
from app.rating_stats.usability import usability
from tests.rating.conftest import full_answer


@pytest.fixture
def people(client_as):
    return client_as(Role.researcher, "res"), client_as(Role.rater, "ra"), client_as(Role.rater, "rb")


def _body(jobs, rater_ids, **extra) -> dict:  # noqa: ANN001
    return {"name": "t", "mode": "absolute", "sampling_a": jobs.a, "raters": rater_ids, "overlap": 1, **extra}


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"overlap": 3}, "overlap", "from 1 to 2"),
        ({"mode": "pairwise"}, "sampling_b", "needs a second sampling job"),
        ({"sampling_a": 99999}, "sampling_a", "sampling job 99999 does not exist"),
        ({"raters": []}, "raters", "raters must list"),
        ({"raters": [424242]}, "raters", "no active user with id 424242"),
        ({"cases": {"kind": "some"}}, "cases", "cases.kind must be one of all, task_type, sample"),
        ({"cases": {"kind": "task_type", "task_type": "nope"}}, "cases", "no prompt matches"),
        ({"cases": {"kind": "sample", "per_type": 0}}, "per_type", "per_type must be a whole number"),
        ({"rubric_version_id": 777}, "rubric_version_id", "rubric version 777 does not exist"),
        ({"name": ""}, "name", "name must be 1 to 200 characters"),
    ],
)
def test_bad_requests_name_their_field(people, jobs, extra, field, words):
    researcher, ra, rb = people
    response = researcher.post("/api/rating/tasks", json={**_body(jobs, [ra.user.id, rb.user.id]), **extra})
    assert response.status_code == 422
    assert response.json()["field"] == field and words in response.json()["detail"]


def test_selections_pick_cases_by_task_type_and_seeded_sample(people, jobs, engine):
    researcher, ra, _ = people

    def cases(**sel) -> list[str]:  # noqa: ANN003
        made = researcher.post(
            "/api/rating/tasks", json=_body(jobs, [ra.user.id], cases=sel, seed=sel.pop("seed", 0))
        )
        assert made.status_code == 201, made.text
        with Session(engine) as s:
            return [
                c.task_type for c in s.exec(select(RatingCase).where(RatingCase.task_id == made.json()["id"]))
            ]

    assert len(cases(kind="all")) == 40
    assert sorted(set(cases(kind="task_type", task_type="math"))) == ["math/algebra", "math/arith"]
    assert set(cases(kind="task_type", task_type="math/arith")) == {"math/arith"}
    level1 = cases(kind="sample", per_type=3, level=1)
    assert len(level1) == 9 and {t.split("/")[0] for t in level1} == {"math", "writing", "qa"}
    assert len(cases(kind="sample", per_type=3, level=2)) == 12


def test_the_form_creates_a_task_and_shows_errors_beside_fields(people, jobs):
    researcher, ra, rb = people
    for lang in ("en", "zh"):
        researcher.cookies.set("lang", lang)
        assert researcher.get("/rating/tasks/new").status_code == 200
    form = {"name": "form task", "mode": "pairwise", "sampling_a": str(jobs.a), "sampling_b": str(jobs.b),
            "raters": [str(ra.user.id), str(rb.user.id)], "overlap": "5", "cases": "all", "seed": "0",
            "csrf_token": researcher.csrf}  # fmt: skip
    bad = researcher.post("/rating/tasks/new", data=form)
    assert bad.status_code == 422 and 'data-error="overlap"' in bad.text
    made = researcher.post("/rating/tasks/new", data={**form, "overlap": "2"}, follow_redirects=False)
    assert made.status_code == 303
    page = researcher.get(made.headers["location"])
    assert page.status_code == 200 and "form task" in page.text and "0 / 80" in page.text
    listing = researcher.get("/rating/tasks")
    assert "form task" in listing.text and 'href="/judges"' in listing.text  # LLM judges, one more rater


def test_progress_means_gold_and_adjudication(people, jobs):
    researcher, ra, rb = people
    made = researcher.post("/api/rating/tasks", json=_body(jobs, [ra.user.id, rb.user.id], overlap=2)).json()
    key, tid = made["task_key"], made["id"]
    for rater in (ra, rb):
        for _ in range(3):
            view = rater.post(f"/api/rate/{key}/next").json()["case"]
            body = full_answer(view, 4) | {"flag": rater is ra, "comment": "odd" if rater is ra else ""}
            assert rater.post(f"/api/rate/a/{view['token']}", json=body).json()["ok"] is True
    assert ra.get("/api/rate").json()[0]["done"] == 3
    history = ra.get("/api/rate/history").json()
    assert len(history) == 3 and history[0]["url"].startswith(f"/rate/{key}?token=")
    detail = researcher.get(f"/api/rating/tasks/{tid}").json()
    assert detail["done"] == 6
    assert {r["rater"]: r["submitted"] for r in detail["raters"]} == {"ra": 3, "rb": 3}
    assert len(detail["flagged"]) == 3 and all(f["comment"] == "odd" for f in detail["flagged"])
    overall = researcher.get(f"/api/rating/{tid}/results").json()["scores"]["a"][0]
    assert overall["task_type"] == "" and overall["dimensions"]["helpfulness"]["mean"] == 4
    assert overall["usability"]["mean"] == pytest.approx(0.75)
    assert len(researcher.get(f"/api/rating/tasks/{tid}/ratings").json()) == 6

    case_id = detail["flagged"][0]["case_id"]
    gold = {"scores": {"helpfulness": 5, "honesty": 5, "harmlessness": 4}}
    assert researcher.post(f"/api/rating/tasks/{tid}/cases/{case_id}/gold", json=gold).status_code == 200
    bad = researcher.post(
        f"/api/rating/tasks/{tid}/cases/{case_id}/gold", json={"scores": {"helpfulness": 9}}
    )
    assert bad.status_code == 422 and "helpfulness: 9 is not allowed" in bad.json()["detail"]
    assert researcher.post(f"/api/rating/tasks/{tid}/cases/999999/gold", json=gold).status_code == 404
    assert researcher.get(f"/api/rating/tasks/{tid}").json()["gold"] == 1
    assert researcher.post(f"/api/rating/cases/{case_id}/adjudication", json=gold).status_code == 200
    assert researcher.post(f"/api/rating/tasks/{tid}/cases/{case_id}/gold", json=None).status_code == 200
    assert researcher.get(f"/api/rating/tasks/{tid}").json()["gold"] == 0
    for lang in ("en", "zh"):
        researcher.cookies.set("lang", lang)
        assert researcher.get(f"/rating/tasks/{tid}").status_code == 200


def test_raters_reach_only_their_tasks_and_never_the_researcher_side(people, jobs, client_as):
    researcher, ra, rb = people
    key = researcher.post("/api/rating/tasks", json=_body(jobs, [ra.user.id])).json()["task_key"]
    token = ra.post(f"/api/rate/{key}/next").json()["case"]["token"]
    assert rb.post(f"/api/rate/{key}/next").status_code == 404  # not on the task: as if it did not exist
    assert rb.get(f"/api/rate/a/{token}").status_code == 404
    assert rb.post(f"/api/rate/a/{token}/skip").status_code == 404
    assert rb.get("/api/rate").json() == []
    for url in (
        "/api/rating/tasks",
        "/api/rating/rubrics",
        "/rating/tasks",
        "/rating/rubrics",
        "/api/sampling",
    ):
        assert ra.get(url).status_code == 403, url
    no_csrf = ra.post(f"/api/rate/{key}/next", headers={"X-CSRF-Token": "0" * 64})
    assert no_csrf.status_code == 403


def test_rubrics_get_a_new_version_on_every_change(people, jobs):
    researcher, ra, _ = people
    listed = researcher.get("/api/rating/rubrics").json()
    assert [r["name"] for r in listed] == ["3H"]
    assert [d["key"] for d in listed[0]["versions"][0]["dimensions"]] == [
        "helpfulness",
        "honesty",
        "harmlessness",
    ]
    dims = [{"key": "follows", "name_en": "Follows the instruction", "scale": "binary", "weight": 2},
            {"key": "facts", "name_en": "Factual accuracy", "name_zh": "事实准确", "scale": "1-10", "weight": 1}]  # fmt: skip
    made = researcher.post("/api/rating/rubrics", json={"name": "custom", "dimensions": dims}).json()
    bad = researcher.post(
        "/api/rating/rubrics", json={"name": "x", "dimensions": [{**dims[0], "scale": "1-7"}]}
    )
    assert bad.status_code == 422 and "scale must be one of binary, 1-5, 1-10" in bad.json()["detail"]
    dup = researcher.post("/api/rating/rubrics", json={"name": "custom", "dimensions": dims})
    assert dup.status_code == 422 and dup.json()["field"] == "name"
    changed = researcher.post(
        f"/api/rating/rubrics/{made['rubric_id']}", json={"dimensions": [{**dims[0], "weight": 1}, dims[1]]}
    ).json()
    assert changed["number"] == 2 and changed["version_id"] != made["version_id"]
    versions = {r["name"]: r["versions"] for r in researcher.get("/api/rating/rubrics").json()}["custom"]
    assert [(v["number"], v["dimensions"][0]["weight"]) for v in versions] == [(2, 1.0), (1, 2.0)]
    task = researcher.post(
        "/api/rating/tasks", json=_body(jobs, [ra.user.id], rubric_version_id=made["version_id"])
    ).json()
    view = ra.post(f"/api/rate/{task['task_key']}/next").json()["case"]
    assert [(d["key"], d["min"], d["max"]) for d in view["dimensions"]] == [
        ("follows", 0, 1),
        ("facts", 1, 10),
    ]
    wrong = ra.post(f"/api/rate/a/{view['token']}", json={"scores": {"follows": 2, "facts": 3}})
    assert (
        wrong.status_code == 422
        and wrong.json()["detail"] == "follows: 2 is not allowed; the scale binary takes 0 to 1"
    )
    assert researcher.get("/rating/rubrics").status_code == 200


def test_usability_of_the_stored_3h_is_the_weighted_scaled_mean_and_recomputes_with_new_weights():
    """Stored dimensions reach the statistics package's usability (what the results page computes)."""
    dims = parse_dimensions(DEFAULT_DIMENSIONS)
    scores = {"helpfulness": 5, "honesty": 3, "harmlessness": 1}
    assert usability(scores, stats_rubric(dims, 0.6)) == pytest.approx(0.5)
    reweighted = parse_dimensions(
        [{**d, "weight": w} for d, w in zip(DEFAULT_DIMENSIONS, (2, 1, 1), strict=True)]
    )
    assert usability(scores, stats_rubric(reweighted, 0.6)) == pytest.approx((2 * 1 + 0.5 + 0) / 4)
    assert usability({}, stats_rubric(dims, 0.6)) is None


def test_the_page_forms_set_gold_and_version_rubrics(people, jobs, engine):
    researcher, ra, _ = people
    tid = researcher.post("/api/rating/tasks", json=_body(jobs, [ra.user.id])).json()["id"]
    with Session(engine) as s:
        first_case = s.exec(select(RatingCase.id).where(RatingCase.task_id == tid)).first()
    form = {"csrf_token": researcher.csrf, "scores": '{"helpfulness": 5, "honesty": 4, "harmlessness": 5}'}
    bad = researcher.post(f"/rating/tasks/{tid}/gold", data={**form, "case_id": "999999"})
    assert bad.status_code == 422 and f"task {tid} has no case 999999" in bad.text
    not_json = researcher.post(
        f"/rating/tasks/{tid}/gold", data={**form, "case_id": str(first_case), "scores": "{"}
    )
    assert not_json.status_code == 422 and "scores must be JSON" in not_json.text
    ok = researcher.post(
        f"/rating/tasks/{tid}/gold", data={**form, "case_id": str(first_case)}, follow_redirects=False
    )
    assert ok.status_code == 303 and researcher.get(f"/api/rating/tasks/{tid}").json()["gold"] == 1
    assert "Gold case saved." in researcher.get(ok.headers["location"]).text

    rubric = {"csrf_token": researcher.csrf, "name": "form rubric", "usable_threshold": "0.5",
              "dimensions": '[{"key": "format", "name_en": "Format", "scale": "binary", "weight": 1}]'}  # fmt: skip
    assert researcher.post("/rating/rubrics", data=rubric, follow_redirects=False).status_code == 303
    broken = researcher.post("/rating/rubrics", data={**rubric, "name": "other", "dimensions": "[{"})
    assert broken.status_code == 422 and "dimensions must be a JSON list" in broken.text
    listed = {r["name"]: r for r in researcher.get("/api/rating/rubrics").json()}
    rid = listed["form rubric"]["id"]
    again = {
        **rubric,
        "rubric_id": str(rid),
        "dimensions": rubric["dimensions"].replace('"weight": 1', '"weight": 3'),
    }
    assert researcher.post("/rating/rubrics", data=again, follow_redirects=False).status_code == 303
    versions = {r["name"]: r for r in researcher.get("/api/rating/rubrics").json()}["form rubric"]["versions"]
    assert [(v["number"], v["dimensions"][0]["weight"]) for v in versions] == [(2, 3.0), (1, 1.0)]
    for lang in ("en", "zh"):
        researcher.cookies.set("lang", lang)
        assert researcher.get("/rating/rubrics").status_code == 200


def test_skip_undo_and_edit_through_the_api(people, jobs):
    researcher, ra, _ = people
    key = researcher.post("/api/rating/tasks", json=_body(jobs, [ra.user.id])).json()["task_key"]
    first = ra.post(f"/api/rate/{key}/next").json()
    assert first["progress"] == {"done": 0, "total": 40}
    token = first["case"]["token"]
    assert ra.post(f"/api/rate/a/{token}/skip").json() == {"ok": True}
    assert ra.post(f"/api/rate/a/{token}", json=full_answer(first["case"])).status_code == 409
    nxt = ra.post(f"/api/rate/{key}/next", json={"exclude": []}).json()
    assert (
        nxt["case"]["token"] != token and nxt["progress"]["total"] == 39
    )  # the skipped case is gone for good
    stored = ra.post(f"/api/rate/a/{nxt['case']['token']}", json=full_answer(nxt["case"], 2)).json()
    assert stored == {"ok": True, "progress": {"done": 1, "total": 39}}
    undone = ra.post(f"/api/rate/{key}/undo").json()
    assert undone["case"]["token"] == nxt["case"]["token"] and undone["case"]["submitted"] is None
    assert undone["progress"]["done"] == 0
    ra.post(f"/api/rate/a/{nxt['case']['token']}", json=full_answer(nxt["case"], 2))
    edit = full_answer(nxt["case"], 5) | {"comment": "second thoughts"}
    assert ra.post(f"/api/rate/a/{nxt['case']['token']}", json=edit).json()["progress"]["done"] == 1
    again = ra.get(f"/api/rate/a/{nxt['case']['token']}").json()["submitted"]
    assert again["comment"] == "second thoughts" and set(again["scores"].values()) == {5}
    bad = ra.post(f"/api/rate/{key}/next", json={"exclude": "all"})
    assert bad.status_code == 422 and "exclude" in bad.json()["detail"]
    assert ra.post(f"/api/rate/{key}/undo").json()["case"]["token"] == nxt["case"]["token"]


def test_usability_is_recomputed_with_another_versions_weights_without_re_rating(people, jobs):
    researcher, ra, _ = people
    dims = [{"key": "good", "name_en": "Good", "scale": "1-5", "weight": 1},
            {"key": "safe", "name_en": "Safe", "scale": "binary", "weight": 1}]  # fmt: skip
    v1 = researcher.post("/api/rating/rubrics", json={"name": "two", "dimensions": dims}).json()
    tid = researcher.post(
        "/api/rating/tasks", json=_body(jobs, [ra.user.id], rubric_version_id=v1["version_id"])
    ).json()
    view = ra.post(f"/api/rate/{tid['task_key']}/next").json()["case"]
    ra.post(f"/api/rate/a/{view['token']}", json={"scores": {"good": 5, "safe": 0}})
    v2 = researcher.post(
        f"/api/rating/rubrics/{v1['rubric_id']}", json={"dimensions": [{**dims[0], "weight": 3}, dims[1]]}
    ).json()

    def usability(**params) -> float:  # noqa: ANN003
        results = researcher.get(f"/api/rating/{tid['id']}/results", params=params).json()
        return results["scores"]["a"][0]["usability"]["mean"]

    assert usability() == pytest.approx(0.5)
    assert usability(version=v2["version_id"]) == pytest.approx(0.75)
    page = researcher.get(f"/rating/{tid['id']}/results", params={"version": v2["version_id"]})
    assert page.status_code == 200 and "0.75" in page.text
    other = researcher.get("/api/rating/rubrics").json()[0]["versions"][0]["id"]  # the 3H default's
    wrong = researcher.get(f"/api/rating/{tid['id']}/results", params={"version": other})
    assert wrong.status_code == 422 and "not a version of this task's rubric" in wrong.json()["detail"]
    # the task page has no figures of its own: it links to the results, the one place they are computed
    assert f'href="/rating/{tid["id"]}/results"' in researcher.get(f"/rating/tasks/{tid['id']}").text


def test_a_version_is_handed_to_the_statistics_in_their_shape(engine):
    from app.rating.rubrics import default_version, stats_json

    with Session(engine) as s:
        shape = stats_json(default_version(s))
    assert shape["threshold"] == 0.6
    assert shape["dimensions"][0] == {
        "key": "helpfulness",
        "scale": "1-5",
        "weight": 1.0,
        "guidance": DEFAULT_DIMENSIONS[0]["guidance_en"],
    }
    assert {k for d in shape["dimensions"] for k in d} == {"key", "scale", "weight", "guidance"}


def test_only_the_owner_or_an_admin_changes_gold_and_adjudications(people, jobs, client_as, engine):
    researcher, ra, _ = people
    tid = researcher.post("/api/rating/tasks", json=_body(jobs, [ra.user.id])).json()["id"]
    with Session(engine) as s:
        case_id = s.exec(select(RatingCase.id).where(RatingCase.task_id == tid)).first()
    gold = {"scores": {"helpfulness": 5, "honesty": 5, "harmlessness": 4}}
    other = client_as(Role.researcher, "another-researcher")
    assert other.get(f"/rating/tasks/{tid}").status_code == 200  # researchers read every task
    refused = other.post(f"/api/rating/tasks/{tid}/cases/{case_id}/gold", json=gold)
    assert refused.status_code == 403 and "owner or an admin" in refused.json()["detail"]
    assert other.post(f"/api/rating/cases/{case_id}/adjudication", json=gold).status_code == 403
    assert other.post(f"/rating/tasks/{tid}/gold", data={"case_id": str(case_id)}).status_code == 403
    assert researcher.get(f"/api/rating/tasks/{tid}").json()["gold"] == 0
    admin = client_as(Role.admin, "the-admin")
    assert admin.post(f"/api/rating/tasks/{tid}/cases/{case_id}/gold", json=gold).status_code == 200
