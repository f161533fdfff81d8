"""Model references and requests: a run's checkpoint, its latest, the embedded model and a local path resolve
to directories; anything else is refused with the reason, before a job exists."""

from pathlib import Path

import pytest
from sqlmodel import Session, select

from app.models import Job, Role
from app.sampling.refs import resolve_model
from app.sampling.request import SamplingError, parse_request
from tests.runs.fake_runs import insert_run


def checkpoint(run_dir: Path, step: int, *, complete: bool = True) -> Path:
    path = run_dir / "checkpoints" / f"step-{step:08d}"
    (path / "trainer_state").mkdir(parents=True)
    (path / "config.json").write_text("{}")
    if complete:
        (path / "trainer_state" / "state.json").write_text("{}")
    return path


@pytest.fixture
def run_with_checkpoints(sampling, engine, make_user, tmp_path):
    owner = make_user(Role.researcher, "trainer_person")
    run_dir = tmp_path / "run"
    first, second = checkpoint(run_dir, 10), checkpoint(run_dir, 20)
    checkpoint(run_dir, 30, complete=False)  # being written: not a checkpoint yet
    with Session(engine) as session:
        run = insert_run(session, owner_id=owner.id, run_dir=str(run_dir))
    return run.id, first, second


def resolve(engine, settings, ref: str) -> str:  # noqa: ANN001
    with Session(engine) as session:
        return resolve_model(session, ref=ref, settings=settings)


def test_a_runs_named_checkpoint_and_its_latest_complete_one(run_with_checkpoints, engine, sampling):
    run_id, first, second = run_with_checkpoints
    assert resolve(engine, sampling, f"run:{run_id}/step-00000010") == str(first.resolve())
    assert resolve(engine, sampling, f"run:{run_id}") == str(second.resolve())


def test_embedded_and_a_local_directory(sampling, engine, tmp_path):
    assert resolve(engine, sampling, "embedded") == str(sampling.model_dir.resolve())
    adapter = tmp_path / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    assert resolve(engine, sampling, str(adapter)) == str(adapter.resolve())


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("run:999/step-00000010", "run 999 does not exist"),
        ("run:{run}/step-00000030", "no complete checkpoint 'step-00000030'"),
        ("run:999", "run 999 does not exist"),
        ("models/llama", "absolute path"),
        ("/nonexistent/model", "is not a directory"),
    ],
)
def test_bad_references_say_what_is_wrong(run_with_checkpoints, engine, sampling, ref, words):
    with pytest.raises(SamplingError) as info:
        resolve(engine, sampling, ref.format(run=run_with_checkpoints[0]))
    assert info.value.field == "model"
    assert words in info.value.message


def test_a_run_without_checkpoints_and_a_missing_embedded_model(
    sampling, engine, make_user, tmp_path, monkeypatch
):
    owner = make_user(Role.researcher, "p")
    with Session(engine) as session:
        run = insert_run(session, owner_id=owner.id, run_dir=str(tmp_path / "empty"))
    with pytest.raises(SamplingError, match="no complete checkpoint yet"):
        resolve(engine, sampling, f"run:{run.id}")
    monkeypatch.setattr(sampling, "model_dir", tmp_path / "not-converted")
    with pytest.raises(SamplingError, match="make model"):
        resolve(engine, sampling, "embedded")


def test_the_api_answers_422_with_the_field_and_creates_no_job(researcher, pclue, engine):
    body = {"model": "run:424242/step-00000010", "dataset_id": pclue.dataset_id, "version": 1}
    response = researcher.post("/api/sampling", json=body)
    assert response.status_code == 422
    assert response.json() == {"detail": "run 424242 does not exist", "field": "model"}
    with Session(engine) as session:
        assert session.exec(select(Job).where(Job.kind == "sample")).all() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"params": {"temperature": -1}}, "temperature"),
        ({"params": {"n": 17}}, "n"),
        ({"params": {"max_new_tokens": 1.5}}, "max_new_tokens"),
        ({"params": {"stop": [""]}}, "stop"),
        ({"mode": "poem"}, "mode"),
        ({"backend": "llama.cpp"}, "backend"),
        ({"model": ""}, "model"),
        ({"version": "x"}, "version"),
        ({"system_prompt": 5}, "system_prompt"),
    ],
)
def test_bad_parameters_are_refused_with_their_field(change, field):
    body = {"model": "embedded", "dataset_id": 1, "version": 1, **change}
    with pytest.raises(SamplingError) as info:
        parse_request(body)
    assert info.value.field == field


def test_the_form_flat_values_and_the_api_nested_ones_mean_the_same():
    flat = parse_request({"model": "embedded", "dataset_id": "3", "version": "2", "temperature": "0.2", "n": "3",
                          "stop": "###\n\\n\\n", "task": "nli"})  # fmt: skip
    nested = parse_request({"model": "embedded", "dataset_id": 3, "version": 2, "filter": {"task": "nli"},
                            "params": {"temperature": 0.2, "n": 3, "stop": ["###", "\n\n"]}})  # fmt: skip
    assert flat == nested
    assert flat.params.stop == ["###", "\n\n"]


def test_a_missing_dataset_version_or_an_empty_filter_is_a_422(researcher, pclue):
    base = {"model": "embedded", "dataset_id": pclue.dataset_id, "version": 1, "backend": "transformers"}
    missing = researcher.post("/api/sampling", json={**base, "version": 9})
    assert missing.status_code == 422 and missing.json()["field"] == "dataset_id"
    empty = researcher.post("/api/sampling", json={**base, "filter": {"task": "no-such-task"}})
    assert empty.status_code == 422 and empty.json()["field"] == "filter"
    template = researcher.post("/api/sampling", json={**base, "chat_template_file": "/nonexistent.jinja"})
    assert template.status_code == 422 and template.json()["field"] == "chat_template_file"
