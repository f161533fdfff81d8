"""Cancel acts by status (queued at once, running by flag, finished refused); resume needs a checkpoint and a gone worker."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from app.models import Run, RunStatus, utcnow
from app.runs.launch import create_run
from app.runs.lifecycle import LifecycleError, can_resume, request_cancel, resume
from tests.runs.test_launch import broker_messages, fake_checkpoint, request


@pytest.fixture
def run_id(engine, pclue_dataset) -> int:
    with Session(engine) as s:
        run = create_run(s, request(pclue_dataset))
        s.commit()
        return run.id


def set_status(engine, run_id: int, status: RunStatus) -> None:
    with Session(engine) as s:
        run = s.get(Run, run_id)
        run.job.status = status
        if status != RunStatus.running:
            run.job.finished_at = utcnow()
        s.add(run)
        s.commit()


def test_cancel_a_queued_run_at_once(engine, run_id):
    with Session(engine) as s:
        request_cancel(s, s.get(Run, run_id))
    with Session(engine) as s:
        run = s.get(Run, run_id)
        assert run.status == RunStatus.cancelled and run.finished_at is not None
        assert not run.job.cancel_requested


def test_cancel_a_running_run_flags_it_for_the_executor(engine, run_id):
    set_status(engine, run_id, RunStatus.running)
    with Session(engine) as s:
        request_cancel(s, s.get(Run, run_id))
    with Session(engine) as s:
        run = s.get(Run, run_id)
        assert run.status == RunStatus.running and run.job.cancel_requested


@pytest.mark.parametrize(
    "status", [RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled, RunStatus.lost]
)
def test_cancel_a_finished_run_is_refused(engine, run_id, status):
    set_status(engine, run_id, status)
    with Session(engine) as s:
        with pytest.raises(LifecycleError, match=f"already {status.value}"):
            request_cancel(s, s.get(Run, run_id))
        assert s.get(Run, run_id).status == status


def test_can_resume_needs_a_finished_unsuccessful_run_with_a_checkpoint(engine, run_id):
    with Session(engine) as s:
        run = s.get(Run, run_id)
        assert not can_resume(run)  # queued
        set_status(engine, run_id, RunStatus.lost)
        s.refresh(run)
        assert not can_resume(run)  # no checkpoint yet
        (Path(run.run_dir) / "checkpoints" / "step-00000002").mkdir(parents=True)
        assert not can_resume(run)  # incomplete: no trainer_state/state.json
        fake_checkpoint(Path(run.run_dir))
        assert can_resume(run)
        set_status(engine, run_id, RunStatus.succeeded)
        s.refresh(run)
        assert not can_resume(run)


def test_resume_queues_the_run_again_with_resume_on(settings, engine, run_id):
    set_status(engine, run_id, RunStatus.failed)
    with Session(engine) as s:
        run = s.get(Run, run_id)
        run.job.error, run.job.exit_code = "killed by SIGKILL", -9
        s.add(run)
        s.commit()
        fake_checkpoint(Path(run.run_dir))
        resume(s, run)
    with Session(engine) as s:
        run = s.get(Run, run_id)
        assert run.status == RunStatus.queued and run.resume
        assert json.loads(run.config_json)["checkpoint"]["resume"] is True
        assert run.error == "" and run.job.exit_code is None and run.finished_at is None
    assert broker_messages(settings) == [{"task": "jobs.run", "args": [run.job_id]}]


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (RunStatus.succeeded, "clone it"),
        (RunStatus.running, "only a finished"),
        (RunStatus.failed, "no complete"),
    ],
)
def test_resume_refuses_with_a_reason(engine, run_id, status, words):
    set_status(engine, run_id, status)
    with Session(engine) as s:
        with pytest.raises(LifecycleError, match=words):
            resume(s, s.get(Run, run_id))


def test_a_lost_run_whose_worker_was_just_heard_from_is_not_resumed(settings, engine, run_id):
    # Marked lost by a reaper whose clock runs ahead: its trainer may still be training in the run dir.
    set_status(engine, run_id, RunStatus.lost)
    with Session(engine) as s:
        run = s.get(Run, run_id)
        run.job.heartbeat_at = utcnow() - timedelta(seconds=5)
        s.add(run)
        s.commit()
        fake_checkpoint(Path(run.run_dir))
        assert not can_resume(run)
        with pytest.raises(LifecycleError, match=r"heard from [56] s ago; wait until it is really gone"):
            resume(s, run)
        assert s.get(Run, run_id).status == RunStatus.lost
        run.job.heartbeat_at = utcnow() - timedelta(seconds=settings.heartbeat_timeout + 1)
        s.add(run)
        s.commit()
        assert can_resume(run)
        resume(s, run)
        assert s.get(Run, run_id).status == RunStatus.queued
