"""Every page and JSON route of uploads, mapping, imports, datasets, diff, edit and export, over HTTP."""

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.models import Role, Sample, Upload
from tests.conftest import SHARED_DATA

PCLUE = SHARED_DATA / "pclue_train_9.jsonl"
BELLE_EVAL = SHARED_DATA / "belle_eval_set.json"


@pytest.fixture(autouse=True)
def no_indexing(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", calls.append)
    return calls


def upload(client, path, name=None):
    r = client.post(
        f"/api/uploads?filename={name or path.name}",
        content=path.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_upload_page_and_raw_upload_with_hostile_name(researcher, settings):
    page = researcher.get("/datasets/upload")
    assert page.status_code == 200 and "/static/upload.js" in page.text and 'id="upload-bar"' in page.text
    evil = "..%2F..%2F..%2Fetc%2Fpasswd.jsonl"
    r = researcher.post(f"/api/uploads?filename={evil}", content=PCLUE.read_bytes())
    assert r.status_code == 201, r.text
    data = r.json()
    assert data["filename"] == "passwd.jsonl" and data["detected_format"] == "custom/jsonl"
    assert data["size"] == PCLUE.stat().st_size
    stored = list(settings.uploads_dir.iterdir())
    assert len(stored) == 1 and stored[0].read_bytes() == PCLUE.read_bytes()
    assert not (settings.data_dir.parent / "etc").exists()
    r = researcher.post("/api/uploads", content=b"{}", headers={"X-Filename": "..\\..\\win.ini"})
    assert r.status_code == 201 and r.json()["filename"] == "win.ini"
    page = researcher.get("/datasets/upload")
    assert "passwd.jsonl" in page.text and "win.ini" in page.text


def test_multipart_upload_with_api_token(client, make_user, settings, engine):
    from app.accounts import create_token

    user = make_user(Role.researcher, "scripter")
    with Session(engine) as s:
        _, token = create_token(s, user=user, name="ci")
    r = client.post(
        "/api/uploads",
        files={"file": ("../../x.jsonl", PCLUE.read_bytes())},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "x.jsonl"
    r = client.post(
        f"/api/uploads/{r.json()['upload_id']}/import",
        json={"name": "scripted"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 202, r.text
    job = client.get(r.json()["status_url"], headers={"Authorization": f"Bearer {token}"}).json()
    assert (job["status"], job["n_ok"], job["n_bad"]) == ("succeeded", 705, 0)
    assert job["report"]["mapping"]["task_l1"] == "type"


def test_upload_size_limit(researcher, settings, monkeypatch):
    monkeypatch.setenv("SFTLAB_UPLOAD_MAX_BYTES", "1000")
    from app.core.config import get_settings

    get_settings.cache_clear()
    r = researcher.post("/api/uploads?filename=big.jsonl", content=b"x" * 5000)
    assert r.status_code == 413 and "limit" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(10):
            yield b"y" * 400

    r = researcher.post("/api/uploads?filename=big.jsonl", content=chunks())
    assert r.status_code == 413 and "1000 B" in r.json()["detail"]
    uploads = get_settings().uploads_dir
    assert not uploads.exists() or list(uploads.iterdir()) == []
    r = researcher.post("/api/uploads?filename=ok.jsonl", content=b"y" * 900)
    assert r.status_code == 201


def test_mapping_import_report_and_dataset_pages(researcher, settings, engine):
    up = upload(researcher, BELLE_EVAL)
    page = researcher.get(up["mapping_url"])
    assert page.status_code == 200
    assert (
        '<option value="class" selected>' in page.text and '<option value="question" selected>' in page.text
    )
    assert "请你写出" in page.text  # the raw preview shows the Chinese text as it is
    info = researcher.get(f"/api/uploads/{up['upload_id']}").json()
    assert info["guess"]["kind"] == "eval" and len(info["preview"]) == 20
    form = {
        "name": "belle 训练",
        "kind": "train",
        "policy": "valid",
        "shape": "fields",
        "prompt": "question",
        "answer": "std_answer",
        "task_l1": "class",
        "csrf_token": researcher.csrf,
    }
    prev = researcher.post(f"/uploads/{up['upload_id']}/preview", data=form, headers={"HX-Request": "true"})
    assert prev.status_code == 200 and "<html" not in prev.text and "missing answer" in prev.text
    r = researcher.post(f"/uploads/{up['upload_id']}/import", data=form, follow_redirects=False)
    assert r.status_code == 303
    job_url = r.headers["location"]
    page = researcher.get(job_url)
    assert page.status_code == 200
    assert "closed qa" in page.text and "\\u00a0" in page.text  # the normalisation is reported
    assert "missing answer" in page.text and "every 1s" not in page.text
    job = researcher.get("/api/" + job_url.strip("/")).json()
    assert (job["status"], job["n_ok"], job["n_bad"]) == ("succeeded", 631, 369)
    assert job["report"]["task_normalised"]["count"] == 52 - sum(
        1
        for line in BELLE_EVAL.read_text().splitlines()
        if "\u00a0" in json.loads(line)["class"] and not json.loads(line)["std_answer"].strip()
    )
    report = researcher.get(job_url + "/report.csv")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(report.text)))
    assert (
        rows[0][:2] == ["line", "reason"]
        and len(rows) == 370
        and {r[1] for r in rows[1:]} == {"missing_answer"}
    )
    assert researcher.get(job_url + "?page=2").status_code == 200
    d = job["dataset_id"]
    listing = researcher.get("/datasets?sort=samples&dir=asc")
    assert listing.status_code == 200 and "belle 训练" in listing.text and "631" in listing.text
    api = researcher.get("/api/datasets").json()["datasets"]
    # as training data, brainstorming and generation have no answer at all: 8 of the 10 classes remain
    assert api[0]["name"] == "belle 训练" and api[0]["tasks"] == 8 and api[0]["samples"] == 631
    detail = researcher.get(f"/datasets/{d}")
    assert (
        detail.status_code == 200
        and f"/datasets/{d}/v/1/samples" in detail.text
        and "closed qa" in detail.text
    )
    assert (
        researcher.get(f"/datasets/{d}", headers={"HX-Request": "true"})
        .text.lstrip()
        .startswith('<div id="versions"')
    )
    assert researcher.get(f"/api/datasets/{d}").json()["versions"][0]["n_samples"] == 631
    assert researcher.get(f"/api/datasets/{d}/versions/1").json()["number"] == 1
    assert researcher.get(f"/api/datasets/{d}/versions/9").status_code == 404


def test_dry_run_then_import_valid(researcher):
    up = upload(researcher, BELLE_EVAL)
    r = researcher.post(
        f"/api/uploads/{up['upload_id']}/import", json={"name": "b", "kind": "train", "policy": "dry_run"}
    )
    job = r.json()
    assert (job["status"], job["n_ok"], job["n_bad"], job["dataset_id"]) == ("validated", 631, 369, None)
    page = researcher.get(job["page_url"])
    assert "/rerun" in page.text
    r = researcher.post(f"/imports/{job['job_id']}/rerun", data={"policy": "valid"}, follow_redirects=False)
    assert r.status_code == 303
    again = researcher.get("/api" + r.headers["location"]).json()
    assert again["status"] == "succeeded" and again["n_ok"] == 631
    r = researcher.post(
        f"/api/uploads/{up['upload_id']}/import", json={"name": "c", "kind": "train", "policy": "all"}
    )
    assert r.json()["status"] == "rejected" and r.json()["dataset_id"] is None
    r = researcher.post(f"/api/uploads/{up['upload_id']}/import", json={"name": "", "policy": "sometimes"})
    assert r.status_code == 422


def _import_pclue(client) -> int:
    up = upload(client, PCLUE)
    job = client.post(f"/api/uploads/{up['upload_id']}/import", json={"name": "pclue"}).json()
    assert job["status"] == "succeeded"
    return job["dataset_id"]


def test_edit_diff_export_over_http(researcher, engine, no_indexing):
    d = _import_pclue(researcher)
    with Session(engine) as s:
        rows = s.exec(
            select(Sample.id, Sample.task_l1).where(Sample.dataset_id == d).order_by(Sample.id)
        ).all()
    ids = [i for i, _ in rows]
    not_nli = [i for i, t in rows if t != "nli"]
    tagged_not_nli = sum(1 for i, t in rows[:3] if t != "nli")
    r = researcher.post(
        f"/datasets/{d}/v/1/edit",
        follow_redirects=False,
        data={
            "action": "add_tag",
            "value": "robustness",
            "scope": "ids",
            "sample_ids": [str(i) for i in ids[:3]],
            "next": f"/datasets/{d}/v/1/samples?tag=x",
            "q": "",
            "min_chars": "",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == f"/datasets/{d}/v/2/samples?tag=x"
    r = researcher.post(
        f"/datasets/{d}/v/2/edit",
        follow_redirects=False,
        data={
            "action": "set_task_type",
            "value": "nli/entailment",
            "scope": "query",
            "task": "nli",
            "q": "",
            "field": "all",
            "tag": "",
            "min_chars": "",
            "max_chars": "",
            "length_of": "answer",
            "next": "//evil.com",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == f"/datasets/{d}"
    r = researcher.post(
        f"/api/datasets/{d}/versions/3/edit", json={"action": "drop", "sample_ids": not_nli[-4:]}
    )
    assert r.status_code == 201 and r.json()["version"] == 4 and r.json()["changed"] == 4
    stale = researcher.post(
        f"/api/datasets/{d}/versions/2/edit", json={"action": "drop", "sample_ids": ids[:1]}
    )
    assert stale.status_code == 409 and "latest version" in stale.json()["detail"]
    assert researcher.post(f"/api/datasets/{d}/versions/4/edit", json={"action": "drop"}).status_code == 400
    form_err = researcher.post(f"/datasets/{d}/v/4/edit", data={"action": "nope", "sample_ids": "1"})
    assert form_err.status_code == 400 and "unknown action" in form_err.text
    assert len(no_indexing) == 4
    diff = researcher.get(f"/api/datasets/{d}/diff?a=1&b=4").json()
    assert (diff["n_added"], diff["n_removed"]) == (0, 4) and diff["n_modified"] == 253 + tagged_not_nli
    nli = {t["task_type"]: t for t in diff["task_types"]}
    assert nli["nli"]["delta"] == -253 and nli["nli/entailment"]["b"] == 253
    page = researcher.get(f"/datasets/{d}/diff?a=1&b=2")
    assert page.status_code == 200 and 'class="tag robustness"' in page.text
    assert researcher.get(f"/datasets/{d}/diff?a=1&b=9").status_code == 404
    export = researcher.get(f"/datasets/{d}/v/4/export.jsonl")
    assert export.status_code == 200 and "pclue-v4.jsonl" in export.headers["content-disposition"]
    lines = [json.loads(x) for x in export.text.splitlines()]
    assert len(lines) == 701 and sum(x["task_type"] == "nli/entailment" for x in lines) == 253
    api_export = researcher.get(f"/api/datasets/{d}/versions/1/export.jsonl")
    assert len(api_export.text.splitlines()) == 705
    assert researcher.get(f"/datasets/{d}/v/7/export.jsonl").status_code == 404


def test_merge_through_the_mapping_page(researcher):
    d = _import_pclue(researcher)
    assert researcher.get(f"/datasets/upload?target={d}").status_code == 200
    up = upload(researcher, SHARED_DATA / "belle_zh_seed_tasks.jsonl")
    page = researcher.get(f"/uploads/{up['upload_id']}/mapping?target={d}")
    assert f'<option value="{d}" selected>' in page.text and "instances[0].input" in page.text
    r = researcher.post(
        f"/uploads/{up['upload_id']}/import",
        follow_redirects=False,
        data={
            "target_dataset_id": str(d),
            "name": "",
            "kind": "train",
            "policy": "valid",
            "shape": "fields",
            "prompt": "instruction",
            "prompt2": "instances[0].input",
            "answer": "instances[0].output",
            "task_l1": "name",
        },
    )
    assert r.status_code == 303
    data = researcher.get(f"/api/datasets/{d}").json()
    assert data["latest_version"] == 2 and data["versions"][0]["n_samples"] == 880


def test_access_and_missing_things(researcher, client_as):
    up = upload(researcher, PCLUE)
    other = client_as(Role.researcher, "other")
    assert other.get(f"/uploads/{up['upload_id']}/mapping").status_code == 404
    assert other.get(f"/api/uploads/{up['upload_id']}").status_code == 404
    rater = client_as(Role.rater, "rater9")
    for url in ("/datasets", "/datasets/upload", "/api/datasets", f"/uploads/{up['upload_id']}/mapping"):
        assert rater.get(url).status_code == 403
    assert rater.post("/api/uploads", content=b"{}").status_code == 403
    admin = client_as(Role.admin, "boss")
    assert admin.get(f"/uploads/{up['upload_id']}/mapping").status_code == 200
    for url in (
        "/datasets/999",
        "/api/datasets/999",
        "/imports/999",
        "/api/imports/999",
        "/datasets/999/diff",
        "/uploads/999/mapping",
    ):
        assert researcher.get(url).status_code == 404, url
    empty = upload(researcher, PCLUE, "x.jsonl")
    with Session(__import__("app.core.db", fromlist=["get_engine"]).get_engine()) as s:
        row = s.get(Upload, empty["upload_id"])
        from app.core.config import get_settings

        (get_settings().uploads_dir / row.stored_name).unlink()
    assert researcher.get(empty["mapping_url"]).status_code == 410


def test_anonymous_is_sent_to_login(client: TestClient):
    r = client.get("/datasets", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert client.post("/api/uploads", content=b"{}").status_code == 401


def test_only_the_owner_or_an_admin_changes_a_dataset(researcher, client_as, engine):
    """Another researcher reads, exports and browses the dataset but cannot drop, retag, retype or
    merge into it, through the API or the pages; an admin can."""
    d = _import_pclue(researcher)
    with Session(engine) as s:
        ids = s.exec(select(Sample.id).where(Sample.dataset_id == d).order_by(Sample.id)).all()
    other = client_as(Role.researcher, "mallory")
    for url in (
        f"/api/datasets/{d}",
        f"/datasets/{d}",
        f"/datasets/{d}/v/1/samples",
        f"/datasets/{d}/v/1/export.jsonl",
    ):
        assert other.get(url).status_code == 200, url
    browse = other.get(f"/datasets/{d}/v/1/samples").text
    assert 'id="bulk"' not in browse and 'id="read-only"' in browse and "owner or an admin can edit" in browse
    sample_page = other.get(f"/samples/{ids[0]}")
    assert sample_page.status_code == 200 and "Set task_type" not in sample_page.text
    assert "Set task_type" in researcher.get(f"/samples/{ids[0]}").text
    assert 'id="bulk"' in researcher.get(f"/datasets/{d}/v/1/samples").text
    owner = researcher.user.username
    refused = other.post(f"/api/datasets/{d}/versions/1/edit", json={"action": "drop", "sample_ids": ids[:2]})
    assert refused.status_code == 403
    assert (
        f"belongs to {owner}" in refused.json()["detail"] and "owner or an admin" in refused.json()["detail"]
    )
    for action, value in (("add_tag", "x"), ("set_task_type", "nli/x"), ("drop", "")):
        form = {"action": action, "value": value, "scope": "ids", "sample_ids": [str(ids[0])]}
        r = other.post(f"/datasets/{d}/v/1/edit", data=form, follow_redirects=False)
        assert r.status_code == 403 and "owner or an admin" in r.text, action
    up = upload(other, SHARED_DATA / "belle_zh_seed_tasks.jsonl")
    mapping = other.get(f"/uploads/{up['upload_id']}/mapping?target={d}").text
    assert f'<option value="{d}"' not in mapping  # not offered as a merge target
    merge = other.post(f"/api/uploads/{up['upload_id']}/import", json={"target_dataset_id": d})
    assert merge.status_code == 403 and f"belongs to {owner}" in merge.json()["detail"]
    page_merge = other.post(
        f"/uploads/{up['upload_id']}/import",
        follow_redirects=False,
        data={
            "target_dataset_id": str(d),
            "name": "",
            "kind": "train",
            "policy": "valid",
            "shape": "fields",
            "prompt": "instruction",
            "answer": "instances[0].output",
        },
    )
    assert page_merge.status_code == 403
    assert other.get(f"/api/datasets/{d}").json()["latest_version"] == 1  # nothing changed
    # The owner and an admin can.
    admin = client_as(Role.admin, "boss")
    r = admin.post(f"/api/datasets/{d}/versions/1/edit", json={"action": "drop", "sample_ids": ids[:1]})
    assert r.status_code == 201
    r = researcher.post(f"/api/datasets/{d}/versions/2/edit", json={"action": "drop", "sample_ids": ids[1:2]})
    assert r.status_code == 201 and r.json()["version"] == 3
