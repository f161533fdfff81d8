"""execute() runs a real trainer: success, failure reasons, cancel; a wrongly lost run taken back, a stale attempt fenced out."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from app.core.config import get_settings
from app.models import Run, RunEvent, RunStatus, utcnow
from app.runs.launch import create_run
from app.runs.lifecycle import can_resume, request_cancel, resume
from tests.runs.fake_runs import job_of
from tests.runs.test_launch import request
from tests.runs.test_reaper import make_run
from trainer.config import tiny_debug
from worker.kinds.train import Train
from worker.kinds.train import execute_run as execute
from worker.kinds.train import run_tailer as Tailer
from worker.processes import job_processes as run_processes
from worker.reaper import reap
from worker.runner import Execution, Outcome, drain, failure_reason
from worker.tailer import Superseded


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
    cfg.data.over_length = "truncate"
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
            1,
            "",
            "exitcode  : -40 (pid: 7)",
            "a rank was killed by SIGRTMIN+6 (signal 40); trainer exited with code 1",
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
    assert run.status == RunStatus.succeeded, (run.error, run.job.log_tail)
    assert run.job.worker and run.job.pid and run.job.task_id == "task-1" and run.job.exit_code == 0
    assert run.started_at is not None and run.finished_at is not None and run.job.heartbeat_at is not None
    written = file_events(run)
    with Session(engine) as s:
        rows = list(s.exec(select(RunEvent).where(RunEvent.run_id == run_id).order_by(RunEvent.seq)))
    assert [r.seq for r in rows] == list(range(len(written))) and run.job.events_seq == len(written)
    assert [json.loads(r.data) for r in rows] == written
    trains = [e for e in written if e["type"] == "train"]
    assert written[0]["type"] == "start" and written[-1]["type"] == "done"
    assert run.total_steps == written[0]["total_steps"] == run.step == trains[-1]["step"] > 0
    assert run.final_loss == pytest.approx(trains[-1]["channels"]["overall"]["loss"])
    # The exported data: every pCLUE sample of the version, in the trainer's format.
    exported = (Path(run.run_dir) / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(exported) == sum(pclue_dataset.task_counts.values())
    assert json.loads((Path(run.run_dir) / "run.json").read_text()) == json.loads(run.config_json)
    assert "trainer.train" in run.job.log_tail
    # A redelivered task (acks late) for a finished run does nothing.
    assert execute(run_id) is False
    assert get(engine, run_id).finished_at == run.finished_at


def test_a_trainer_that_rejects_its_data_fails_with_the_reason(fast, engine, pclue_dataset, tiny_model_dir):
    # Passes the form's checks, but every sample is longer than 8 tokens and over_length is "error".
    cfg = tiny_config(max_seq_len=8, over_length="error")
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, config=cfg)
    execute(run_id)
    run = get(engine, run_id)
    assert run.status == RunStatus.failed
    assert run.error.startswith("trainer exited with code 2: ") and "max_seq_len" in run.error
    assert "max_seq_len" in run.job.log_tail and run.job.exit_code == 2
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
    assert "has no chat template" in run.job.log_tail


@pytest.mark.slow
def test_a_trainer_killed_by_sigkill_fails_as_out_of_memory(fast, engine, pclue_dataset, tiny_model_dir):
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, config=tiny_config(epochs=3.0))
    t = in_thread(run_id)
    run = wait_for(lambda: (r := get(engine, run_id)).job.events_seq > 1 and r, 60, "the first events")
    assert os.getsid(run.job.pid) == run.job.pid  # a session (and process group) of its own
    environ = Path(f"/proc/{run.job.pid}/environ").read_bytes().split(b"\0")
    assert b"OMP_NUM_THREADS=1" in environ  # settings.trainer_threads
    os.kill(run.job.pid, signal.SIGKILL)  # what the kernel's OOM killer does
    t.join(timeout=30)
    run = get(engine, run_id)
    assert run.status == RunStatus.failed and run.job.exit_code == -9
    assert run.error == "killed by SIGKILL (signal 9): out of memory?"
    assert run.job.log_tail


@pytest.mark.slow
def test_cancel_kills_the_whole_process_group_within_seconds(fast, engine, pclue_dataset, tiny_model_dir):
    # Two CPU ranks: torchrun starts its ranks in sessions of their own, so a bare killpg would miss them.
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, config=tiny_config(epochs=3.0), n_procs=2)
    t = in_thread(run_id)
    run = wait_for(lambda: (r := get(engine, run_id)).job.events_seq > 1 and r, 90, "the first events")
    marker = str(Path(run.run_dir) / "run.json")
    procs = run_processes(run.job.pid, marker)
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
    assert run_processes(run.job.pid, marker) == []
    with pytest.raises(ProcessLookupError):
        os.killpg(run.job.pid, 0)
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
    os.kill(get(engine, run_id).job.pid, signal.SIGKILL)
    t.join(timeout=30)
    run = get(engine, run_id)
    assert run.status == RunStatus.failed and can_resume(run), run.error
    with open(Path(run.run_dir) / "metrics.jsonl", "ab") as fh:
        fh.write(b'{"type": "train", "st')  # as if killed in the middle of a line
    with Session(engine) as s:
        resume(s, s.get(Run, run_id))
    assert execute(run_id) is True
    run = get(engine, run_id)
    assert run.status == RunStatus.succeeded, (run.error, run.job.log_tail)
    written = file_events(run)  # every line parses: the partial one was cut before the trainer appended
    with Session(engine) as s:
        rows = list(s.exec(select(RunEvent).where(RunEvent.run_id == run_id).order_by(RunEvent.seq)))
    assert [json.loads(r.data) for r in rows] == written and run.job.events_seq == len(written)
    assert [e["type"] for e in written].count("start") == 1
    resumed = [e for e in written if e["type"] == "checkpoint" and e.get("resumed")]
    assert len(resumed) == 1 and resumed[0]["step"] >= saved
    after = [e["step"] for e in written[written.index(resumed[0]) :] if e["type"] == "train"]
    assert after[0] == resumed[0]["step"] + 1 and after[-1] == run.total_steps == run.step


# ---- a run wrongly marked lost, a superseded attempt, the final drain, abort: no trainer needed ----


def held_run(engine, owner_id: int, root: Path, **kw) -> int:
    """A running run held by task "mine", last heard from a minute ago."""
    kw.setdefault("task_id", "mine")
    return make_run(engine, owner_id, root, **kw).id


def sleeper(root: Path) -> subprocess.Popen:
    """A stand-in trainer: a session of its own, run.json on its command line."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", str(root / "run.json")], start_new_session=True
    )


