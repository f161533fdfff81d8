"""Launching on GPUs is checked against what the queue's live workers reported, and a multi-node launch
against its hostfile and a run directory every node can reach; each error names its field."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from app.core.config import get_settings
from app.jobs.workers import record
from app.models import Run, WorkerPresence, utcnow
from app.runs.launch import NODE_LOCAL, LaunchError, create_run
from tests.runs.test_form import page_post
from tests.runs.test_launch import request


@pytest.fixture
def gpu_queues(settings, monkeypatch):
    monkeypatch.setenv("SFTLAB_RUN_QUEUES", '["cpu", "gpu-8"]')
    get_settings.cache_clear()
    return get_settings()


def report(engine, name: str, queues: list[str], gpus: int, *, ago: float = 0) -> None:
    record(engine, name=name, hostname=name, queues=queues, gpus=["NVIDIA H100 80GB HBM3"] * gpus)
    if ago:
        with Session(engine) as s:
            row = s.get(WorkerPresence, name)
            row.seen_at = utcnow() - timedelta(seconds=ago)
            s.add(row)
            s.commit()


def launch_error(engine, ds, **kw) -> LaunchError:
    with Session(engine) as s, pytest.raises(LaunchError) as info:
        create_run(s, request(ds, **kw))
    return info.value


def created(engine, ds, **kw) -> Run:
    with Session(engine, expire_on_commit=False) as s:
        run = create_run(s, request(ds, **kw))
        s.commit()
        s.refresh(run)
        return run


def test_gpus_on_a_queue_whose_workers_have_none_are_refused(gpu_queues, engine, pclue_dataset):
    report(engine, "runs@cpu-box", ["cpu"], 0)
    err = launch_error(engine, pclue_dataset, queue="cpu", n_gpus=2)
    assert err.field == "n_gpus" and "queue cpu has no worker with GPUs" in err.message


def test_more_gpus_than_the_largest_worker_has_are_refused(gpu_queues, engine, pclue_dataset):
    report(engine, "gpu@a", ["gpu-8"], 2)
    report(engine, "gpu@b", ["gpu-8", "other"], 4)
    err = launch_error(engine, pclue_dataset, queue="gpu-8", n_gpus=8)
    assert err.field == "n_gpus" and err.message == "queue gpu-8 has workers with at most 4 GPUs"
    run = created(engine, pclue_dataset, queue="gpu-8", n_gpus=4)
    assert run.n_gpus == 4 and run.n_procs == 4 and run.job.stage == ""


def test_a_dead_workers_report_does_not_count(gpu_queues, engine, pclue_dataset):
    report(engine, "gpu@big", ["gpu-8"], 8, ago=3600)
    report(engine, "gpu@small", ["gpu-8"], 2)
    assert "at most 2 GPUs" in launch_error(engine, pclue_dataset, queue="gpu-8", n_gpus=8).message


def test_before_any_worker_reported_a_gpu_launch_is_accepted_with_a_warning(
    gpu_queues, engine, pclue_dataset
):
    run = created(engine, pclue_dataset, queue="gpu-8", n_gpus=8)
    assert run.n_gpus == 8
    assert "no worker of queue gpu-8 has reported its GPUs yet" in run.job.stage


def test_a_cpu_run_on_a_gpu_queue_is_fine(gpu_queues, engine, pclue_dataset):
    report(engine, "gpu@a", ["gpu-8"], 8)
    assert created(engine, pclue_dataset, queue="gpu-8", n_gpus=0, n_procs=2).n_procs == 2


def test_the_form_shows_the_gpu_error_next_to_the_field(
    gpu_queues, engine, researcher, pclue_dataset, sent_runs
):
    report(engine, "gpu@a", ["gpu-8"], 4)
    response = researcher.post("/runs/new", data=page_post(pclue_dataset, queue="gpu-8", n_gpus="8"))
    assert response.status_code == 422 and sent_runs == []
    field = re.search(r'<div class="field has-error"><label for="n-gpus">.*?</div>', response.text, re.S)
    assert field and "queue gpu-8 has workers with at most 4 GPUs" in field.group(0)


def test_the_api_answers_422_naming_n_gpus(gpu_queues, engine, researcher, pclue_dataset, sent_runs):
    report(engine, "gpu@a", ["gpu-8"], 4)
    body = {
        "name": "api",
        "datasets": [{"dataset_id": pclue_dataset.dataset_id, "version": 1}],
        "queue": "gpu-8",
        "n_gpus": 8,
    }
    response = researcher.post("/api/runs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"]["n_gpus"] == "queue gpu-8 has workers with at most 4 GPUs"
    body["hostfile"], body["num_nodes"] = "relative/hostfile", 2
    response = researcher.post("/api/runs", json=body)
    assert response.status_code == 422 and "absolute path" in response.json()["errors"]["hostfile"]


# ---- several nodes ----


@pytest.fixture
def shared_runs_dir(monkeypatch):
    """The tests' data directory may be under /tmp: pretend it is shared, as it would be on NFS."""
    monkeypatch.setattr("app.runs.launch.NODE_LOCAL", ())


