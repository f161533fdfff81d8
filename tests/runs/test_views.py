"""Run page data: ETA from recent step times, progress, per-task_type counts, checkpoints, log tail; a real run."""

from datetime import timedelta

import pytest
from sqlmodel import Session

from app.models import Run, RunStatus, utcnow
from app.runs import views
from tests.runs.fake_runs import make_run, synthetic_events, train_event


def test_eta_from_recent_steps():
    # 10 s per step over the window, 90 steps left
    assert views.eta_s(step=10, total_steps=100, recent=[(5, 100.0), (10, 150.0)]) == 900.0
    assert views.eta_s(step=10, total_steps=100, recent=[(10, 150.0)]) is None
    assert views.eta_s(step=10, total_steps=0, recent=[(5, 1.0), (10, 2.0)]) is None
    assert views.eta_s(step=100, total_steps=100, recent=[]) == 0.0
    assert views.eta_s(step=10, total_steps=100, recent=[(10, 1.0), (10, 2.0)]) is None


def test_progress_uses_the_last_train_events_wall_times(engine, make_user):
    events = [e for e in synthetic_events(30, done=False) if e["type"] in ("start", "train")]
    with Session(engine) as session:
        run = make_run(
            session, make_user().id, status=RunStatus.running, events=events[:21]
        )  # start + 20 steps
        run.job.progress_total = 50
        p = views.progress(session, run)
    assert p["step"] == 20 and p["fraction"] == 0.4 and not p["finished"]
    assert p["eta_s"] == 30 * 2.0  # train_event spaces steps dt = 2 s apart


def test_finished_run_has_no_eta_and_a_fixed_duration(engine, make_user):
    with Session(engine) as session:
        run = make_run(session, make_user().id, status=RunStatus.succeeded, events=synthetic_events(5))
        run.job.started_at = utcnow() - timedelta(seconds=100)
        run.job.finished_at = run.started_at + timedelta(seconds=42)
        p = views.progress(session, run)
    assert p["finished"] and p["eta_s"] is None and p["duration_s"] == 42.0


def test_a_queued_run_counts_the_runs_a_worker_takes_first_on_its_queue(engine, make_user):
    owner = make_user().id
    with Session(engine) as session:
        made = {}
        for name, status, queue in [
            ("running", RunStatus.running, "cpu"),
            ("older", RunStatus.queued, "cpu"),
            ("finished", RunStatus.succeeded, "cpu"),
            ("other queue", RunStatus.queued, "gpu-8"),
            ("mine", RunStatus.queued, "cpu"),
            ("younger", RunStatus.queued, "cpu"),
        ]:
            run = make_run(session, owner, name=name, status=status)
            run.job.queue, run.job.created_at = queue, utcnow() + timedelta(seconds=len(made))
            session.add(run)
            session.commit()
            made[name] = run
        # independent count: running on cpu (1) + queued on cpu created before "mine" (1)
        assert views.runs_ahead(session, made["mine"]) == 2
        assert views.runs_ahead(session, made["older"]) == 1
        assert views.runs_ahead(session, made["other queue"]) == 0
        assert views.runs_ahead(session, made["running"]) is None


def test_counts_from_the_start_event():
    start = synthetic_events(1)[0]
    rows = views.data_counts(start)
    assert rows[0] == {"task_type": "分类", "read": 12, "eval": 2, "train_after_mix": 10, "train_seen": 20}
    assert [r["task_type"] for r in rows] == ["分类", "逻辑推理"]
    assert views.data_counts(None) == []
    assert views.data_counts({"counts": "junk", "counts_per_task": {"a": 3}}) == [
        {"task_type": "a", "read": None, "eval": None, "train_after_mix": None, "train_seen": 3}
    ]


def test_log_tail_checkpoints_and_missing_run_dir(engine, make_user, tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "train.log").write_text("".join(f"l{i}\n" for i in range(5000)))
    for step, complete in ((4, True), (12, True), (16, False)):
        state = run_dir / "checkpoints" / f"step-{step:08d}" / "trainer_state"
        state.mkdir(parents=True)
        if complete:
            (state / "state.json").write_text("{}")
    with Session(engine) as session:
        run = make_run(session, make_user().id, run_dir=run_dir, events=[train_event(1)])
        data = views.page_data(session, run)
        lines = data["log"].splitlines()
        assert len(lines) == views.LOG_LINES and lines[-1] == "l4999" and lines[0] == "l4800"
        assert [c["step"] for c in data["checkpoints"]] == [4, 12]  # step 16 is half-written
        run.run_dir = str(tmp_path / "gone")
        run.job.log_tail = "saved by the worker"
        gone = views.page_data(session, run)
    assert gone["log"] == "saved by the worker" and gone["checkpoints"] == [] and gone["deepspeed"] == ""


@pytest.mark.slow
def test_a_real_tiny_run_shows_its_curves_counts_checkpoints_and_samples(
    engine, researcher, pclue_dataset, tiny_model_dir, monkeypatch, inline_worker
):
    from app.core.config import get_settings
    from tests.runs.test_executor import new_run, tiny_config
    from worker.kinds.train import execute_run as execute

    monkeypatch.setenv("SFTLAB_TRAINER_THREADS", "1")
    monkeypatch.setenv("SFTLAB_TAIL_INTERVAL", "0.1")
    get_settings.cache_clear()
    config = tiny_config(epochs=0.2)
    config["checkpoint"]["at_epoch_end"] = True  # the run's end counts as an epoch end
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, config=config)
    assert execute(run_id, task_id="t") is True
    page = researcher.get(f"/runs/{run_id}")
    assert page.status_code == 200 and "succeeded" in page.text
    with Session(engine) as session:
        run = session.get(Run, run_id)
        assert run.status == RunStatus.succeeded, run.job.log_tail
    for task in pclue_dataset.task_counts:
        assert task in page.text  # per-task_type counts from the start event
    assert "step-0000" in page.text  # the end-of-run checkpoint
    data = researcher.get(f"/api/runs/{run_id}/series").json()
    assert data["train"]["x"][-1] == run.total_steps
    assert "overall" in data["train"]["series"] and "special" in data["train"]["series"]
    assert any(name.startswith("l1/") for name in data["train"]["series"])
    assert data["checkpoints"]
    sample = researcher.get(f"/api/runs/{run_id}/samples/0").json()
    assert sample.get("error") == "", sample
    print("SAMPLE", {k: v for k, v in sample.items() if k != "tokens"}) and sample[
        "n_supervised"
    ] > 0 and sample["where"].startswith("train.jsonl:")


def test_eta_after_a_resume_uses_only_the_new_attempts_events(engine, make_user):
    """The crashed attempt's steps (and the downtime before the resume) must not enter the ETA."""
    crashed = [train_event(k, t0=1000.0, dt=2.0) for k in range(1, 31)]  # reached step 30, then died
    resumed = {"type": "checkpoint", "step": 20, "path": "/r/checkpoints/step-00000020", "resumed": True}
    again = [train_event(k, t0=90_000.0, dt=5.0) for k in range(21, 26)]  # hours later, 5 s a step
    with Session(engine) as session:
        run = make_run(session, make_user().id, status=RunStatus.running, events=[*crashed, resumed, *again])
        run.job.progress_total = 100
        assert views.resumed_at(session, run.id) == len(crashed)
        p = views.progress(session, run)
    assert p["step"] == 25
    assert p["eta_s"] == 75 * 5.0
