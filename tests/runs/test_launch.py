"""create_run stores a resolved, validated config and names the wrong field; launch reaches the current broker."""

import json
import time
from pathlib import Path

import pytest
from kombu import Connection
from sqlmodel import Session, select

from app.core.config import get_settings
from app.models import Run, RunDataset, RunStatus
from app.runs.launch import LaunchError, LaunchRequest, create_run, launch, resolve_base_model
from tests.runs.conftest import import_pclue
from trainer.config import tiny_debug


def request(ds, **kw) -> LaunchRequest:
    base = dict(
        name="tiny",
        owner_id=ds.owner_id,
        config=tiny_debug().to_dict(),
        datasets=[(ds.dataset_id, ds.version)],
    )
    base.update(kw)
    return LaunchRequest(**base)


def fake_checkpoint(run_dir: Path, name: str = "step-00000004") -> Path:
    path = Path(run_dir) / "checkpoints" / name
    (path / "trainer_state").mkdir(parents=True)
    (path / "trainer_state" / "state.json").write_text('{"step": 4}')
    return path


def broker_messages(settings, queue: str = "cpu") -> list[dict]:
    """Every message waiting on `queue` in the broker of the test's settings: (task name, args)."""
    out = []
    with Connection(settings.celery_broker) as conn:
        q = conn.SimpleQueue(queue)
        while True:
            try:
                msg = q.get(block=True, timeout=0.5)
            except q.Empty:
                break
            out.append({"task": msg.headers["task"], "args": msg.payload[0]})
            msg.ack()
        q.close()
    return out


def test_create_run_stores_the_resolved_config(engine, pclue_dataset, tiny_model_dir):
    ds = pclue_dataset
    other = import_pclue(ds.owner_id, name="pclue-eval")
    with Session(engine) as s:
        run = create_run(
            s,
            request(
                ds,
                base_model=str(tiny_model_dir),
                eval_dataset=(other.dataset_id, 1),
                form={"lr": "1e-3"},
                n_procs=2,
            ),
        )
        s.commit()
        run_id = run.id
    with Session(engine) as s:
        run = s.get(Run, run_id)
        assert run.status == RunStatus.queued and run.n_procs == 2 and run.queue == "cpu"
        cfg = json.loads(run.config_json)
        assert run.run_dir.endswith(f"/runs/{run_id}") and Path(run.run_dir).is_absolute()
        assert cfg["output_dir"] == run.run_dir
        assert cfg["data"]["train_file"] == f"{run.run_dir}/train.jsonl"
        assert cfg["data"]["eval_file"] == f"{run.run_dir}/eval.jsonl"
        assert cfg["model"]["path"] == str(tiny_model_dir.resolve())
        assert cfg["checkpoint"]["resume"] is False
        assert cfg["train"]["lr"] == 1e-3
        assert json.loads(run.form_json) == {"lr": "1e-3"}
        roles = {
            (r.dataset_id, r.role) for r in s.exec(select(RunDataset).where(RunDataset.run_id == run_id))
        }
        assert roles == {(ds.dataset_id, "train"), (other.dataset_id, "eval")}


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (dict(datasets=[]), "datasets", "at least one"),
        (dict(datasets=[(999, 1)]), "datasets", "does not exist"),
        (dict(datasets=[(10**30, 1)]), "datasets", "does not exist"),
        (dict(datasets=[("x", 1)]), "datasets", "expected (dataset id, version)"),
        (dict(datasets="v7"), "datasets", "has no version"),
        (dict(datasets="twice"), "datasets", "twice"),
        (dict(datasets=[(2**31, 1)]), "datasets", "does not exist"),  # past a 32-bit id column
        (dict(eval_dataset=(999, 1)), "eval_dataset", "does not exist"),
        (dict(parent_run_id=424242), "parent_run_id", "does not exist"),  # else a FOREIGN KEY error
        (dict(parent_run_id=2**40), "parent_run_id", "does not exist"),
        (dict(name="  "), "name", "name"),
        (dict(queue="gpu-8"), "queue", "gpu-8"),
        (dict(n_procs=0), "n_procs", "between"),
        (dict(base_model="/no/such/model"), "base_model", "neither"),
        (dict(base_model="run:999/step-00000001"), "base_model", "does not exist"),
        (dict(config="lr0"), "train.lr", "> 0"),
        (dict(config="unknown"), "train.bogus", "unknown key"),
        (dict(config="choice"), "train.scheduler", "not one of"),
        (dict(config="fraction"), "data.eval_fraction", "not both"),
    ],
)
def test_create_run_names_the_wrong_field(engine, pclue_dataset, change, field, words):
    ds = pclue_dataset
    cfg = tiny_debug().to_dict()
    if change.get("datasets") == "v7":
        change["datasets"] = [(ds.dataset_id, 7)]
    if change.get("datasets") == "twice":
        change["datasets"] = [(ds.dataset_id, 1), (ds.dataset_id, 1)]
    edits = {
        "lr0": lambda c: c["train"].update(lr=0.0),
        "unknown": lambda c: c["train"].update(bogus=1),
        "choice": lambda c: c["train"].update(scheduler="wavy"),
        "fraction": lambda c: c["data"].update(eval_fraction=0.1),
    }
    if isinstance(change.get("config"), str):
        edits[change.pop("config")](cfg)
        if field == "data.eval_fraction":
            change["eval_dataset"] = (ds.dataset_id, 1)
    with Session(engine) as s:
        with pytest.raises(LaunchError) as err:
            create_run(s, request(ds, config=cfg, **change))
        assert err.value.field == field
        assert words in err.value.message
        s.rollback()
        assert s.exec(select(Run)).first() is None


