"""Process group, collectives and the DeepSpeed engine, the same code on CPU (gloo) and GPU (nccl).

Launch modes all end up here: a single process (no process group unless DeepSpeed wants one), `torchrun`
(RANK/WORLD_SIZE/LOCAL_RANK in the environment) and the `deepspeed` launcher (same variables). On CPU,
DeepSpeed needs `DS_ACCELERATOR=cpu` and `init_distributed(dist_backend="gloo")` (../shared/RECIPES.md).

Gradient reduction on the plain torch path is a SUM over ranks (not DDP's mean): the loss of each
micro-batch is already divided by global counts, so summing is what makes 2 ranks x batch 4 equal
1 rank x batch 8. DeepSpeed averages over ranks, so the loop multiplies its loss by the world size.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from trainer.config import RunConfig


@dataclass
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    initialised_here: bool


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init(cfg: RunConfig) -> DistInfo:
    """Initialise the process group when launched with several ranks or when DeepSpeed is on."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    here = False
    if cfg.deepspeed.enabled:
        if not cuda:
            os.environ.setdefault("DS_ACCELERATOR", "cpu")
        # a plain `python -m trainer.train` with DeepSpeed: make a 1-rank group instead of probing MPI
        for key, value in (
            ("RANK", "0"),
            ("WORLD_SIZE", "1"),
            ("LOCAL_RANK", "0"),
            ("MASTER_ADDR", "127.0.0.1"),
        ):
            os.environ.setdefault(key, value)
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        import deepspeed

        if not dist.is_initialized():
            deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo")
            here = True
    elif world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
        here = True
    return DistInfo(rank=rank, world=world, local_rank=local_rank, device=device, initialised_here=here)


def teardown(info: DistInfo | None) -> None:
    if info is not None and info.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def is_on() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """SUM across ranks (identity on one rank); returns the summed tensor (moved to the GPU under NCCL)."""
    if is_on():
        if dist.get_backend() == "nccl" and t.device.type != "cuda":
            t = t.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_dict(d: dict[str, float], device: torch.device) -> dict[str, float]:
    """Sum a dict of numbers across ranks; keys may differ per rank (task names), so gather them first."""
    keys = set(d)
    if is_on():
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, sorted(keys))
        keys = set().union(*map(set, gathered))
    names = sorted(keys)
    # float64: token counts of large runs exceed float32's exact integers
    t = torch.tensor([float(d.get(k, 0.0)) for k in names], dtype=torch.float64, device=device)
    t = all_reduce_sum(t)
    return dict(zip(names, t.tolist(), strict=True))


def all_reduce_grads(params: list[torch.nn.Parameter]) -> None:
    """SUM gradients across ranks in flat buckets (one collective per ~25M elements)."""
    if not is_on():
        return
    grads = [p.grad for p in params if p.grad is not None]
    bucket: list[torch.Tensor] = []
    size = 0
    for g in grads + [None]:
        if g is not None:
            bucket.append(g)
            size += g.numel()
        if bucket and (g is None or size >= 25_000_000):
            flat = torch.cat([b.reshape(-1) for b in bucket])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            offset = 0
            for b in bucket:
                b.copy_(flat[offset : offset + b.numel()].view_as(b))
                offset += b.numel()
            bucket, size = [], 0


def barrier() -> None:
    if is_on():
        dist.barrier()


def deepspeed_config(cfg: RunConfig, world: int) -> dict:
    """The DeepSpeed JSON generated from the run config (saved in the run dir by the loop)."""
    t, ds = cfg.train, cfg.deepspeed
    zero: dict[str, Any] = {"stage": ds.zero_stage}
    if ds.zero_stage >= 1 and ds.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    if ds.zero_stage == 3 and ds.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    if ds.zero_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    conf: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": t.per_device_batch,
        "gradient_accumulation_steps": t.grad_accum,
        "train_batch_size": t.per_device_batch * t.grad_accum * world,
        "gradient_clipping": t.grad_clip,
        "zero_optimization": zero,
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": t.lr,
                "betas": [t.adam_beta1, t.adam_beta2],
                "eps": t.adam_eps,
                "weight_decay": t.weight_decay,
                "torch_adam": True,
            },
        },
        "bf16": {"enabled": t.precision == "bf16"},
        "fp16": {"enabled": t.precision == "fp16"},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if t.precision == "bf16" and ds.zero_stage >= 1:
        # Without this, gradients are accumulated over micro-batches in bf16 (8 mantissa bits), so small
        # contributions vanish in long accumulation windows. ZeRO 1 then uses DeepSpeed's BF16 optimizer,
        # ZeRO 2 and 3 keep fp32 gradient partitions. Stage 0 rejects the key (DeepSpeed 0.19.8 raises
        # "unsupported mix of model_dtype and grad_accum_dtype" without a ZeRO optimizer).
        conf["data_types"] = {"grad_accum_dtype": "fp32"}
    if not ds.offload_optimizer:
        conf["zero_allow_untested_optimizer"] = True
    return conf


def zero3_load_context(cfg: RunConfig, world: int) -> Any:
    """With ZeRO-3, the object that makes ``from_pretrained`` partition weights as it loads them; else None.

    Without it every rank first materialises the whole fp32 model and only ``deepspeed.initialize``
    partitions it, so ZeRO-3 saves nothing at load time: the largest model that trains would be the
    largest one a single device holds whole. transformers keeps only a weak reference to it: hold it for
    the life of the run.
    """
    if not (cfg.deepspeed.enabled and cfg.deepspeed.zero_stage == 3):
        return None
    from transformers.integrations import HfDeepSpeedConfig

    return HfDeepSpeedConfig(deepspeed_config(cfg, world))


def end_zero3_load() -> None:
    """Stop ``from_pretrained`` partitioning under ZeRO-3: a later load in this process (tests, evals that
    run in-process after training) must get a whole model again."""
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()


def build_engine(cfg: RunConfig, model: torch.nn.Module, param_groups: list[dict], world: int):
    """The engine wraps the model AND its loss (``SupervisedLoss``): the loop calls ``engine(batch)``."""
    import deepspeed

    from trainer.loss import SupervisedLoss

    engine, optimizer, _, _ = deepspeed.initialize(
        model=SupervisedLoss(model, chunk_size=cfg.packing.chunk_size),
        model_parameters=param_groups,
        config=deepspeed_config(cfg, world),
    )
    return engine, optimizer


def zero3_state_dict(engine: Any) -> dict[str, torch.Tensor] | None:
    """The full weights of a ZeRO-3 engine's model, on rank 0 (None elsewhere); collective.

    DeepSpeed gathers them one layer at a time onto rank 0, moving each to CPU before the next, so no
    rank ever holds the whole model on its device (gathering every parameter at once did). They come in
    the engine's dtype (fp32 in fp32 runs), with the keys of the model inside ``SupervisedLoss``.
    """
    full = engine._zero3_consolidated_16bit_state_dict()
    if full is None:
        return None
    prefix = "module."
    return {k[len(prefix) :]: v for k, v in full.items() if k.startswith(prefix)}
