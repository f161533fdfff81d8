"""The GPU deployment: compose's GPU worker shares the host's IPC namespace (NCCL's shared-memory transport)
and reserves the GPUs, the image has a GPU target with flash-attn, and `make gpu-deps` refuses on a CPU box."""

import os
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_the_gpu_worker_gets_host_ipc_and_the_gpus():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    gpu = compose["services"]["worker-gpu"]
    assert gpu["ipc"] == "host"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)
    assert gpu["build"]["target"] == "gpu" and "cu1" in gpu["build"]["args"]["TORCH_INDEX"]


def test_the_image_has_a_gpu_target_with_flash_attn():
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "AS gpu" in dockerfile
    assert "--no-build-isolation" in dockerfile and "flash-attn==" in dockerfile
    assert "MAX_JOBS=$MAX_JOBS" in dockerfile
    last_stage = [line for line in dockerfile.splitlines() if line.startswith("FROM ")][-1]
    assert last_stage.endswith("AS cpu")  # a plain `docker build .` still gives the CPU image


def test_make_gpu_deps_refuses_without_nvidia_smi(tmp_path):
    # A PATH holding only make and sh: no nvidia-smi even on a GPU host, and nothing else is run.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "sh"):
        found = shutil.which(tool)
        assert found, tool
        os.symlink(found, bin_dir / tool)
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "gpu-deps"],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "nvidia-smi not found, so this is not a GPU host" in done.stderr
    assert "pip" not in done.stdout + done.stderr  # refused before building anything
