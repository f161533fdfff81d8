"""torch.compile of the decoder layers, where the element-wise half of a GPU step goes.

A profile of a bf16 step of a 0.5B model on an H100 found the matrix products a quarter of the GPU time
and the casts, multiplies and adds of the model's unfused RMSNorm, rotary embedding and SwiGLU most of
the rest, each its own kernel launched from Python. Compiling fuses them and cuts the launches.

Each decoder layer is compiled on its own ("regional" compilation): the layers share their code, so one
graph serves all of them and compiling takes seconds, not minutes. The output layer and the loss stay
eager (trainer.loss runs them on a data-dependent number of supervised tokens), and a per-layer region
composes with gradient checkpointing (the recompute calls the compiled layer again) and with ZeRO-1/2.
ZeRO-3 gathers each layer's parameters in module hooks that compiled code would skip, so "auto" leaves
it eager there and the config refuses "on" with it.
"""

from __future__ import annotations

from typing import Any

import torch

from trainer.loss import unwrap_model


def resolve_compile(requested: str, *, device: torch.device, zero_stage: int | None) -> bool:
    """Whether to compile: "on"/"off" as asked; "auto" on CUDA unless ZeRO-3 (``zero_stage`` None: no DeepSpeed).

    CPU stays eager under "auto": inductor's C++ compile of a layer takes longer than the short CPU
    runs this platform starts there save.
    """
    if requested in ("on", "off"):
        return requested == "on"
    return device.type == "cuda" and zero_stage != 3


def decoder_layers(model: Any) -> torch.nn.ModuleList | None:
    """The repeated blocks of an HF causal LM (plain, peft-wrapped, or inside a trainer.loss wrapper), or
    None for a model that keeps them elsewhere (GPT-2's ``transformer.h``, say)."""
    hf = unwrap_model(model)
    layers = getattr(hf.get_decoder(), "layers", None)
    return layers if isinstance(layers, torch.nn.ModuleList) and len(layers) else None


def no_layers_warning(model: Any) -> str:
    return (
        f"model.compile: {type(unwrap_model(model)).__name__} has no decoder.layers to compile; it runs eager"
    )


def compile_layers(model: Any) -> int:
    """Compile every decoder layer in place (state-dict keys unchanged); returns how many (0: none found).

    ``dynamic=None``: the first batch compiles for its shapes, and a second shape marks the varying
    sizes (packed length, number of samples, longest sample) symbolic instead of compiling again for
    every batch. A compiler error makes the layers run eager (same numbers, slower) instead of ending
    a run that may have queued all night; ``compiled_nothing`` tells the run to say so.
    """
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    layers = decoder_layers(model) or torch.nn.ModuleList()
    for layer in layers:
        layer.compile(backend=BACKEND, dynamic=None)
    return len(layers)


def compiled_nothing() -> bool:
    """After a forward through compiled layers: True when no graph was compiled (the compiler failed)."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"] == 0


COMPILE_FAILED = (
    "model.compile: torch.compile failed (the reason is in the run's log), so the decoder layers ran eager: "
    "same results, slower; set model.compile=off to skip the attempt"
)
BACKEND = "inductor"  # torch.compile's backend; tests swap in one that fails
