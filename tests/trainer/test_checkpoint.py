"""Checkpoints load directly with AutoModelForCausalLM.from_pretrained (full, LoRA, merged LoRA, frozen parts)."""

import json

import pytest
import torch
from safetensors.torch import load_file
from tiny_run import make_tiny_model_dir, pclue_messages, tiny_config
from transformers import AutoModelForCausalLM, AutoTokenizer

from trainer.checkpoint import latest_checkpoint, list_checkpoints
from trainer.train import run


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return make_tiny_model_dir(root / "model"), pclue_messages(root / "data.jsonl", 24)


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_full_checkpoint_loads_in_transformers(tmp_path, setup):
    model_dir, data = setup
    cfg = tiny_config(tmp_path, model_dir, data, epochs=2.0, per_device_batch=2)
    cfg.checkpoint.at_epoch_end = True
    cfg.checkpoint.keep_last = 0
    out = run(cfg)
    cks = list_checkpoints(cfg.output_dir)
    assert len(cks) == 2  # one per epoch end
    last = latest_checkpoint(cfg.output_dir)
    assert last.name == f"step-{out['step']:08d}"
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "trainer_state/state.json",
        "trainer_state/optimizer.pt",
        "trainer_state/rng_rank0.pt",
    ):
        assert (last / name).is_file(), name
    m = AutoModelForCausalLM.from_pretrained(last)
    tok = AutoTokenizer.from_pretrained(last)
    assert "<|im_start|>" in tok.chat_template
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    ids = torch.tensor([tok("你好").input_ids])
    assert not torch.allclose(_logits(m, ids), _logits(base, ids))  # it trained
    state = json.loads((last / "trainer_state" / "state.json").read_text())
    assert state["step"] == out["step"] and state["epoch"] == pytest.approx(2.0)
    # the epoch-1 checkpoint is a different model
    first = AutoModelForCausalLM.from_pretrained(cks[0])
    assert not torch.allclose(_logits(first, ids), _logits(m, ids))


@pytest.mark.parametrize("merge", [False, True])
def test_lora_checkpoint(tmp_path, setup, merge):
    from peft import PeftModel

    model_dir, data = setup
    cfg = tiny_config(tmp_path, model_dir, data, epochs=1.0, per_device_batch=2, lr=5e-3)
    cfg.finetune.method = "lora"
    cfg.finetune.lora_rank = 4
    cfg.finetune.lora_alpha = 8
    cfg.finetune.lora_target_modules = ["q_proj", "v_proj"]
    cfg.checkpoint.merge_lora = merge
    cfg.checkpoint.at_epoch_end = True
    run(cfg)
    last = latest_checkpoint(cfg.output_dir)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    adapter_dir = last / "adapter" if merge else last
    assert (adapter_dir / "adapter_config.json").is_file()
    reference = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    loaded = AutoModelForCausalLM.from_pretrained(last)  # merged weights, or base + adapter through peft
    if merge:
        assert not (last / "adapter_config.json").exists()
        assert (last / "model.safetensors").is_file()
    assert torch.allclose(_logits(loaded, ids), _logits(reference, ids), atol=1e-5)
    fresh = AutoModelForCausalLM.from_pretrained(model_dir)
    assert not torch.allclose(_logits(fresh, ids), _logits(reference, ids), atol=1e-5)  # adapters trained


def test_frozen_parts_do_not_move(tmp_path, setup):
    model_dir, data = setup
    cfg = tiny_config(tmp_path, model_dir, data, epochs=1.0, per_device_batch=2)
    cfg.finetune.method = "freeze"
    cfg.finetune.freeze_embeddings = True
    cfg.finetune.freeze_first_n_layers = 1
    cfg.checkpoint.at_epoch_end = True
    run(cfg)
    before = load_file(str(model_dir / "model.safetensors"))
    after = load_file(str(latest_checkpoint(cfg.output_dir) / "model.safetensors"))
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert "model.embed_tokens.weight" not in moved
    assert not any(k.startswith("model.layers.0.") for k in moved)
    assert any(k.startswith("model.layers.1.") for k in moved)
