"""POST /api/runs launches from JSON with the same validation as the form, answers 422 naming the field, and the run clones into the form."""

import json

import pytest
from sqlmodel import Session, select

from app.models import Role, Run
from tests.runs.conftest import import_pclue


@pytest.fixture
def sent(sent_runs) -> list[int]:
    return sent_runs


@pytest.fixture
def dataset(researcher, monkeypatch) -> int:
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", lambda version_id: None)
    return import_pclue(researcher.user.id).dataset_id


def body(dataset_id: int, **kw) -> dict:
    out = {
        "name": "api run",
        "datasets": [{"dataset_id": dataset_id, "version": 1}],
        "config": {
            "train": {"lr": 1e-4, "epochs": 1},
            "data": {"max_seq_len": 256, "over_length": "truncate"},
        },
        "mix": {"nli": 2},
    }
    out.update(kw)
    return out


def test_launch_from_json(researcher, dataset, sent, engine):
    response = researcher.post("/api/runs", json=body(dataset, n_procs=2))
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    assert response.json()["url"] == f"/runs/{run_id}" and sent == [run_id]
    with Session(engine) as s:
        run = s.get(Run, run_id)
        config = json.loads(run.config_json)
        assert (run.n_procs, run.queue, run.owner_id) == (2, "cpu", researcher.user.id)
    assert config["train"]["lr"] == 1e-4 and config["data"]["mix"] == {"nli": 2.0}
    assert config["train"]["grad_accum"] == 4  # untouched fields keep the embedded_default preset
    page = researcher.get(f"/runs/new?clone={run_id}").text
    assert 'value="api run (clone)"' in page and 'name="f.train.lr" value="0.0001"' in page


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"config": {"train": {"lr": 0}}}, "train.lr"),
        ({"config": {"train": {"lr": "fast"}}}, "train.lr"),
        ({"config": {"train": {"nope": 1}}}, "train.nope"),
        ({"config": {"data": {"train_file": "/etc/passwd"}}}, "data.train_file"),
        ({"config": {"deepspeed": {"offload_params": True}}}, "deepspeed.offload_params"),
        ({"datasets": []}, "datasets"),
        ({"datasets": [{"dataset_id": 999, "version": 1}]}, "datasets"),
        ({"datasets": [{"dataset_id": "x"}]}, "datasets"),
        ({"mix": {"nope": 2}}, "mix"),
        ({"mix": {"nli": "lots"}}, "mix"),
        ({"mix": {"nli": 0, "classify": 0, "mrc": 0, "generate": 0, "anaphora_resolution": 0}}, "mix"),
        ({"queue": "gpu-99"}, "queue"),
        ({"base_model": "/no/such/model"}, "base_model"),
        ({"base_model": "run:999/step-00000001"}, "base_model"),
        ({"name": ""}, "name"),
        ({"parent_run_id": 424242}, "parent_run_id"),
        ({"n_gpus": -1}, "n_gpus"),
    ],
)
def test_bad_requests_name_the_field(researcher, dataset, sent, change, field):
    response = researcher.post("/api/runs", json=body(dataset, **change))
    assert response.status_code == 422, response.text
    assert field in response.json()["errors"], response.json()
    assert sent == []


def test_a_parent_that_does_not_exist_is_a_422_not_a_foreign_key_error(researcher, dataset, sent, engine):
    response = researcher.post("/api/runs", json=body(dataset, parent_run_id=424242))
    assert response.status_code == 422, response.text
    assert "run 424242" in response.json()["errors"]["parent_run_id"]
    with Session(engine) as s:
        assert s.exec(select(Run)).first() is None
    first = researcher.post("/api/runs", json=body(dataset)).json()["id"]
    child = researcher.post("/api/runs", json=body(dataset, parent_run_id=first))
    assert child.status_code == 201, child.text
    with Session(engine) as s:
        assert s.get(Run, child.json()["id"]).parent_run_id == first


def test_not_an_object_and_roles(researcher, client_as, client, dataset):
    for bad in ([], "x", None):
        response = researcher.post("/api/runs", json=bad)
        assert response.status_code == 422
    assert researcher.post("/api/runs/estimate", json={"name": "x"}).status_code == 422
    rater = client_as(Role.rater)
    assert rater.post("/api/runs", json=body(dataset)).status_code == 403
    assert client.post("/api/runs", json=body(dataset)).status_code == 401
