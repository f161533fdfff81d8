"""A GPU run takes device ids from its host's allocator: it waits (saying so) while another run holds them,
starts with `--include localhost:<ids>` once they are free, gives them back when it ends, and fails at once
on a host with fewer GPUs than it asks for. GPUs are faked (SFTLAB_FAKE_GPUS); no trainer is needed."""

import os
import threading

import pytest
from sqlmodel import Session

from app.core.config import get_settings
from app.models import Job, Run, RunStatus
from app.runs.lifecycle import request_cancel
from tests.runs.fake_runs import job_of
from tests.runs.test_executor import get, new_run, wait_for
from worker.devices import allocator
from worker.kinds.train import execute_run


@pytest.fixture
def two_gpus(settings, monkeypatch):
    for key, value in {
        "SFTLAB_FAKE_GPUS": "NVIDIA H100 80GB HBM3,NVIDIA H100 80GB HBM3",
        "SFTLAB_GPU_WAIT_INTERVAL": "0.2",
        "SFTLAB_HEARTBEAT_INTERVAL": "0.5",
        "SFTLAB_TAIL_INTERVAL": "0.1",
        "SFTLAB_CANCEL_GRACE": "1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    get_settings.cache_clear()
    return get_settings()


def start(run_id: int) -> threading.Thread:
    t = threading.Thread(target=execute_run, args=(run_id,), kwargs={"task_id": f"t-{run_id}"}, daemon=True)
    t.start()
    return t


def cancel(engine, run_id: int) -> None:
    with Session(engine) as s:
        request_cancel(s, s.get_one(Run, run_id))
        s.commit()


def hold_both_gpus(engine, ds, model_dir) -> int:
    """Another run, running on this host and holding GPUs 0 and 1; returns its job id."""
    other = new_run(engine, ds, model_dir, n_gpus=2)
    job_id = job_of(engine, other)
    with Session(engine) as s:
        s.get_one(Job, job_id).status = RunStatus.running
        s.commit()
    assert allocator(get_settings()).acquire(job_id=job_id, count=2, usable=[0, 1], pid=os.getpid()).ids
    return job_id


def test_a_run_waits_for_its_gpus_then_starts_on_them_and_gives_them_back(
    two_gpus, engine, pclue_dataset, tiny_model_dir
):
    holder = hold_both_gpus(engine, pclue_dataset, tiny_model_dir)
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, n_gpus=2)
    thread = start(run_id)
    wait_for(lambda: get(engine, run_id).job.stage == "waiting for 2 GPUs (0 free)", 20, "the wait")
    assert get(engine, run_id).status == RunStatus.running  # heartbeating, not lost

    allocator(two_gpus).release(holder)
    wait_for(lambda: get(engine, run_id).job.pid, 20, "the start")
    first = open(get(engine, run_id).job.log_file).readline()
    assert "deepspeed.launcher.runner --include localhost:0,1 " in first and "--num_gpus" not in first
    assert get(engine, run_id).job.stage == ""
    assert allocator(two_gpus).held() == {job_of(engine, run_id): [0, 1]}

    cancel(engine, run_id)
    thread.join(60)
    assert get(engine, run_id).status == RunStatus.cancelled
    assert allocator(two_gpus).held() == {}  # released at the end


def test_a_run_cancelled_while_waiting_is_cancelled(two_gpus, engine, pclue_dataset, tiny_model_dir):
    hold_both_gpus(engine, pclue_dataset, tiny_model_dir)
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, n_gpus=1)
    thread = start(run_id)
    wait_for(lambda: get(engine, run_id).job.stage == "waiting for 1 GPUs (0 free)", 20, "the wait")
    cancel(engine, run_id)
    thread.join(30)
    run = get(engine, run_id)
    assert (run.status, run.error) == (RunStatus.cancelled, "cancelled on request")


def test_a_host_with_too_few_gpus_fails_the_run_at_once(two_gpus, engine, pclue_dataset, tiny_model_dir):
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, n_gpus=4)
    execute_run(run_id, task_id="t-1")
    run = get(engine, run_id)
    assert run.status == RunStatus.failed
    assert "the run needs 4 GPUs but worker host" in run.error and "has 2" in run.error


def test_a_multi_node_run_with_a_bad_hostfile_fails_naming_the_line(
    two_gpus, engine, pclue_dataset, tiny_model_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr("app.runs.launch.NODE_LOCAL", ())
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("node-a slots=8\nnode-b slots=8\n")
    run_id = new_run(engine, pclue_dataset, tiny_model_dir, n_gpus=8, num_nodes=2, hostfile=str(hostfile))
    hostfile.write_text("node-a slots=8\nnode-b\n")  # changed after the launch
    execute_run(run_id, task_id="t-1")
    run = get(engine, run_id)
    assert run.status == RunStatus.failed and run.error.startswith("hostfile line 2: expected")
