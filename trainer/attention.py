"""Which attention kernel runs, and torch's own varlen flash kernel as a transformers attention backend.

Packed bins hold several samples, and attention must stay inside each one. Two ways exist:

- a block-diagonal boolean mask ``[B, 1, L, L]`` for SDPA or eager: correct everywhere, but O(L²) memory
  and no flash kernel (SDPA falls back to its math or memory-efficient path with an explicit mask);
- one flattened row with ``cu_seq_lens`` for a variable-length kernel: linear memory, no mask. flash-attn
  (``flash_attention_2``) is one; torch ships another, ``torch.nn.attention.varlen.varlen_attn``, usable
  where no flash-attn wheel exists for the installed torch (the usual case: PyPI has only its sdist).

``resolve_attention`` turns the config's choice ("auto" by default) into the transformers
``attn_implementation`` for this device, with the warnings the run log should carry when it had to fall
back. ``varlen_attention_forward`` is registered in transformers under ``HF_VARLEN``; the caller
(``trainer.loss.backbone_hidden_states``) passes ``cu_seq_lens_q/k`` and ``max_length_q/k`` exactly as
for flash-attn.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch

# torch.nn.attention.varlen, imported once by register(): torch.compile cannot trace import_module, and
# the kernel is read from the module at each call (tests replace it there)
_varlen_module: Any = None
HF_VARLEN = "sftlab_varlen"  # our name in transformers' AttentionInterface; the config calls it "varlen"
VARLEN_IMPLS = ("flash_attention_2", HF_VARLEN)  # fed one flattened row and cu_seq_lens, no mask
FLASH_DTYPES = (torch.float16, torch.bfloat16)

_SDPA_COST = "block-diagonal [B,1,L,L] mask: correct, but O(L^2) memory and no flash kernel"


def _imports(module: str) -> bool:
    # an import, not find_spec: a flash-attn wheel built for another torch is found but fails to load
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - ImportError, or an undefined symbol raised as OSError/RuntimeError
        return False
    return True


def _ampere_or_newer(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


def flash_attn_available(device: torch.device) -> bool:
    """flash-attn imports and the device runs it (CUDA, compute capability 8.0+)."""
    return _ampere_or_newer(device) and _imports("flash_attn")


def torch_varlen_available(device: torch.device) -> bool:
    """torch has ``nn.attention.varlen`` and the device runs its flash kernel (CUDA, compute capability 8.0+)."""
    return _ampere_or_newer(device) and _imports("torch.nn.attention.varlen")


def resolve_attention(
    requested: str, *, device: torch.device, precision: str, dropout: float = 0.0
) -> tuple[str, list[str]]:
    """The transformers ``attn_implementation`` for ``requested`` on ``device``, and fallback warnings.

    "auto": on CUDA with bf16/fp16, flash_attention_2 when flash-attn imports, else torch's varlen
    kernel (``HF_VARLEN``) when the device supports it, else SDPA with a warning; fp32 and CPU get SDPA
    (flash kernels take only fp16/bf16). An explicit flash_attention_2 without flash-attn falls back the
    same way, with a warning instead of an ImportError at load time.
    """
    if requested in ("sdpa", "eager"):
        return requested, []
    warnings: list[str] = []
    if device.type != "cuda":
        if requested != "auto":
            warnings.append(
                f"attn_implementation={requested} needs a CUDA device; using sdpa on {device.type}"
            )
        return "sdpa", warnings
    if precision == "fp32":
        # validate() refuses explicit flash/varlen with fp32: "auto" is what normally gets here
        return "sdpa", [f"attn_implementation={requested} with precision=fp32: sdpa ({_SDPA_COST})"]
    if requested in ("auto", "flash_attention_2"):
        if flash_attn_available(device):
            return "flash_attention_2", []
        if requested == "flash_attention_2":
            warnings.append(
                "attn_implementation=flash_attention_2 but flash_attn is not installed for this device"
            )
    if dropout == 0.0 and torch_varlen_available(device):
        if warnings:
            warnings[-1] += "; using torch's varlen flash kernel instead"
        return HF_VARLEN, warnings
    why = (
        "train.dropout > 0" if dropout else f"{torch.cuda.get_device_name(device)} has no torch varlen kernel"
    )
    warnings.append(f"attn_implementation={requested}: {why}; using sdpa ({_SDPA_COST})")
    return "sdpa", warnings


def uses_varlen(model: Any) -> bool:
    """The model's attention takes one flattened row with ``cu_seq_lens`` instead of a 4D mask."""
    return getattr(model.config, "_attn_implementation", None) in VARLEN_IMPLS


