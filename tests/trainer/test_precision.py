"""Flash kernels take only bf16/fp16: validate() refuses them with fp32, eval runs under training's autocast,
and an attention fallback reaches metrics.jsonl as a warning event."""

import pytest
import torch
from tiny_run import make_tiny_model_dir, pclue_messages, tiny_config

from trainer import train as train_mod
from trainer.config import ConfigError, tiny_debug
from trainer.evaluate import evaluate
from trainer.metrics import read_events
from trainer.model import autocast
from trainer.packing import pack_bfd


@pytest.mark.parametrize("attn", ["flash_attention_2", "varlen"])
def test_flash_kernels_refuse_fp32(tmp_path, attn):
    cfg = tiny_debug(str(tmp_path / "d.jsonl"), str(tmp_path / "run"))
    cfg.model.attn_implementation = attn
    with pytest.raises(ConfigError) as e:
        cfg.validate(check_files=False)
    msg = str(e.value)
    assert "\n" not in msg and f"model.attn_implementation={attn}" in msg and "bf16" in msg
    cfg.train.precision = "bf16"
    cfg.validate(check_files=False)


def test_auto_and_sdpa_accept_fp32(tmp_path):
    cfg = tiny_debug(str(tmp_path / "d.jsonl"), str(tmp_path / "run"))
    assert cfg.model.attn_implementation == "auto"  # the default
    cfg.validate(check_files=False)
    cfg.model.attn_implementation = "sdpa"
    cfg.validate(check_files=False)


def test_varlen_refuses_attention_dropout(tmp_path):
    cfg = tiny_debug(str(tmp_path / "d.jsonl"), str(tmp_path / "run"))
    cfg.model.attn_implementation, cfg.train.precision, cfg.train.dropout = "varlen", "bf16", 0.1
    with pytest.raises(ConfigError, match="train.dropout"):
        cfg.validate(check_files=False)


def _autocast_probe(model) -> list:
    seen: list = []
    model.model.layers[0].register_forward_pre_hook(
        lambda m, args: seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
    )
    return seen


def test_eval_runs_under_training_autocast(tiny, pclue_tokenized):
    from types import SimpleNamespace

    samples = pclue_tokenized[:6]
    plan = SimpleNamespace(world=1, batch=2, eval_bins=pack_bfd([len(s) for s in samples], 256))
    data = SimpleNamespace(eval=samples, pad_id=2)
    seen = _autocast_probe(tiny)
    cpu = torch.device("cpu")
    fp32 = evaluate(tiny, plan, data, rank=0, device=cpu)
    assert seen and not any(on for on, _ in seen)
    seen.clear()
    bf16 = evaluate(tiny, plan, data, rank=0, device=cpu, amp=autocast("bf16", cpu, engine=False))
    assert seen and all(on and dtype == torch.bfloat16 for on, dtype in seen)
    # bf16-ish: close to the fp32 loss, but not bit-equal
    assert bf16["loss"] == pytest.approx(fp32["loss"], rel=2e-2) and bf16["loss"] != fp32["loss"]


def test_autocast_helper():
    cpu = torch.device("cpu")
    with autocast("bf16", cpu, engine=False):
        assert torch.is_autocast_enabled("cpu")
    for precision, engine in (("fp32", False), ("bf16", True), ("fp16", True)):
        with autocast(precision, cpu, engine=engine):
            assert not torch.is_autocast_enabled("cpu")


def test_run_evals_under_autocast_and_logs_attention_warning(tmp_path, monkeypatch):
    model = make_tiny_model_dir(tmp_path / "model")
    data = pclue_messages(tmp_path / "data.jsonl", 16)
    cfg = tiny_config(tmp_path, model, data, precision="bf16")
    cfg.model.attn_implementation = "varlen"  # on CPU: falls back to sdpa, with a warning
    cfg.data.eval_fraction = 0.25
    cfg.eval.every_n_steps = 1
    states: list = []
    real = train_mod.evaluate

    def probe(module, *args, **kwargs):
        seen = _autocast_probe(module)
        result = real(module, *args, **kwargs)
        states.extend(seen)
        return result

    monkeypatch.setattr(train_mod, "evaluate", probe)
    train_mod.run(cfg, stop_after=1)
    assert states and all(on and dtype == torch.bfloat16 for on, dtype in states)
    events = read_events(tmp_path / "run" / "metrics.jsonl")
    warnings = [e for e in events if e["type"] == "warning" and e.get("kind") == "attention"]
    assert len(warnings) == 1 and "needs a CUDA device" in warnings[0]["message"]
