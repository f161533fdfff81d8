"""The sampling API and pages: roles (rater 403, researcher 200), launch from the form and the API, the
results page with filters and escaped content, finish-reason counts, JSONL and CSV exports."""

import csv
import io
import json
import re

import pytest
from sqlmodel import Session

from app.models import Role, SamplingJob
from worker.runner import execute


@pytest.fixture
def finished(researcher, pclue, engine):
    """A sampling job of the researcher's, n=2 on pCLUE's 'generate' prompts, run to its end."""
    body = {"model": "embedded", "dataset_id": pclue.dataset_id, "version": 1, "backend": "transformers",
            "filter": {"task": "generate"}, "params": {"n": 2, "max_new_tokens": 64}}  # fmt: skip
    response = researcher.post("/api/sampling", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert execute(created["job_id"])
    return created


def post_form(client, path: str, data: dict, **kw):  # noqa: ANN001, ANN003, ANN201
    """Post as the browser's form does: the CSRF token (if any) in the form, not in a header."""
    token, client.csrf = client.csrf, ""
    try:
        return client.post(path, data=data, **kw)
    finally:
        client.csrf = token


def _routes(sampling_id: int) -> list[tuple[str, str]]:
    return [
        ("GET", "/sampling"),
        ("GET", "/sampling/new"),
        ("POST", "/sampling/new"),
        ("GET", f"/sampling/{sampling_id}"),
        ("POST", f"/sampling/{sampling_id}/cancel"),
        ("POST", f"/sampling/{sampling_id}/resume"),
        ("GET", "/api/sampling"),
        ("POST", "/api/sampling"),
        ("GET", f"/api/sampling/{sampling_id}"),
        ("POST", f"/api/sampling/{sampling_id}/cancel"),
        ("POST", f"/api/sampling/{sampling_id}/resume"),
        ("GET", f"/api/sampling/{sampling_id}/export.jsonl"),
        ("GET", f"/api/sampling/{sampling_id}/export.csv"),
    ]


def test_raters_get_403_everywhere_and_researchers_can_read(finished, client_as, researcher):
    rater = client_as(Role.rater)
    for method, path in _routes(finished["id"]):
        response = rater.request(method, path, json={} if method == "POST" else None)
        assert response.status_code == 403, (method, path, response.status_code)
    for method, path in _routes(finished["id"]):
        if method == "GET":
            assert researcher.get(path).status_code == 200, path
    assert 'href="/sampling"' in researcher.get("/runs").text
    assert 'href="/sampling"' not in rater.get("/tokens").text


def test_only_the_owner_or_an_admin_may_cancel_or_resume(finished, client_as):
    other = client_as(Role.researcher, "someone_else")
    assert other.post(f"/api/sampling/{finished['id']}/resume").status_code == 403
    admin = client_as(Role.admin)
    response = admin.post(f"/api/sampling/{finished['id']}/resume")
    assert response.status_code == 409 and "nothing to resume" in response.json()["detail"]


def test_the_detail_pages_prompts_with_all_their_answers_and_filters(finished, researcher):
    data = researcher.get(f"/api/sampling/{finished['id']}").json()
    assert data["summary"]["status"] == "succeeded" and data["summary"]["n_prompts"] == 23
    rows = data["page"]["rows"]
    assert len(rows) == 20 and data["page"]["next_after"] == rows[-1]["sample_id"]
    assert all([g["index"] for g in r["generations"]] == [0, 1] for r in rows)
    assert all(r["reference"] and r["task_type"] == "generate" for r in rows)
    rest = researcher.get(f"/api/sampling/{finished['id']}?after={data['page']['next_after']}").json()["page"]
    assert len(rest["rows"]) == 3 and rest["next_after"] is None
    counts = data["counts"]
    assert sum(counts.values()) == 46
    assert data["cut_share"] == pytest.approx(counts["length"] / 46)
    cut = researcher.get(f"/api/sampling/{finished['id']}?finish_reason=length").json()["page"]["rows"]
    assert cut and all(int(r["sample_id"]) % 3 == 0 for r in cut)
    one = rows[4]["prompt_id"]
    found = researcher.get(f"/api/sampling/{finished['id']}", params={"q": f"{one}.1 seed"}).json()["page"][
        "rows"
    ]
    assert [r["prompt_id"] for r in found] == [one]
    assert researcher.get(f"/api/sampling/{finished['id']}?finish_reason=eos").status_code == 422
    assert researcher.get("/api/sampling/999").status_code == 404


def test_exports_as_jsonl_and_csv(finished, researcher, monkeypatch):
    monkeypatch.setattr(
        "app.sampling.results.EXPORT_BATCH", 7
    )  # several keyset batches, one split mid-prompt
    jsonl = researcher.get(f"/api/sampling/{finished['id']}/export.jsonl")
    assert jsonl.status_code == 200 and "attachment" in jsonl.headers["content-disposition"]
    lines = [json.loads(line) for line in jsonl.text.splitlines()]
    assert len(lines) == 46 and {"prompt_text", "text", "finish_reason", "reference", "tokens"} <= set(
        lines[0]
    )
    keys = [(x["sample_id"], x["index"]) for x in lines]
    assert keys == sorted(set(keys))  # in order, none twice across batches
    table = list(
        csv.DictReader(io.StringIO(researcher.get(f"/api/sampling/{finished['id']}/export.csv").text))
    )
    assert len(table) == 46
    assert [(int(r["sample_id"]), int(r["index"]), r["text"], r["reference"]) for r in table] == [
        (x["sample_id"], x["index"], x["text"], x["reference"]) for x in lines
    ]


def test_the_results_page_shows_answers_side_by_side_escaped(finished, researcher):
    page = researcher.get(f"/sampling/{finished['id']}").text
    assert "<i>answer</i>" not in page
    assert page.count("&lt;i&gt;answer&lt;/i&gt;") == 40  # 20 prompts, 2 answers each
    assert re.search(r'data-finish="length">length: \d+', page)
    assert "cut by max_new_tokens:" in page
    # the next step of the loop: a rating task over these answers, the form prefilled with this job
    assert f'href="/rating/tasks/new?sampling_a={finished["id"]}"' in page
    form = researcher.get(f"/rating/tasks/new?sampling_a={finished['id']}").text
    assert f'<option value="{finished["id"]}" selected>' in form
    assert 'name="csrf_token"' not in page.split('<form method="get"')[1]  # the filter form is a GET
    zh = researcher.get(f"/sampling/{finished['id']}", headers={"Accept-Language": "zh"}).text
    assert "参考答案" in zh and "Reference" not in zh


def test_the_form_is_prefilled_from_a_run_and_launches(researcher, pclue, engine):
    form = researcher.get("/sampling/new?model=run:7/step-00000010").text
    assert 'value="run:7/step-00000010"' in form
    assert f'value="{pclue.dataset_id}:1"' in form
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    values = {"csrf_token": token, "model": "run:7/step-00000010", "dataset": f"{pclue.dataset_id}:1"}
    refused = post_form(researcher, "/sampling/new", values)
    assert refused.status_code == 422 and "run 7 does not exist" in refused.text
    values.update(model="embedded", backend="transformers", task="anaphora_resolution", n="2", stop="###")
    done = post_form(researcher, "/sampling/new", values, follow_redirects=False)
    assert done.status_code == 303
    sampling_id = int(done.headers["location"].rsplit("/", 1)[1])
    with Session(engine) as session:
        stored = session.get_one(SamplingJob, sampling_id)
    assert json.loads(stored.params_json)["params"]["stop"] == ["###"] and stored.n_prompts == 5


def test_a_form_without_the_csrf_token_is_refused(researcher, pclue):
    values = {"model": "embedded", "dataset": f"{pclue.dataset_id}:1"}
    response = post_form(researcher, "/sampling/new", values)
    assert response.status_code == 403


def test_a_runs_page_links_each_checkpoint_to_the_prefilled_form(researcher, engine, tmp_path):
    from tests.runs.fake_runs import make_run
    from tests.sampling.test_sampling_refs import checkpoint

    run_dir = tmp_path / "run"
    checkpoint(run_dir, 10)
    with Session(engine) as session:
        run = make_run(session, researcher.user.id, run_dir=run_dir)
    page = researcher.get(f"/runs/{run.id}").text
    link = re.search(r'href="(/sampling/new\?model=[^"]+)" data-sample-checkpoint="step-00000010"', page)
    assert link, "no sampling link beside the checkpoint"
    form = researcher.get(link.group(1).replace("&amp;", "&")).text
    assert f'value="run:{run.id}/step-00000010"' in form


def test_the_jobs_list_and_job_page_link_to_the_answers(finished, researcher):
    rows = researcher.get("/api/jobs?kind=sample").json()
    assert [(r["id"], r["link"]) for r in rows] == [(finished["job_id"], f"/sampling/{finished['id']}")]
    page = researcher.get(f"/jobs/{finished['job_id']}").text
    assert f'href="/sampling/{finished["id"]}"' in page and "Open the answers" in page