def cache_hub_model(hf_home: Path, repo_id: str) -> None:
    """A model as the Hugging Face cache holds it after a download (refs/main -> a snapshot with config.json)."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")


def test_base_model_forms(engine, pclue_dataset, tiny_model_dir, tmp_path, monkeypatch):
    cache_hub_model(tmp_path / "hf", "HuggingFaceTB/SmolLM2-135M-Instruct")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with Session(engine) as s:
        assert resolve_base_model(s, "") == ""
        assert (
            resolve_base_model(s, "HuggingFaceTB/SmolLM2-135M-Instruct")
            == "HuggingFaceTB/SmolLM2-135M-Instruct"
        )
        for missing in (
            "HuggingFaceTB/SmolLM2-999M",
            "models/llama",
        ):  # a typo; a relative path that is not there
            with pytest.raises(LaunchError, match="not in the Hugging Face cache; give a local path") as err:
                resolve_base_model(s, missing)
            assert err.value.field == "base_model" and "\n" not in err.value.message
        assert resolve_base_model(s, str(tiny_model_dir)) == str(tiny_model_dir.resolve())
        parent = create_run(s, request(pclue_dataset))
        ckpt = fake_checkpoint(Path(parent.run_dir))
        assert resolve_base_model(s, f"run:{parent.id}/step-00000004") == str(ckpt.resolve())
        (ckpt.parent / "step-00000008").mkdir()  # no state.json: an unfinished save
        with pytest.raises(LaunchError, match="no complete checkpoint") as err:
            resolve_base_model(s, f"run:{parent.id}/step-00000008")
        assert err.value.field == "base_model"
        child = create_run(s, request(pclue_dataset, base_model=f"run:{parent.id}/step-00000004"))
        assert json.loads(child.config_json)["model"]["path"] == str(ckpt.resolve())
        assert child.base_model == f"run:{parent.id}/step-00000004"


def test_launch_commits_and_sends_the_task_to_the_current_broker(settings, engine, pclue_dataset):
    run_id = launch(request(pclue_dataset))
    with Session(engine) as s:
        run = s.get(Run, run_id)
        assert run.status == RunStatus.queued and run.job.sends == 1 and run.job.sent_at is not None
    # The broker file of this test's data dir, not the one worker.celery_app was built with at import.
    assert Path(settings.celery_broker.removeprefix("sqla+sqlite:///")).parent == settings.data_dir.resolve()
    assert broker_messages(settings) == [{"task": "jobs.run", "args": [run.job_id]}]


def test_an_unreachable_broker_is_a_clear_error_and_a_failed_run(
    settings, engine, pclue_dataset, monkeypatch
):
    monkeypatch.setenv("SFTLAB_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    get_settings.cache_clear()
    t0 = time.monotonic()
    with pytest.raises(LaunchError, match="the task queue is unreachable") as err:
        launch(request(pclue_dataset))
    assert time.monotonic() - t0 < 5  # the request says so within seconds
    assert err.value.field == "queue"
    with Session(engine) as s:
        run = s.exec(select(Run)).one()
        assert run.status == RunStatus.failed and "unreachable" in run.error and run.finished_at