def execution(settings, engine, run_id: int, task_id: str, root: Path, proc=None) -> Execution:
    with Session(engine, expire_on_commit=False) as s:
        job = s.get(Run, run_id).job
    ex = Execution(job, Train(), settings, engine, task_id=task_id)
    ex.root, ex.proc, ex.marker = root, proc, str(root / "run.json")
    ex.last_beat = float("-inf")  # the next beat() is due
    return ex


@pytest.fixture
def owner(make_user) -> int:
    return make_user().id


def test_a_run_marked_lost_while_its_trainer_runs_is_taken_back(settings, engine, owner, tmp_path):
    run_id = held_run(engine, owner, tmp_path)
    assert reap() == [job_of(engine, run_id)]  # on another host: nothing killed here
    proc = sleeper(tmp_path)
    try:
        execution(settings, engine, run_id, "mine", tmp_path, proc).beat()
        run = get(engine, run_id)
        assert run.status == RunStatus.running and run.error == "" and run.finished_at is None
        assert utcnow() - run.job.heartbeat_at.replace(tzinfo=utcnow().tzinfo) < timedelta(seconds=10)
    finally:
        proc.kill()
        proc.wait()
    # Once its trainer has exited, a lost run stays lost until the executor records the outcome.
    assert reap(utcnow() + timedelta(minutes=5)) == [run_id]
    ex = execution(settings, engine, run_id, "mine", tmp_path, proc)
    ex.beat()
    assert get(engine, run_id).status == RunStatus.lost and not ex.superseded


def test_a_superseded_executor_writes_nothing(settings, engine, owner, tmp_path):
    # Lost, resumed and claimed by task "resumed" while the first task's executor was stalled.
    run_id = held_run(engine, owner, tmp_path, task_id="resumed", status=RunStatus.lost)
    before = get(engine, run_id)
    proc = sleeper(tmp_path)
    try:
        ex = execution(settings, engine, run_id, "first", tmp_path, proc)
        ex.beat()
        assert ex.superseded
        ex.store(Outcome(RunStatus.succeeded), 0, "tail")
        (tmp_path / "metrics.jsonl").write_bytes(b'{"type": "done", "step": 1}\n')
        with pytest.raises(Superseded):
            drain(
                Tailer(engine, run_id, tmp_path / "metrics.jsonl", task_id="first"), timeout=1, interval=0.01
            )
        after = get(engine, run_id)
        assert (after.model_dump(), after.job.model_dump()) == (before.model_dump(), before.job.model_dump())
        # Its kill spares whatever else names run.json: the attempt holding the run now.
        other = sleeper(tmp_path)
        try:
            ex.kill(signal.SIGKILL)
            assert proc.wait(timeout=10) == -9
            time.sleep(0.2)
            assert other.poll() is None
        finally:
            other.kill()
            other.wait()
    finally:
        proc.kill()
        proc.wait()


