"""Out-of-range numbers, malformed filters and hostile redirects get clear 4xx answers, never a 500 or a wider edit."""

import json

import pytest

from tests.conftest import SHARED_DATA

PCLUE = SHARED_DATA / "pclue_train_9.jsonl"
HUGE = "9" * 25  # past SQLite's and PostgreSQL's 64-bit integers


@pytest.fixture(autouse=True)
def no_indexing(monkeypatch):
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", lambda version_id: None)


@pytest.fixture
def dataset(researcher) -> int:
    up = researcher.post(f"/api/uploads?filename={PCLUE.name}", content=PCLUE.read_bytes()).json()
    job = researcher.post(f"/api/uploads/{up['upload_id']}/import", json={"policy": "valid"}).json()
    assert job["status"] == "succeeded", job
    return job["dataset_id"]


@pytest.mark.parametrize(
    "url",
    [
        "/datasets/{d}/v/1/samples?page=" + HUGE,
        "/datasets/{d}/v/1/samples?min_chars=" + HUGE,
        "/api/datasets/{d}/versions/1/samples?page=" + HUGE,
        "/datasets/{d}/v/1/samples?after=" + HUGE,
        "/api/datasets/{d}/versions/1/samples?before=" + HUGE,
        "/samples/" + HUGE,
        "/api/samples/" + HUGE,
        "/datasets/" + HUGE,
        "/api/datasets/" + HUGE,
        "/datasets/upload?target=" + HUGE,
        "/imports/" + HUGE,
        "/datasets/{d}/v/" + HUGE + "/stats",
    ],
)
def test_huge_numbers_are_a_client_error(researcher, dataset, url):
    r = researcher.get(url.format(d=dataset))
    assert 400 <= r.status_code < 500, (url, r.status_code, r.text[:300])


def test_huge_target_dataset_in_api_import(researcher, dataset):
    up = researcher.post(f"/api/uploads?filename={PCLUE.name}", content=PCLUE.read_bytes()).json()
    r = researcher.post(f"/api/uploads/{up['upload_id']}/import", json={"target_dataset_id": int(HUGE)})
    assert 400 <= r.status_code < 500, r.text


def test_mapping_with_wrong_types_is_refused_before_the_job(researcher):
    up = researcher.post(f"/api/uploads?filename={PCLUE.name}", content=PCLUE.read_bytes()).json()
    for mapping in ({"prompt": 5}, {"answer": ["a"]}, {"extra_tags": [1]}):
        r = researcher.post(f"/api/uploads/{up['upload_id']}/import", json={"mapping": mapping})
        assert r.status_code == 422 and "mapping." in r.json()["detail"], (mapping, r.text)


@pytest.mark.parametrize("bound", ["min_chars", "max_chars"])
@pytest.mark.parametrize("value", ["abc", "-5", "1.5", HUGE])
def test_bulk_edit_with_a_bad_length_bound_changes_nothing(researcher, dataset, bound, value):
    """A bound that cannot be read must refuse the edit, not be ignored (which would drop every sample)."""
    body = {"action": "drop", "scope": "query", bound: value}
    r = researcher.post(f"/api/datasets/{dataset}/versions/1/edit", json=body)
    assert r.status_code == 400 and bound in r.json()["detail"], r.text
    r = researcher.post(f"/datasets/{dataset}/v/1/edit", data=body, follow_redirects=False)
    assert r.status_code == 400, r.text
    assert researcher.get(f"/api/datasets/{dataset}").json()["latest_version"] == 1


def test_edit_redirect_stays_on_this_site(researcher, engine, dataset):
    from sqlmodel import Session, col, select

    from app.models import Sample

    with Session(engine) as s:
        ids = s.exec(select(Sample.id).where(col(Sample.dataset_id) == dataset)).all()
    for i, evil in enumerate(("/\\evil.example", "//evil.example", "https://evil.example/")):
        r = researcher.post(
            f"/datasets/{dataset}/v/{researcher.get(f'/api/datasets/{dataset}').json()['latest_version']}/edit",
            data={"action": "add_tag", "value": f"t{i}", "sample_ids": [str(ids[-1 - i])], "next": evil},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == f"/datasets/{dataset}", (evil, r.headers)


def test_export_file_names_carry_no_path(researcher, engine, dataset):
    from sqlmodel import Session

    from app.models import Dataset

    with Session(engine) as s:
        ds = s.get(Dataset, dataset)
        ds.name = '../../etc/北京 "x"\r\nX-Evil: 1'
        s.add(ds)
        s.commit()
    r = researcher.get(f"/datasets/{dataset}/v/1/export.jsonl")
    assert r.status_code == 200
    disposition = r.headers["content-disposition"]
    assert "/" not in disposition and "\\" not in disposition and "\n" not in disposition, disposition
    assert "X-Evil" not in r.headers
    first = json.loads(r.text.splitlines()[0])
    assert first["task_type"]


def test_every_post_form_in_the_templates_carries_the_csrf_token():
    """The route walk proves a POST without the token is refused; this proves our own forms send it."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    missing, seen = [], 0
    for path in root.rglob("*.html"):
        text = path.read_text()
        for m in re.finditer(r"<form\b[^>]*>(.*?)</form>", text, flags=re.S | re.I):
            tag = m.group(0)[: m.group(0).index(">")]
            if not re.search(r'method="post"', tag, flags=re.I):
                continue
            seen += 1
            if "csrf_token" not in m.group(1):
                missing.append(f"{path.relative_to(root)}: {tag[:80]}")
    assert seen >= 10, "found too few POST forms: is the pattern broken?"
    assert not missing, missing


def test_templates_mark_only_pre_escaped_json_safe():
    """`|safe` is allowed only on the charts JSON, which app.datasets.stats escapes ('<' -> \\u003c)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    uses = [
        f"{p.relative_to(root)}: {line.strip()}"
        for p in root.rglob("*.html")
        for line in p.read_text().splitlines()
        if "|safe" in line.replace(" ", "")
    ]
    assert all("charts_json" in u for u in uses), uses


@pytest.mark.parametrize(
    ("body", "reason"), [(b"", "empty file"), (b"\x00\x01\x02binary", "unsupported format")]
)
def test_empty_or_unknown_upload_is_refused_with_its_reason(researcher, body, reason):
    up = researcher.post("/api/uploads?filename=x.jsonl", content=body)
    assert up.status_code == 201, up.text
    uid = up.json()["upload_id"]
    assert researcher.get(f"/uploads/{uid}/mapping").status_code == 200
    r = researcher.post(f"/api/uploads/{uid}/import", json={"policy": "valid"})
    assert r.status_code == 422 and reason in r.json()["detail"], r.text
    r = researcher.post(f"/uploads/{uid}/import", data={"policy": "valid"}, follow_redirects=False)
    assert r.status_code == 422 and reason in r.text
