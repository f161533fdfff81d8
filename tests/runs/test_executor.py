"""execute() runs a real trainer subprocess: success with every event stored, failures with reasons, cancel."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
from sqlmodel import Session, func, select

from app.core.config import get_settings
from app.models import Run, RunEvent, RunStatus
from app.runs.executor import execute, failure_reason, run_processes
from app.runs.launch import create_run
from app.runs.lifecycle import can_resume, request_cancel, resume
from tests.runs.test_launch import request
from trainer.config import tiny_debug


@pytest.fixture
def fast(settings, monkeypatch):
    """Short intervals and one thread per trainer rank (2-core CI)."""
    for key, value in {
        "SFTLAB_TRAINER_THREADS": "1",
        "SFTLAB_HEARTBEAT_INTERVAL": "0.5",
        "SFTLAB_TAIL_INTERVAL": "0.1",
        "SFTLAB_CANCEL_GRACE": "2",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return get_settings()


def tiny_config(*, epochs: float = 0.05, max_seq_len: int = 256, **data) -> dict:
    cfg = tiny_debug()
    cfg.train.epochs = epochs
    cfg.data.max_seq_len = max_seq_len
    cfg.data.truncation = True
    for key, value in data.items():
        setattr(cfg.data, key, value)
    return cfg.to_dict()


def new_run(engine, ds, model_dir: Path, **kw) -> int:
    kw.setdefault("config", tiny_config())
    with Session(engine) as s:
        run = create_run(s, request(ds, base_model=str(model_dir), **kw))
        s.commit()
        return run.id


def get(engine, run_id: int) -> Run:
    with Session(engine) as s:
        return s.get(Run, run_id)


def file_events(run: Run) -> list[dict]:
    lines = (Path(run.run_dir) / "metrics.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b""
    return [json.loads(line) for line in lines[:-1]]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def in_thread(run_id: int) -> threading.Thread:
    t = threading.Thread(target=execute, args=(run_id,), kwargs={"task_id": "t-1"}, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize(
    ("rc", "event", "tail", "reason"),
    [
        (-9, "", "", "killed by SIGKILL (signal 9): out of memory?"),
        (-15, "", "", "killed by SIGTERM (signal 15)"),
        (
            1,
            "",
            "[0]:\n  exitcode  : -9 (pid: 4242)\n  error_file: <N/A>\n  traceback : Signal 9 (SIGKILL) received",
            "a rank was killed by SIGKILL (signal 9): out of memory?; trainer exited with code 1",
        ),
        (
            2,
            "DataError: sample 3 is longer than max_seq_len",
            "x",
            "trainer exited with code 2: DataError: sample 3 is longer than max_seq_len",
        ),
        (
            2,
            "",
            "loading\nconfig error: train.lr must be > 0\n\n",
            "trainer exited with code 2: config error: train.lr must be > 0",
        ),
        (0, "", "", "trainer exited without finishing (no done event)"),
    ],
)
def test_failure_reasons(rc, event, tail, reason):
    assert failure_reason(rc, event, tail) == reason


@pytest.mark.slow
def test_a_tiny_run_succeeds_with_every_event_stored(fast, engine, pclue_dataset, tiny_model_dir):
    run_id = new_run(engine, pclue_dataset, tiny_model_dir)
    assert execute(run_id, task_id="task-1") is True
    run = get(engine, run_id)
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    assert run.worker and run.pid and run.task_id == "task-1" and run.exit_code == 0
    assert run.started_at is not None and run.finished_at is not None and run.heartbeat_at is not None
    written = file_events(run)
    with Session(engine) as s:
        rows = list(s.exec(select(RunEvent).where(RunEvent.run_id == run_id).order_by(RunEvent.seq)))
    assert [r.seq for r in rows] == list(range(len(written))) and run.events_seq == len(written)
    assert [json.loads(r.data) for r in rows] == written
    trains = [e for e in written if e["type"] == "train"]
    assert written[0]["type"] == "start" and written[-1]["type"] == "done"
    assert run.total_steps == written[0]["total_steps"] == run.step == trains[-1]["step"] > 0
    assert run.final_loss == pytest.approx(trains[-1]["loss"])
    # The exported data: every pCLUE sample of the version, in the trainer's format.
    exported = (Path(run.run_dir) / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(exported) == sum(pclue_dataset.task_counts.values())
    assert json.loads((Path(run.run_dir) / "run.json").read_text()) == json.loads(run.config_json)
    assert "trainer.train" in run.log_tail
    # A redelivered task (acks late) for a finished run does nothing.
    assert execute(run_id) is False
    assert get(engine, run_id).finished_at == run.finished_at


def test_a_trainer_that_rejects_its_data_fails_with_the_reason(fast, engine, pclue_dataset, tiny_model_dir):
    # Passes the form's checks, but every sample is longer than 8 tokens and truncation is off.
    cfg = tiny_config(max_seq_len=8, truncation=False)
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, config=cfg)
    execute(run_id)
    run = get(engine, run_id)
    assert run.status == RunStatus.failed
    assert run.error.startswith("trainer exited with code 2: ") and "max_seq_len" in run.error
    assert "max_seq_len" in run.log_tail and run.exit_code == 2
    with Session(engine) as s:
        kinds = s.exec(select(RunEvent.type).where(RunEvent.run_id == run_id)).all()
    assert "error" in kinds


def test_a_config_the_trainer_refuses_fails_with_its_message(
    fast, engine, pclue_dataset, tiny_model_dir, tmp_path
):
    model = tmp_path / "gone"
    model.mkdir()
    (model / "config.json").write_text("{}")  # passes the launch check; the trainer finds no chat template
    run_id = new_run(engine, pclue_dataset, model)
    execute(run_id)
    run = get(engine, run_id)
    assert run.status == RunStatus.failed
    assert run.error.startswith("trainer exited with code 2: config error: model.path")
    assert run.error.endswith("has no chat template (chat_template.jinja or tokenizer_config.json)")
    assert "has no chat template" in run.log_tail


@pytest.mark.slow
def test_a_trainer_killed_by_sigkill_fails_as_out_of_memory(fast, engine, pclue_dataset, tiny_model_dir):
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, config=tiny_config(epochs=3.0))
    t = in_thread(run_id)
    run = wait_for(lambda: (r := get(engine, run_id)).events_seq > 1 and r, 60, "the first events")
    assert os.getsid(run.pid) == run.pid  # a session (and process group) of its own
    environ = Path(f"/proc/{run.pid}/environ").read_bytes().split(b"\0")
    assert b"OMP_NUM_THREADS=1" in environ  # settings.trainer_threads
    os.kill(run.pid, signal.SIGKILL)  # what the kernel's OOM killer does
    t.join(timeout=30)
    run = get(engine, run_id)
    assert run.status == RunStatus.failed and run.exit_code == -9
    assert run.error == "killed by SIGKILL (signal 9): out of memory?"
    assert run.log_tail


@pytest.mark.slow
def test_cancel_kills_the_whole_process_group_within_seconds(fast, engine, pclue_dataset, tiny_model_dir):
    # Two CPU ranks: torchrun starts its ranks in sessions of their own, so a bare killpg would miss them.
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, config=tiny_config(epochs=3.0), n_procs=2)
    t = in_thread(run_id)
    run = wait_for(lambda: (r := get(engine, run_id)).events_seq > 1 and r, 90, "the first events")
    marker = str(Path(run.run_dir) / "run.json")
    procs = run_processes(run.pid, marker)
    assert len(procs) >= 3, [p.cmdline() for p in procs]  # torchrun + 2 ranks
    t0 = time.monotonic()
    with Session(engine) as s:
        request_cancel(s, s.get(Run, run_id))
    t.join(timeout=30)
    took = time.monotonic() - t0
    run = get(engine, run_id)
    assert run.status == RunStatus.cancelled and run.error == "cancelled on request"
    assert took < 10, f"cancel took {took:.1f}s"
    gone, alive = psutil.wait_procs(procs, timeout=5)
    assert not alive, [p.cmdline() for p in alive]
    assert run_processes(run.pid, marker) == []
    with pytest.raises(ProcessLookupError):
        os.killpg(run.pid, 0)
    with Session(engine) as s:
        stored = s.exec(select(func.count()).where(RunEvent.run_id == run_id)).one()
    assert stored == len(file_events(run))


@pytest.mark.slow
def test_resume_continues_a_killed_run_from_its_checkpoint(fast, engine, pclue_dataset, tiny_model_dir):
    cfg = tiny_config(epochs=0.4)
    cfg["checkpoint"].update(every_n_steps=20, keep_last=2)
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, config=cfg)
    t = in_thread(run_id)

    def checkpoint_step() -> int | None:
        with Session(engine) as s:
            query = select(RunEvent.step).where(RunEvent.run_id == run_id, RunEvent.type == "checkpoint")
            return s.exec(query).first()

    saved = wait_for(checkpoint_step, 60, "a checkpoint")
    os.kill(get(engine, run_id).pid, signal.SIGKILL)
    t.join(timeout=30)
    run = get(engine, run_id)
    assert run.status == RunStatus.failed and can_resume(run), run.error
    with open(Path(run.run_dir) / "metrics.jsonl", "ab") as fh:
        fh.write(b'{"type": "train", "st')  # as if killed in the middle of a line
    with Session(engine) as s:
        resume(s, s.get(Run, run_id))
    assert execute(run_id) is True
    run = get(engine, run_id)
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    written = file_events(run)  # every line parses: the partial one was cut before the trainer appended
    with Session(engine) as s:
        rows = list(s.exec(select(RunEvent).where(RunEvent.run_id == run_id).order_by(RunEvent.seq)))
    assert [json.loads(r.data) for r in rows] == written and run.events_seq == len(written)
    assert [e["type"] for e in written].count("start") == 1
    resumed = [e for e in written if e["type"] == "checkpoint" and e.get("resumed")]
    assert len(resumed) == 1 and resumed[0]["step"] >= saved
    after = [e["step"] for e in written[written.index(resumed[0]) :] if e["type"] == "train"]
    assert after[0] == resumed[0]["step"] + 1 and after[-1] == run.total_steps == run.step