def test_the_final_drain_stores_done_through_a_resync_and_a_locked_database(
    settings, engine, owner, tmp_path, monkeypatch
):
    run_id = held_run(engine, owner, tmp_path)
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b"".join(json.dumps({"type": "train", "step": i}).encode() + b"\n" for i in (1, 2)))
    ours = Tailer(engine, run_id, path, task_id="mine")
    assert ours.poll() == 2
    with open(path, "ab") as fh:
        fh.write(b'{"type": "train", "step": 3}\n')
    assert Tailer(engine, run_id, path, task_id="mine").poll() == 1  # a restarted tailer got there first
    with open(path, "ab") as fh:
        fh.write(b'{"type": "done", "step": 3}\n{"type": "tra')  # done, then a line cut by a kill
    real_poll, calls = ours.poll, []

    def poll() -> int:
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("UPDATE run", {}, Exception("database is locked"))
        return real_poll()

    monkeypatch.setattr(ours, "poll", poll)
    drain(ours, timeout=5, interval=0.01)  # poll() said 0 first (moved under it), then the lock
    with Session(engine) as s:
        kinds = s.exec(select(RunEvent.type).where(RunEvent.run_id == run_id).order_by(RunEvent.seq)).all()
    assert kinds == ["train", "train", "train", "done"]


def test_abort_kills_the_trainer_when_the_database_is_gone(settings, engine, owner, tmp_path):
    run_id = held_run(engine, owner, tmp_path)
    proc = sleeper(tmp_path)
    try:
        ex = execution(settings, engine, run_id, "mine", tmp_path, proc)
        ex.engine = create_engine(f"sqlite:///{tmp_path}/no/such/dir.db")
        t0 = time.monotonic()
        ex.abort(OperationalError("SELECT", {}, Exception("unable to open database file")))
        assert proc.returncode == -9 and time.monotonic() - t0 < 10
    finally:
        proc.kill()
        proc.wait()
    assert get(engine, run_id).status == RunStatus.running  # left to the reaper


# ---- the same with a real trainer ----


@pytest.mark.slow
def test_a_run_lost_to_a_reaper_elsewhere_is_taken_back_and_succeeds(
    fast, engine, pclue_dataset, tiny_model_dir, monkeypatch
):
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, config=tiny_config(epochs=0.4))
    t = in_thread(run_id)
    wait_for(lambda: get(engine, run_id).job.events_seq > 1, 60, "the first events")
    # The web server's reaper on another host, its clock an hour ahead.
    monkeypatch.setattr("worker.reaper.socket", SimpleNamespace(gethostname=lambda: "web-1"))
    assert reap(utcnow() + timedelta(hours=1)) == [run_id]
    wait_for(lambda: get(engine, run_id).status == RunStatus.running, 10, "the run taken back")
    t.join(timeout=120)
    run = get(engine, run_id)
    assert run.status == RunStatus.succeeded and run.error == "", (run.error, run.job.log_tail)


@pytest.mark.slow
def test_a_superseded_attempt_kills_its_trainer_and_records_nothing(
    fast, engine, pclue_dataset, tiny_model_dir
):
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, config=tiny_config(epochs=3.0))
    t = in_thread(run_id)
    run = wait_for(lambda: (r := get(engine, run_id)).job.events_seq > 1 and r, 60, "the first events")
    procs = run_processes(run.job.pid, str(Path(run.run_dir) / "run.json"))
    with Session(engine) as s:  # lost, resumed and claimed by another worker meanwhile
        taken = s.get(Run, run_id)
        taken.job.task_id = "t-2"
        s.add(taken)
        s.commit()
    seq = get(engine, run_id).job.events_seq
    t.join(timeout=30)
    assert not t.is_alive()
    gone, alive = psutil.wait_procs(procs, timeout=5)
    assert not alive, [p.cmdline() for p in alive]
    run = get(engine, run_id)
    assert (run.status, run.job.task_id, run.error, run.finished_at) == (RunStatus.running, "t-2", "", None)
    assert run.job.events_seq == seq


def test_a_run_over_train_max_hours_fails_saying_so_with_a_checkpoint(
    fast, engine, pclue_dataset, tiny_model_dir
):
    cfg = tiny_config(epochs=0.2)
    cfg["train"]["max_hours"] = 1e-12  # over after the first step
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, config=cfg)
    execute(run_id)
    run = get(engine, run_id)
    assert run.status == RunStatus.failed
    assert "stopped by train.max_hours=1e-12 at step 1 of" in run.error and "resume" in run.error
    assert [p.name for p in Path(run.run_dir).rglob("step-*")] == ["step-00000001"]  # resumable from there
