"""The pieces of `bench/trainer.py --gpu` that need no GPU: the 0.5B model's shapes, TRL batch accounting,
the MFU arithmetic, and a one-line refusal without CUDA."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.trainer_gpu import packed_stats, qwen_config, weighted_mfu
from trainer.model import count_params
from trainer.train import flops_per_step

REPO = Path(__file__).resolve().parents[2]


def test_model_has_qwen25_05b_shapes():
    from transformers import Qwen2ForCausalLM

    cfg = qwen_config(49152)
    with torch.device("meta"):
        model = Qwen2ForCausalLM(cfg)
    counts = count_params(model)
    # Qwen2.5-0.5B has 494,032,768 parameters with its 151,936-token vocabulary; tied, so one matrix differs
    assert counts["total"] == 494_032_768 - (151_936 - 49_152) * 896
    assert counts["non_embedding"] == 494_032_768 - 151_936 * 896
    assert cfg.num_key_value_heads == 2 and cfg.num_attention_heads == 14


def test_packed_stats_of_a_padding_free_batch():
    pos = torch.tensor([[0, 1, 2, 3, 0, 1, 0, 1, 2]])
    labels = torch.tensor([[-100, -100, 5, 6, -100, 7, -100, -100, 8]])
    assert packed_stats(pos, labels) == (9, 4, 16 + 4 + 9)


def test_mfu_arithmetic():
    cfg = qwen_config(49152)
    params = {"non_embedding": 1000}
    flops = flops_per_step(params, cfg, real_tokens=10, sup_tokens=2, sum_sq_len=50)
    assert flops == 6 * 1000 * 10 + 6 * 49152 * 896 * 2 + 12 * 24 * 896 * 50
    assert weighted_mfu([flops, flops], [1.0, 3.0], peak=flops) == pytest.approx(0.5)
    assert weighted_mfu([flops], [1.0], peak=0.0) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_gpu_mode_refuses_without_cuda():
    p = subprocess.run(
        [sys.executable, str(REPO / "bench" / "trainer.py"), "--gpu"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "bench/trainer.py --gpu: no CUDA device (torch.cuda.is_available() is False)"
    ]