def test_several_nodes_need_a_hostfile_and_gpus(gpu_queues, engine, pclue_dataset, shared_runs_dir):
    assert launch_error(engine, pclue_dataset, queue="gpu-8", n_gpus=8, num_nodes=2).field == "hostfile"
    err = launch_error(engine, pclue_dataset, queue="gpu-8", n_gpus=0, num_nodes=2, hostfile="/h")
    assert err.field == "n_gpus"
    assert launch_error(engine, pclue_dataset, queue="gpu-8", n_gpus=1, num_nodes=0).field == "num_nodes"


def test_a_visible_hostfile_is_checked_at_launch(
    gpu_queues, engine, pclue_dataset, shared_runs_dir, tmp_path
):
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("node-a slots=8\nnode-b slots:8\n")
    err = launch_error(engine, pclue_dataset, queue="gpu-8", n_gpus=8, num_nodes=2, hostfile=str(hostfile))
    assert err.field == "hostfile" and "hostfile line 2" in err.message
    hostfile.write_text("node-a slots=8\n")
    err = launch_error(engine, pclue_dataset, queue="gpu-8", n_gpus=8, num_nodes=2, hostfile=str(hostfile))
    assert "2 nodes asked for, but the hostfile lists 1" in err.message
    hostfile.write_text("node-a slots=8\nnode-b slots=8\n")
    report(engine, "gpu@a", ["gpu-8"], 1)  # the local workers' GPUs do not bound a multi-node run
    run = created(engine, pclue_dataset, queue="gpu-8", n_gpus=8, num_nodes=2, hostfile=str(hostfile))
    assert (run.num_nodes, run.hostfile, run.n_gpus) == (2, str(hostfile), 8)


def test_a_multi_node_run_directory_under_tmp_is_refused(
    gpu_queues, engine, pclue_dataset, tmp_path, monkeypatch
):
    assert Path("/tmp") in NODE_LOCAL and Path("/dev/shm") in NODE_LOCAL
    # Wherever this machine keeps its test directories, treat them as node-local.
    monkeypatch.setattr("app.runs.launch.NODE_LOCAL", (gpu_queues.data_dir.resolve(),))
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("node-a slots=8\nnode-b slots=8\n")
    err = launch_error(engine, pclue_dataset, queue="gpu-8", n_gpus=8, num_nodes=2, hostfile=str(hostfile))
    assert err.field == "num_nodes" and "filesystem every node shares" in err.message


def test_the_estimate_counts_every_nodes_gpus(gpu_queues, pclue_dataset, engine):
    from app.api.routes.launch import _estimate_args
    from app.runs.form import LaunchForm

    form = LaunchForm(
        name="x",
        train=[[pclue_dataset.dataset_id, 1]],
        queue="gpu-8",
        n_gpus="8",
        num_nodes="2",
        hostfile="/h",
    )
    with Session(engine) as s:
        args = _estimate_args(s, gpu_queues, form, pclue_dataset.owner_id)
    assert args["world"] == 16  # the batch is split over 2 nodes x 8 GPUs
