"""On one CUDA GPU: packed bf16 losses through the varlen kernels equal each sample run alone, a short bf16 run
with attention "auto" reports a sane MFU against the right peak, and a ZeRO-3 checkpoint round-trips."""

import functools

import pytest
import torch
from gpu_models import VOCAB, random_samples, small_model

from trainer.attention import HF_VARLEN, flash_attn_available, register
from trainer.collate import IGNORE, collate_packed
from trainer.loss import supervised_token_losses
from trainer.metrics import read_events
from trainer.packing import pack_bfd
from trainer.peaks import gpu_variant

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def _counting_torch_varlen(monkeypatch) -> list[int]:
    import torch.nn.attention.varlen as tv

    calls = [0]
    real = tv.varlen_attn

    @functools.wraps(real)  # keeps the signature trainer.attention inspects
    def counted(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(tv, "varlen_attn", counted)
    return calls


def _backends() -> list[str]:
    cuda = torch.cuda.is_available()
    return [HF_VARLEN] + (["flash_attention_2"] if cuda and flash_attn_available(CUDA) else [])


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_packed_bf16_varlen_equals_each_sample_alone(arch, backend, monkeypatch):
    register()
    calls = _counting_torch_varlen(monkeypatch)
    model = small_model(arch, vocab=VOCAB).to(CUDA)
    samples = random_samples(24)
    bins = pack_bfd([len(s) for s in samples], 1024)
    batch = collate_packed([[samples[i] for i in b] for b in bins], pad_id=0)
    assert any(len(row) > 1 for row in batch["seq_lens"])
    batch = {k: v.to(CUDA) if torch.is_tensor(v) else v for k, v in batch.items()}
    model.set_attn_implementation(backend)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        tl = supervised_token_losses(model, batch)
        tl.loss.mean().backward()  # the kernel's backward runs too
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    if backend == HF_VARLEN:
        assert calls[0] == model.config.num_hidden_layers
    model.set_attn_implementation("sdpa")
    per_sample_got, per_sample_ref = [], []
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        for k, s in enumerate(batch["samples"]):
            sample = samples[s["index"]]
            ids = torch.tensor([sample.input_ids], device=CUDA)
            logits = model(ids).logits[0].float()
            labels = torch.tensor(sample.input_ids[1:] + [IGNORE], device=CUDA)
            labels[~torch.tensor(sample.supervised[1:] + [False], device=CUDA)] = IGNORE
            ref = torch.nn.functional.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="sum")
            per_sample_ref.append(ref)
            per_sample_got.append(tl.loss.detach()[tl.sample_idx == k].sum())
    got, ref = torch.stack(per_sample_got), torch.stack(per_sample_ref)
    assert ((got.sum() - ref.sum()).abs() / ref.sum()).item() < 1e-2
    assert ((got - ref).abs() / ref).max().item() < 2e-2


def _tiny_qwen_dir(tmp_path, tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = small_model("qwen2", vocab=len(tok), hidden=256, layers=2)
    model.config.bos_token_id, model.config.eos_token_id = tok.bos_token_id, tok.eos_token_id
    out = tmp_path / "model"
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def _gpu_config(tmp_path, model_dir, data):
    from trainer.config import tiny_debug

    cfg = tiny_debug(str(data), str(tmp_path / "run"), str(model_dir))
    cfg.data.max_seq_len, cfg.data.over_length = 2048, "truncate"
    cfg.data.eval_fraction = 0.1
    cfg.train.precision = "bf16"
    cfg.train.per_device_batch = 4
    cfg.train.max_steps = 3
    cfg.eval.every_n_steps = 3
    cfg.checkpoint.resume = False
    assert cfg.model.attn_implementation == "auto"
    return cfg


def test_three_bf16_steps_with_auto_attention_log_mfu(tmp_path, tokenizer_dir, pclue_file, monkeypatch):
    from trainer.train import run

    calls = _counting_torch_varlen(monkeypatch)
    cfg = _gpu_config(tmp_path, _tiny_qwen_dir(tmp_path, tokenizer_dir), pclue_file)
    result = run(cfg)
    assert result["step"] == 3
    events = read_events(tmp_path / "run" / "metrics.jsonl")
    start = events[0]
    name = torch.cuda.get_device_name(CUDA)
    variant = gpu_variant(name)
    assert variant is not None, f"{name} is not in trainer.peaks: extend the table"
    assert start["peak_flops"] > 0 and start["peak_flops_source"] == f"{name}: {variant} bf16 dense peak"
    trains = [e for e in events if e["type"] == "train"]
    assert len(trains) == 3 and all(0 < e["mfu"] < 1 for e in trains), [e["mfu"] for e in trains]
    evals = [e for e in events if e["type"] == "eval"]
    assert evals and torch.isfinite(torch.tensor(evals[-1]["loss"]))  # eval ran through the flash kernel too
    assert not [e for e in events if e["type"] == "warning" and e.get("kind") == "attention"]
    if not flash_attn_available(CUDA):
        assert calls[0] > 0  # "auto" picked torch's varlen kernel, in training and eval


def test_zero3_checkpoint_round_trip(tmp_path, tokenizer_dir, pclue_file):
    pytest.importorskip("deepspeed", reason="deepspeed is not installed: ZeRO-3 round trip not checked")
    import deepspeed
    from transformers import AutoModelForCausalLM

    from trainer import distributed as dist_
    from trainer.checkpoint import latest_checkpoint
    from trainer.train import Run

    cfg = _gpu_config(tmp_path, _tiny_qwen_dir(tmp_path, tokenizer_dir), pclue_file)
    cfg.deepspeed.enabled, cfg.deepspeed.zero_stage = True, 3
    cfg.train.max_steps, cfg.data.eval_fraction = 2, 0.0
    cfg.checkpoint.every_n_steps = 2
    cfg.validate()
    info = dist_.init(cfg)
    r = Run(cfg, info)
    try:
        r.setup()
        r.run()
        # r.model is the HF model inside the engine's SupervisedLoss: the same (partitioned) tensors
        params = list(r.model.parameters())
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            live = {n: p.detach().float().cpu().clone() for n, p in r.model.named_parameters()}
    finally:
        r.close()
        dist_.teardown(info)
    saved = AutoModelForCausalLM.from_pretrained(str(latest_checkpoint(cfg.output_dir)), dtype=torch.float32)
    names = dict(saved.named_parameters())
    assert set(names) == set(live)
    for n, p in names.items():
        assert torch.equal(p.detach(), live[n]), n


def test_adamw_is_fused_on_cuda():
    from trainer.config import TrainConfig
    from trainer.optim import build_optimizer

    opt = build_optimizer(torch.nn.Linear(8, 8, device=CUDA), TrainConfig())
    assert opt.defaults["fused"] is True
