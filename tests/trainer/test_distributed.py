"""DeepSpeed on CPU, two ranks (torchrun, gloo): ZeRO-2 matches the plain path; ZeRO-3 checkpoints load and resume exactly."""

import json

import pytest
from tiny_run import make_tiny_model_dir, pclue_messages, tiny_config, torchrun
from transformers import AutoModelForCausalLM

from trainer.checkpoint import latest_checkpoint
from trainer.config import tiny_debug
from trainer.distributed import deepspeed_config
from trainer.train import run


def test_deepspeed_config_follows_run_config():
    cfg = tiny_debug("x.jsonl", "out")
    cfg.train.per_device_batch, cfg.train.grad_accum, cfg.train.precision = 3, 5, "bf16"
    cfg.deepspeed.enabled, cfg.deepspeed.zero_stage = True, 3
    cfg.deepspeed.offload_optimizer = cfg.deepspeed.offload_params = True
    ds = deepspeed_config(cfg, world=4)
    assert ds["train_batch_size"] == 3 * 5 * 4
    assert ds["zero_optimization"]["stage"] == 3
    assert ds["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert ds["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert ds["bf16"]["enabled"] and not ds["fp16"]["enabled"]
    assert ds["gradient_clipping"] == cfg.train.grad_clip
    assert ds["optimizer"]["params"]["lr"] == cfg.train.lr


@pytest.mark.slow
def test_deepspeed_zero2_two_ranks_matches_plain(tmp_path):
    model_dir = make_tiny_model_dir(tmp_path / "model")
    data = pclue_messages(tmp_path / "data.jsonl", 32)
    plain = tmp_path / "plain"
    plain.mkdir()
    ref = run(tiny_config(plain, model_dir, data, per_device_batch=4, grad_accum=1), stop_after=3)["losses"]

    d = tmp_path / "ds"
    d.mkdir()
    cfg = tiny_config(
        d, model_dir, data, per_device_batch=1, grad_accum=2
    )  # 2 ranks x 1 x 2 = the same 4 bins
    cfg.deepspeed.enabled = True
    cfg.deepspeed.zero_stage = 2
    cfg.checkpoint.every_n_steps = 2
    out = torchrun(cfg, d, nproc=2, stop_after=3, timeout=400)
    losses = {int(k): v for k, v in out["losses"].items()}
    assert sorted(losses) == [1, 2, 3]
    for s in losses:
        assert losses[s] == pytest.approx(ref[s], abs=1e-4), (s, losses[s], ref[s])
    saved = json.loads((d / "run" / "deepspeed_config.json").read_text())
    assert saved["zero_optimization"]["stage"] == 2 and saved["train_batch_size"] == 4
    ck = latest_checkpoint(d / "run")
    assert ck.name == "step-00000002" and (ck / "trainer_state" / "deepspeed").is_dir()
    AutoModelForCausalLM.from_pretrained(ck)
    events = [json.loads(x) for x in open(d / "run" / "metrics.jsonl")]
    train = [e for e in events if e["type"] == "train"]
    assert len(train) == 3 and all(e["grad_norm"] > 0 for e in train)


@pytest.mark.slow
def test_deepspeed_zero3_two_ranks_checkpoint_and_exact_resume(tmp_path):
    """ZeRO-3 partitions parameters: the HF checkpoint must gather them, and resume must restore the engine."""
    model_dir = make_tiny_model_dir(tmp_path / "model")
    data = pclue_messages(tmp_path / "data.jsonl", 32)
    cfg = tiny_config(
        tmp_path, model_dir, data, per_device_batch=1, grad_accum=2, scheduler="cosine", warmup_steps=1
    )
    cfg.deepspeed.enabled = True
    cfg.deepspeed.zero_stage = 3
    cfg.checkpoint.every_n_steps = 2
    cfg.data.eval_fraction = 0.1
    cfg.eval.every_n_steps = 2
    first = torchrun(cfg, tmp_path, nproc=2, stop_after=3, timeout=400)  # dies after step 3; step 2 saved
    ck = latest_checkpoint(tmp_path / "run")
    assert ck.name == "step-00000002"
    loaded = AutoModelForCausalLM.from_pretrained(ck)
    reference = AutoModelForCausalLM.from_pretrained(model_dir)
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in reference.parameters())
    second = torchrun(cfg, tmp_path, nproc=2, timeout=400)
    assert second["losses"]["3"] == pytest.approx(first["losses"]["3"], abs=1e-6)
    assert second["step"] == second["total_steps"] and first["evals"]


@pytest.mark.slow
def test_two_ranks_stop_together_at_train_max_hours(tmp_path):
    """The time limit is agreed through an all-reduce: both ranks stop at the same step and save once."""
    model_dir = make_tiny_model_dir(tmp_path / "model")
    data = pclue_messages(tmp_path / "data.jsonl", 32)
    cfg = tiny_config(tmp_path, model_dir, data, per_device_batch=1, grad_accum=1)
    cfg.train.max_hours = 1e-12
    out = torchrun(cfg, tmp_path, nproc=2, timeout=400)
    assert out["step"] == 1 < out["total_steps"]
    assert latest_checkpoint(tmp_path / "run").name == "step-00000001"
    events = [json.loads(x) for x in open(tmp_path / "run" / "metrics.jsonl")]
    assert events[-1]["type"] == "error" and events[-1]["kind"] == "time_limit"
