"""A LoRA adapter directory is sampled as its base with the adapter merged, in both backends' load paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.sampling.sample_run import generations, pclue_prompts, run_program, spec, tiny_model
from trainer.sampling_model import merged_dir


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> tuple[Path, Path]:
    """(base model, adapter saved as the trainer saves one: adapter files + tokenizer, base by path)."""
    from peft import LoraConfig, get_peft_model

    root = tmp_path_factory.mktemp("lora")
    base = tiny_model(root / "base")
    model = AutoModelForCausalLM.from_pretrained(str(base))
    # init_lora_weights=False: B is random too, so the adapter changes the answers
    cfg = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    torch.manual_seed(0)
    peft_model = get_peft_model(model, cfg)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.mul_(50.0)
    adapter = root / "adapter"
    peft_model.save_pretrained(str(adapter))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(adapter))
    return base, adapter


def test_transformers_backend_samples_the_merged_adapter(dirs, tmp_path):
    base, adapter = dirs
    pclue_prompts(tmp_path / "prompts.jsonl", 2)
    greedy = {"temperature": 0.0, "max_new_tokens": 8}
    texts = {}
    for name, model_dir in (("base", base), ("adapter", adapter)):
        code, events, stderr = run_program(
            tmp_path, spec(model_dir, params=greedy, output=f"{name}.jsonl"), in_process=True
        )
        assert code == 0, stderr
        assert events[0]["model_dir"] == str(model_dir)
        texts[name] = {k: g["text"] for k, g in generations(events).items()}
    assert texts["adapter"] != texts["base"]


def test_merged_dir_for_vllm_holds_the_merged_weights(dirs):
    base, adapter = dirs
    tok = AutoTokenizer.from_pretrained(str(adapter))
    path, cleanup = merged_dir(adapter, "float32", tok)
    try:
        assert cleanup == path and path != adapter
        assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()
        merged = load_file(str(path / "model.safetensors"))
        plain = load_file(str(base / "model.safetensors"))
        q = "model.layers.0.self_attn.q_proj.weight"
        assert not torch.equal(merged[q], plain[q])  # the adapter's delta is in
        k = "model.layers.0.self_attn.k_proj.weight"
        assert torch.equal(merged[k], plain[k])  # untouched modules are the base's
        assert not any("lora" in name for name in merged)
    finally:
        if cleanup is not None:
            shutil.rmtree(cleanup)
    assert merged_dir(base, "float32", tok) == (base, None)


def test_adapter_with_a_missing_base_is_bad_input(dirs, tmp_path):
    _, adapter = dirs
    broken = tmp_path / "adapter"
    broken.mkdir()
    for f in adapter.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    raw = json.loads((broken / "adapter_config.json").read_text(encoding="utf-8"))
    raw["base_model_name_or_path"] = str(tmp_path / "gone")
    (broken / "adapter_config.json").write_text(json.dumps(raw), encoding="utf-8")
    pclue_prompts(tmp_path / "prompts.jsonl", 1)
    code, events, stderr = run_program(tmp_path, spec(broken), in_process=True)
    assert code == 2
    assert f"base model '{tmp_path / 'gone'}' is not a local model directory" in events[-1]["message"]
