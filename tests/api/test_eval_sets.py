"""Eval sets are first-class: references shown in the sample list, samples without one reported, offered and exported as validation data."""

import json

import pytest
from sqlmodel import Session

from app.core.db import get_engine
from app.datasets.import_options import ImportOptions
from app.datasets.importer import import_file
from app.datasets.mapping import Mapping
from app.runs.pickers import dataset_choices
from app.runs.rundir import export_versions
from tests.conftest import SHARED_DATA
from tests.runs.conftest import import_pclue

BELLE = SHARED_DATA / "belle_eval_set.json"
ROWS = [json.loads(line) for line in open(BELLE, encoding="utf-8")]


@pytest.fixture(autouse=True)
def no_indexing(monkeypatch):
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", lambda version_id: None)


@pytest.fixture
def belle(researcher) -> dict:
    """BELLE's eval set through the upload API, everything guessed (kind eval from its name)."""
    up = researcher.post(f"/api/uploads?filename={BELLE.name}", content=BELLE.read_bytes()).json()
    job = researcher.post(f"/api/uploads/{up['upload_id']}/import", json={}).json()
    assert job["status"] == "succeeded", job
    return job


def test_import_report_and_dataset_page_count_samples_without_reference(researcher, belle):
    missing = sum(1 for r in ROWS if not r["std_answer"].strip())
    assert missing == 369 and belle["report"]["kind"] == "eval"
    assert belle["report"]["no_reference"] == missing
    page = researcher.get(f"/imports/{belle['job_id']}").text
    assert 'id="no-reference"' in page and ">369<" in page
    ds = belle["dataset_id"]
    assert researcher.get(f"/api/datasets/{ds}").json()["no_reference"] == missing
    assert "369 of 1000 samples have no reference" in researcher.get(f"/datasets/{ds}").text


def test_sample_list_shows_references(researcher, belle):
    ds = belle["dataset_id"]
    items = researcher.get(f"/api/datasets/{ds}/versions/1/samples").json()["items"]
    by_prompt = {r["question"]: r["std_answer"] for r in ROWS}
    assert all(i["answer"] == "" and (i["reference"] or "") == by_prompt[i["prompt"]] for i in items)
    first = next(i for i in items if i["reference"])
    page = researcher.get(f"/datasets/{ds}/v/1/samples").text
    assert 'class="muted ref"' in page and first["reference"][:20] in page
    word = first["reference"][:2]
    detail = researcher.get(f"/samples/{first['id']}", params={"q": word}).text
    assert f"<mark>{word}</mark>" in detail.split("role-reference", 1)[1]


def test_launch_form_offers_eval_sets_for_validation_only(researcher, belle, engine):
    pclue = import_pclue(researcher.user.id).dataset_id
    with Session(engine) as s:
        train = dataset_choices(s)
        validation = dataset_choices(s, validation=True)
    assert [d["id"] for d in train] == [pclue]
    ev = next(d for d in validation if d["id"] == belle["dataset_id"])
    assert ev["kind"] == "eval" and ev["versions"][0]["no_reference"] == 369
    page = researcher.get("/runs/new").text
    picker = page[page.index('name="eval_ds"') : page.index("</select>", page.index('name="eval_ds"'))]
    assert f'value="{belle["dataset_id"]}:1"' in picker and "369 without a reference" in picker


def test_an_eval_set_validates_on_its_references(researcher, belle, settings):
    lines = [
        json.loads(x)
        for x in b"".join(export_versions(get_engine(settings), [(belle["dataset_id"], 1)])).splitlines()
    ]
    with_ref = [r for r in ROWS if r["std_answer"].strip()]
    assert len(lines) == len(with_ref) == 631
    for line, row in zip(lines, with_ref, strict=True):
        assert [m["role"] for m in line["messages"]] == ["user", "assistant"]
        assert line["messages"][-1]["content"] == row["std_answer"]


def test_an_eval_set_without_any_reference_is_refused_as_validation(researcher, sent_runs, tmp_path):
    pclue = import_pclue(researcher.user.id).dataset_id
    path = tmp_path / "prompts_eval.jsonl"
    path.write_text("".join(json.dumps({"question": f"q{i}", "class": "qa"}) + "\n" for i in range(5)))
    opts = ImportOptions(mapping=Mapping(prompt=["question"], task_l1="class"), name="prompts", kind="eval")
    res = import_file(path=path, options=opts, owner_id=researcher.user.id, filename=path.name)
    assert res.status == "succeeded" and res.report["no_reference"] == 5, res.report
    body = {
        "name": "r",
        "datasets": [{"dataset_id": pclue, "version": 1}],
        "eval_dataset": {"dataset_id": res.dataset_id, "version": 1},
    }
    r = researcher.post("/api/runs", json=body)
    assert r.status_code == 422 and "reference" in r.json()["errors"]["eval_dataset"], r.text


def test_the_parsing_process_counts_missing_references_too(researcher, monkeypatch):
    monkeypatch.setattr("app.datasets.importer.PARSE_PROCESS_MIN_BYTES", 0)  # the large-file path
    m = Mapping(prompt=["question"], reference="std_answer", task_l1="class")
    opts = ImportOptions(mapping=m, name="b", kind="eval")
    res = import_file(path=BELLE, options=opts, owner_id=researcher.user.id, filename=BELLE.name)
    assert res.status == "succeeded" and res.report["no_reference"] == 369, res.report
