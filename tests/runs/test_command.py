"""The trainer command for 1 CPU rank, N CPU ranks (torchrun) and N GPUs (deepspeed), with its environment."""

import importlib.util
from pathlib import Path

import pytest

from worker.train_command import REPO, build_command

BASE = {"PATH": "/usr/bin", "PYTHONPATH": "/extra"}


def test_one_cpu_rank_runs_the_module_directly():
    cmd = build_command(config_path="/d/runs/1/run.json", n_gpus=0, n_procs=1, python="/py", base_env=BASE)
    assert cmd.argv == ["/py", "-m", "trainer.train", "--config", "/d/runs/1/run.json"]
    assert cmd.cwd == "/d/runs/1"
    assert cmd.env["CUDA_VISIBLE_DEVICES"] == "" and cmd.env["DS_ACCELERATOR"] == "cpu"
    assert cmd.env["PYTHONPATH"] == f"{REPO}:/extra" and cmd.env["PYTHONUNBUFFERED"] == "1"
    assert "OMP_NUM_THREADS" not in cmd.env  # threads=0: torch's default
    assert cmd.env["PATH"] == "/usr/bin"


def test_cpu_ranks_go_through_torchrun_with_capped_threads():
    cmd = build_command(config_path="/r/run.json", n_gpus=0, n_procs=3, python="/py", threads=1, base_env={})
    assert cmd.argv == [
        "/py", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "3",
        "-m", "trainer.train", "--config", "/r/run.json",
    ]  # fmt: skip
    assert cmd.env["OMP_NUM_THREADS"] == "1" and cmd.env["MKL_NUM_THREADS"] == "1"
    assert cmd.env["PYTHONPATH"] == str(REPO)


def test_gpus_go_through_deepspeed_on_the_allocated_devices_only():
    cmd = build_command(
        config_path="/r/run.json", n_gpus=2, n_procs=1, python="/py", master_port=29611,
        base_env={"CUDA_VISIBLE_DEVICES": "1,3"}, gpu_ids=[1, 3],
    )  # fmt: skip
    assert cmd.argv == [
        "/py", "-m", "deepspeed.launcher.runner", "--include", "localhost:1,3", "--master_port", "29611",
        "--module", "trainer.train", "--config", "/r/run.json",
    ]  # fmt: skip
    assert "--num_gpus" not in cmd.argv  # it takes 0..N-1 whatever another run holds
    # The ids are physical: the worker's own restriction would make DeepSpeed count them differently.
    assert "CUDA_VISIBLE_DEVICES" not in cmd.env and "DS_ACCELERATOR" not in cmd.env


def test_a_gpu_run_without_its_device_ids_is_refused():
    with pytest.raises(ValueError, match="2 GPUs needs as many device ids"):
        build_command(config_path="/r/run.json", n_gpus=2, n_procs=1, python="/py", gpu_ids=[0], base_env={})


def test_several_nodes_go_through_the_hostfile():
    cmd = build_command(
        config_path="/shared/runs/4/run.json", n_gpus=8, n_procs=1, python="/py", master_port=29700,
        base_env={}, hostfile="/shared/hostfile", num_nodes=2, master_addr="node-a",
    )  # fmt: skip
    assert cmd.argv == [
        "/py", "-m", "deepspeed.launcher.runner", "--hostfile", "/shared/hostfile", "--num_nodes", "2",
        "--num_gpus", "8", "--master_addr", "node-a", "--master_port", "29700",
        "--module", "trainer.train", "--config", "/shared/runs/4/run.json",
    ]  # fmt: skip
    assert cmd.cwd == "/shared/runs/4"


def test_every_command_names_the_config_the_reaper_looks_for():
    for gpus, procs in [(0, 1), (0, 2), (2, 2)]:
        cmd = build_command(
            config_path="/r/7/run.json",
            n_gpus=gpus,
            n_procs=procs,
            python="/py",
            base_env={},
            gpu_ids=list(range(gpus)),
        )
        assert "/r/7/run.json" in cmd.argv


def test_the_launcher_modules_exist_in_this_interpreter():
    # A renamed launcher module would make every run fail at start; found without importing torch.
    for module in ("trainer.train", "torch.distributed.run", "deepspeed.launcher.runner"):
        top, *rest = module.split(".")
        spec = importlib.util.find_spec(top)
        assert spec is not None and spec.submodule_search_locations, module
        path = Path(spec.submodule_search_locations[0]).joinpath(*rest[:-1], rest[-1] + ".py")
        assert path.is_file(), path
        assert "__main__" in path.read_text(encoding="utf-8"), f"{module} cannot run with python -m"


def test_the_trainer_gets_no_secret_key_database_or_broker():
    base = {
        "PATH": "/usr/bin",
        "SFTLAB_SECRET_KEY": "s",
        "SFTLAB_DATABASE_URL": "postgresql://u:pw@db/x",
        "SFTLAB_BROKER_URL": "redis://r",
        "DATABASE_URL": "postgresql://u:pw@db/x",
        "CELERY_BROKER_URL": "redis://r",
        "PGPASSWORD": "pw",
        "POSTGRES_PASSWORD": "pw",
        "SFTLAB_MODEL_DIR": "/models",
        "HF_HOME": "/hf",
    }
    for gpus, procs in ((0, 1), (0, 2), (2, 1)):
        env = build_command(
            config_path="/r/run.json",
            n_gpus=gpus,
            n_procs=procs,
            python="/py",
            base_env=base,
            gpu_ids=list(range(gpus)),
        ).env
        assert {k for k in base if k in env} == {"PATH", "SFTLAB_MODEL_DIR", "HF_HOME"}


def test_docker_compose_takes_the_database_password_from_the_environment():
    compose = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert "POSTGRES_PASSWORD: sftlab" not in compose and ":sftlab@" not in compose
    assert compose.count("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}") == 2
