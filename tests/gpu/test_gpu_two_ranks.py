"""On a machine with two CUDA GPUs: ZeRO-3 over two ranks (NCCL, bf16) trains like one plain GPU and saves a
checkpoint equal to the weights it trained. The CPU suite checks the same with gloo ranks and fp32 to 1e-5
(tests/trainer/test_distributed.py); here the collectives, the partitioned load and the 16-bit save are
NCCL's and CUDA's, so the bound is bf16's."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from gpu_models import small_model

from tests.processes import run_in_group
from trainer.config import tiny_debug
from trainer.metrics import read_events

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available() or torch.cuda.device_count() < 2,
        reason="needs two CUDA GPUs: torch.cuda.device_count() < 2",
    ),
]
REPO = Path(__file__).resolve().parents[2]


def _model_dir(tmp_path, tokenizer_dir) -> Path:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = small_model("qwen2", vocab=len(tok), hidden=256, layers=2)
    model.config.bos_token_id, model.config.eos_token_id = tok.bos_token_id, tok.eos_token_id
    model.save_pretrained(str(tmp_path / "model"))
    tok.save_pretrained(str(tmp_path / "model"))
    return tmp_path / "model"


def _train(cfg, out: Path, nproc: int) -> list[dict]:
    cfg.output_dir = str(out)
    out.mkdir(parents=True)
    cfg.to_json(out.parent / f"{out.name}.json")
    launch = (
        ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)] if nproc > 1 else []
    )
    cmd = [sys.executable, *launch, "-m", "trainer.train", "--config", str(out.parent / f"{out.name}.json")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = run_in_group(cmd, cwd=REPO, env=env, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    return read_events(out / "metrics.jsonl")


def test_zero3_on_two_gpus_matches_one_plain_gpu(tmp_path, tokenizer_dir, pclue_file):
    from transformers import AutoModelForCausalLM

    from trainer.checkpoint import latest_checkpoint

    model_dir = _model_dir(tmp_path, tokenizer_dir)

    def config():
        cfg = tiny_debug(str(pclue_file), "", str(model_dir))
        cfg.data.max_seq_len, cfg.data.over_length = 1024, "truncate"
        cfg.train.precision, cfg.train.per_device_batch, cfg.train.max_steps = "bf16", 2, 4
        cfg.train.lr = 1e-4
        cfg.checkpoint.every_n_steps, cfg.checkpoint.resume = 4, False
        return cfg

    plain = config()
    plain.train.per_device_batch = 4  # one GPU takes both ranks' bins: the same 4 bins per step
    zero3 = config()
    zero3.deepspeed.enabled, zero3.deepspeed.zero_stage = True, 3
    one = _train(plain, tmp_path / "plain", 1)
    two = _train(zero3, tmp_path / "zero3", 2)
    assert two[0]["world_size"] == 2 and one[0]["world_size"] == 1
    losses = {e["step"]: e["loss"] for e in one if e["type"] == "train"}
    got = {e["step"]: e["loss"] for e in two if e["type"] == "train"}
    assert sorted(got) == sorted(losses) == [1, 2, 3, 4]
    for step, loss in losses.items():
        assert abs(got[step] - loss) / loss < 2e-2, (step, got[step], loss)
    a = AutoModelForCausalLM.from_pretrained(str(latest_checkpoint(tmp_path / "plain")), dtype=torch.float32)
    b = AutoModelForCausalLM.from_pretrained(str(latest_checkpoint(tmp_path / "zero3")), dtype=torch.float32)
    for (name, p), (name_b, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert name == name_b
        assert ((p - q).norm() / p.norm()).item() < 1e-2, name
    assert (
        json.loads((tmp_path / "zero3" / "deepspeed_config.json").read_text())["zero_optimization"]["stage"]
        == 3
    )
