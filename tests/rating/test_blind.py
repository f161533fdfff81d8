"""Blindness: every response a rater can get (API answers, errors, redirects, the /rate pages where they exist)
carries no model reference, path, job name, parameter, timing or numeric id of a case, generation, job or
sampling job, and which side is left does not follow the model."""

import re

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import text
from sqlmodel import Session, select

from app.models import RatingCase, Role
from tests.rating.conftest import SECRETS, full_answer, make_jobs

CASES = 200
ID_BASE = 730001
# Everything the jobs carry that could tell a rater which model wrote an answer.
LEAKS = [
    *(v for secret in SECRETS.values() for v in secret.values()),
    "9871",
    "4242",
    "zeta",
    "omega",
    "qwerty",
    "asdfgh",
    "llama",
    "mistral",
    "0.123456",
    "0.777",
    "3.14159",
    "9.8.7-secret",
    "im_start",
    "transformers",
    "temperature",
    "sampling",
]
CASE_KEYS = {"token", "mode", "task_type", "system", "prompt", "history", "reference", "answers", "dimensions",
             "identity_flag", "submitted",
             # the same texts rendered safely by the server (app.rendering.markdown.render_case_html)
             "system_html", "prompt_html", "reference_html", "diff_html"}  # fmt: skip


class Recorder:
    """Calls the rater API and keeps every response (status, headers, body) for the final search."""

    def __init__(self, client) -> None:  # noqa: ANN001
        self.client = client
        self.seen: list[str] = []

    def __call__(self, method: str, url: str, **kw):  # noqa: ANN003, ANN204
        response = self.client.request(method, url, follow_redirects=False, **kw)
        assert response.status_code < 500, (url, response.text)
        headers = " ".join(f"{k}: {v}" for k, v in response.headers.items() if k.lower() != "set-cookie")
        self.seen.append(f"{method} {url} -> {response.status_code} {headers}\n{response.text}")
        return response


@pytest.fixture
def setup(engine, client_as):
    jobs = make_jobs(engine, n=CASES, id_base=ID_BASE)
    researcher = client_as(Role.researcher, "boss")
    rater, other = client_as(Role.rater, "blind1"), client_as(Role.rater, "blind2")
    made = researcher.post(
        "/api/rating/tasks",
        json={
            "name": "weekly check",
            "mode": "pairwise",
            "sampling_a": jobs.a,
            "sampling_b": jobs.b,
            "raters": [rater.user.id, other.user.id],
            "overlap": 1,
        },  # fmt: skip
    )
    assert made.status_code == 201, made.text
    task_id = made.json()["id"]
    with Session(engine) as s:  # case ids as distinctive as the others, so a leak of one is findable
        s.exec(text("UPDATE ratingcase SET id = id + 760000 WHERE task_id = :t").bindparams(t=task_id))  # type: ignore[call-overload]
        s.commit()
        cases = s.exec(select(RatingCase).where(RatingCase.task_id == task_id)).all()
    ids = {str(c.id) for c in cases} | {str(i) for i in (jobs.a, jobs.b, *jobs.job_ids, *jobs.generation_ids)}
    return made.json()["task_key"], rater, other, ids, {c.sample_id: c.swapped for c in cases}


def test_nothing_a_rater_receives_names_or_numbers_the_models(setup, client_as):
    task_key, rater, other, ids, swapped = setup
    call = Recorder(rater)
    call("GET", "/api/rate")
    left_is_b = []
    tokens = []
    view = call("POST", f"/api/rate/{task_key}/next").json()["case"]
    while view is not None:
        assert set(view) == CASE_KEYS and view["identity_flag"] is False
        left = view["answers"][0]["text"]
        left_is_b.append(left.startswith("answer B"))
        tokens.append(view["token"])
        n = len(tokens)
        call("GET", f"/api/rate/a/{view['token']}")
        if n == 1:  # errors carry no ids either
            call(
                "POST",
                f"/api/rate/a/{view['token']}",
                json={"scores": {"left": {"x": 1}}, "preference": "left"},
            )
            call(
                "POST",
                f"/api/rate/a/{view['token']}",
                json={"scores": {"left": {}, "right": {}}, "preference": "up"},
            )
            call(
                "POST",
                f"/api/rate/a/{view['token']}",
                content=b"not json",
                headers={"content-type": "text/plain"},
            )
        if n % 50 == 7:
            call("POST", f"/api/rate/a/{view['token']}/skip")
        else:
            call("POST", f"/api/rate/a/{view['token']}", json=full_answer(view))
        if n % 60 == 3:
            call("POST", f"/api/rate/{task_key}/undo")
        view = call("POST", f"/api/rate/{task_key}/next", json={"exclude": []}).json()["case"]
    assert len(tokens) >= CASES - 2  # the other rater took nothing; skipped ones stay with them
    call("GET", "/api/rate/history")
    call("POST", f"/api/rate/{task_key}/undo")
    for url in ("/api/rate/a/nope", f"/api/rate/{task_key}x/next", "/api/rate/a/" + "x" * 80):
        call("POST", url)
    theirs = other.post(f"/api/rate/{task_key}/next").json()["case"]
    assert theirs is not None  # the cases rater 1 skipped
    assert call("GET", f"/api/rate/a/{theirs['token']}").status_code == 404  # another rater's token
    # Pages under /rate (the rater page's branch adds them) and the old /rating entry, as the rater.
    for rc in iter_route_contexts(rater.app.routes):
        path = str(rc.path)
        if path.startswith("/rate") and not path.startswith("/api/") and "GET" in (rc.methods or ()):
            call("GET", path.replace("{task_key}", task_key).replace("{token}", tokens[0]))
    call("GET", "/rating")
    call("GET", f"/rate/{task_key}?token={tokens[0]}")

    everything = "\n".join(call.seen)
    # Keys and tokens are random url-safe text: one could spell "zeta" or "4242" by chance, so they are
    # taken out before the search (what they are made of is app.rating's secrets.token_urlsafe).
    for opaque in {task_key, theirs["token"], *tokens}:
        everything = everything.replace(opaque, "<opaque>")
    found = [s for s in LEAKS if s.lower() in everything.lower()]
    assert not found, f"a rater received {found}"
    numbers = set(re.findall(r"\d+", everything))
    assert not numbers & ids, f"a rater received ids {sorted(numbers & ids)[:5]}"
    share = sum(left_is_b) / len(left_is_b)
    assert 0.35 < share < 0.65, f"B on the left in {share:.0%} of the cases"
    # What the rater saw agrees with what the server recorded.
    assert share == pytest.approx(sum(swapped.values()) / len(swapped), abs=0.02)


def test_identity_flags_reach_the_researcher_only(setup, client_as):
    task_key, rater, _, _, _ = setup
    while (view := rater.post(f"/api/rate/{task_key}/next").json()["case"]) is not None:
        if "ChatGPT" in "".join(a["text"] for a in view["answers"]):
            assert view["identity_flag"] is False
        rater.post(f"/api/rate/a/{view['token']}", json=full_answer(view))
    researcher = client_as(Role.researcher, "boss2")
    tasks = researcher.get("/api/rating/tasks").json()
    detail = researcher.get(f"/api/rating/tasks/{tasks[0]['id']}").json()
    assert [c["names"] for c in detail["identity"]] == [{"a": ["ChatGPT", "OpenAI"]}]
    page = researcher.get(f"/rating/tasks/{tasks[0]['id']}")
    assert page.status_code == 200 and "ChatGPT" in page.text
