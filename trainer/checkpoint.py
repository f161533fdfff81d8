"""Checkpoints: HF-format weights anyone can load, plus the training state that makes resume exact.

Layout of one checkpoint, `<run>/checkpoints/step-00000012/`:
- model.safetensors + config.json + generation_config.json: `AutoModelForCausalLM.from_pretrained(dir)`
  (and vLLM) load it directly. LoRA runs write the adapter here instead (transformers loads base + adapter
  through peft), or, with `merge_lora`, the merged full weights here and the adapter under `adapter/`.
- tokenizer.json, tokenizer_config.json, chat_template.jinja: the template travels with the weights.
- trainer_state/: state.json (step, epoch, data position, plan digest), optimizer.pt, rng_rank<r>.pt
  (python, numpy, torch and cuda generators of each rank); deepspeed/ with the engine's own
  partitioned optimizer state when DeepSpeed trains.

A checkpoint is written into a hidden temp directory and renamed into place by rank 0 once every rank has
finished, so `latest_checkpoint` never returns half a checkpoint, even when the process dies mid-save.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.layout import checkpoints_dir, latest_checkpoint, list_checkpoints

__all__ = ["checkpoints_dir", "latest_checkpoint", "list_checkpoints", "save_checkpoint", "load_weights"]


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_globals() -> list:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def _safe_load(path: Path) -> Any:
    """torch.load with weights_only=True: a checkpoint directory may come from elsewhere (a copied run,
    a shared disk), and a full unpickle would run whatever code it names. Only numpy's array
    reconstruction is allowed beyond tensors and plain containers: numpy's RNG state is an array."""
    with torch.serialization.safe_globals(_numpy_globals()):
        return torch.load(path, map_location="cpu", weights_only=True)


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def save_hf(model: Any, tokenizer: Any, out: Path, *, merge_lora: bool = False) -> None:
    """Write HF-format weights + tokenizer + chat template into `out` (rank 0 only)."""
    out.mkdir(parents=True, exist_ok=True)
    if _is_peft(model):
        if merge_lora:
            model.save_pretrained(str(out / "adapter"))
            merged = copy.deepcopy(model).merge_and_unload()
            merged.save_pretrained(str(out))
            del merged
        else:
            model.save_pretrained(str(out))
    else:
        model.save_pretrained(str(out))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
        tpl = getattr(tokenizer, "chat_template", None)
        if tpl and not (out / "chat_template.jinja").is_file():
            (out / "chat_template.jinja").write_text(tpl, encoding="utf-8")


def _barrier(dist_on: bool) -> None:
    if dist_on:
        torch.distributed.barrier()


def save_checkpoint(
    run_dir: str | Path,
    *,
    step: int,
    state: dict,
    model: Any,
    tokenizer: Any,
    optimizer: Any = None,
    engine: Any = None,
    rank: int = 0,
    keep_last: int = 0,
    merge_lora: bool = False,
    gather_params: Any = None,
) -> Path:
    """Collective when torch.distributed is initialised: every rank must call it.

    `model` is the unwrapped module; with DeepSpeed, `engine` writes its partitioned state and
    `gather_params` is a context manager factory that materialises ZeRO-3 parameters for the HF save.
    """
    dist_on = torch.distributed.is_available() and torch.distributed.is_initialized()
    root = checkpoints_dir(run_dir)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "trainer_state").mkdir(parents=True)
    _barrier(dist_on)
    if gather_params is not None:
        with gather_params():
            if rank == 0:
                save_hf(model, tokenizer, tmp, merge_lora=merge_lora)
    elif rank == 0:
        save_hf(model, tokenizer, tmp, merge_lora=merge_lora)
    ts = tmp / "trainer_state"
    torch.save(rng_state(), ts / f"rng_rank{rank}.pt")
    if engine is not None:
        engine.save_checkpoint(str(ts / "deepspeed"), tag="state", save_latest=False)
    elif rank == 0 and optimizer is not None:
        # Plain path: gradients are all-reduced before the step, so every rank holds the same optimizer state.
        torch.save(optimizer.state_dict(), ts / "optimizer.pt")
    _barrier(dist_on)
    if rank == 0:
        # state.json last: its presence is what marks the checkpoint complete
        (ts / "state.json").write_text(json.dumps({**state, "step": step}, indent=2), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        if keep_last > 0:
            for old in list_checkpoints(run_dir)[:-keep_last]:
                shutil.rmtree(old, ignore_errors=True)
    _barrier(dist_on)
    return final


def _load_safetensors_dir(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    index = path / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, torch.Tensor] = {}
        for f in files:
            out.update(load_file(str(path / f)))
        return out
    return load_file(str(path / "model.safetensors"))


def load_weights(model: Any, ckpt: Path) -> None:
    """Load a checkpoint's weights into an already built (and already peft-wrapped) model, in place."""
    if _is_peft(model):
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        adapter = ckpt / "adapter" if (ckpt / "adapter").is_dir() else ckpt
        set_peft_model_state_dict(model, load_file(str(adapter / "adapter_model.safetensors")))
        return
    sd = _load_safetensors_dir(ckpt)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    tied = (
        {k for k in missing if k.endswith("lm_head.weight")}
        if getattr(model.config, "tie_word_embeddings", False)
        else set()
    )
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise RuntimeError(f"checkpoint {ckpt}: missing {missing[:5]}, unexpected {unexpected[:5]}")


def load_training_state(ckpt: Path, *, rank: int, optimizer: Any = None, engine: Any = None) -> dict:
    """Restore optimizer (or DeepSpeed engine) and RNG state; returns state.json's content."""
    ts = ckpt / "trainer_state"
    state = json.loads((ts / "state.json").read_text(encoding="utf-8"))
    if engine is not None:
        engine.load_checkpoint(
            str(ts / "deepspeed"), tag="state", load_module_strict=False, load_lr_scheduler_states=False
        )
    elif optimizer is not None:
        optimizer.load_state_dict(_safe_load(ts / "optimizer.pt"))
    rng_file = ts / f"rng_rank{rank}.pt"
    if not rng_file.is_file():  # resumed with more ranks than saved: fall back to rank 0's generators
        rng_file = ts / "rng_rank0.pt"
    set_rng_state(_safe_load(rng_file))
    return state