def register() -> None:
    """Make ``HF_VARLEN`` a valid ``attn_implementation`` for transformers (idempotent).

    Its mask function returns None: the kernel gets sequence boundaries, so the L×L mask transformers
    would otherwise build for the flattened row (B·L)² is never made.
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    global _varlen_module
    AttentionInterface.register(HF_VARLEN, varlen_attention_forward)
    AttentionMaskInterface.register(HF_VARLEN, _no_mask)
    if _varlen_module is None and _imports("torch.nn.attention.varlen"):
        _varlen_module = importlib.import_module("torch.nn.attention.varlen")


def _no_mask(*args: Any, **kwargs: Any) -> None:
    return None


_SIGNATURES: dict[Any, tuple[bool, str]] = {}


def _varlen_kwargs(fn: Any) -> tuple[bool, str]:
    """(takes enable_gqa, how to ask for causal) for this torch's ``varlen_attn`` signature.

    Earlier torch versions took ``is_causal=``; later ones ``window_size=(left, right)``, where (-1, 0) is
    causal. Without ``enable_gqa`` the caller repeats K/V heads. Memoised in a plain dict rather than
    ``lru_cache``: torch.compile traces through the dict without a warning (trainer.compiling).
    """
    got = _SIGNATURES.get(fn)
    if got is None:
        params = inspect.signature(fn).parameters
        if "window_size" in params:
            causal = "window_size"
        elif "is_causal" in params:
            causal = "is_causal"
        else:
            raise RuntimeError(
                "torch.nn.attention.varlen.varlen_attn takes neither window_size nor is_causal"
            )
        got = _SIGNATURES[fn] = ("enable_gqa" in params, causal)
    return got


def varlen_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    sliding_window: int | None = None,
    softcap: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers attention function: q/k/v ``[B, H, L, D]`` in, ``[B, L, H, D]`` out, causal per segment.

    ``cu_seq_lens_q/k`` index the flattened ``B·L`` tokens (trainer.loss passes B=1).
    """
    cu_q, cu_k = kwargs.get("cu_seq_lens_q"), kwargs.get("cu_seq_lens_k")
    if cu_q is None or cu_k is None:
        raise ValueError(
            "varlen attention needs cu_seq_lens_q/k (packed batches through trainer.loss.backbone_hidden_states)"
        )
    if dropout or sliding_window or softcap:
        raise NotImplementedError(
            "varlen attention has no dropout, sliding window or softcap: use attn_implementation=sdpa"
        )
    B, Hq, L, D = query.shape
    Hkv = key.shape[1]
    q = query.transpose(1, 2).reshape(B * L, Hq, D)
    k = key.transpose(1, 2).reshape(B * L, Hkv, -1)
    v = value.transpose(1, 2).reshape(B * L, Hkv, -1)
    if q.is_cuda and q.dtype not in FLASH_DTYPES:  # the kernel is CUDA-only; CPU tests pass a reference
        if not torch.is_autocast_enabled(q.device.type):
            raise ValueError(f"varlen attention takes fp16/bf16, got {q.dtype}: train with precision bf16")
        dtype = torch.get_autocast_dtype(q.device.type)
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    module = (
        _varlen_module if _varlen_module is not None else importlib.import_module("torch.nn.attention.varlen")
    )
    fn = module.varlen_attn
    takes_gqa, causal = _varlen_kwargs(fn)
    extra: dict[str, Any] = {"window_size": (-1, 0)} if causal == "window_size" else {"is_causal": True}
    if Hq != Hkv:
        if takes_gqa:
            extra["enable_gqa"] = True
        else:  # query head h reads key/value head h // (Hq/Hkv), as transformers' repeat_kv does
            k = k.repeat_interleave(Hq // Hkv, dim=1)
            v = v.repeat_interleave(Hq // Hkv, dim=1)
    max_q, max_k = int(kwargs["max_length_q"]), int(kwargs["max_length_k"])
    out = fn(q, k, v, cu_q, cu_k, max_q, max_k, scale=scaling, **extra)
    if isinstance(out, tuple):
        out = out[0]
    return out.reshape(B, L, Hq, -1), None
