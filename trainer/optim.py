"""Optimizer and learning-rate schedules.

AdamW with weight decay on matrices only (biases, norms and 1-D parameters are not decayed, as usual for
transformers). The schedule is linear warmup, then cosine, linear or constant down to `min_lr_ratio * lr`:
a pure function of the optimizer step, which makes resume exact.
"""

from __future__ import annotations

import math

import torch

from trainer.config import TrainConfig


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    if not any(g["params"] for g in groups):
        raise ValueError("no trainable parameters: check finetune.method and the freeze_* fields")
    # one fused kernel for the whole update on CUDA instead of a few per parameter tensor (foreach)
    fused = all(p.is_cuda and p.dtype.is_floating_point for g in groups for p in g["params"])
    return torch.optim.AdamW(
        groups, lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps, fused=fused or None
    )


def warmup_steps(cfg: TrainConfig, total_steps: int) -> int:
    if cfg.warmup_steps > 0:
        return min(cfg.warmup_steps, total_steps)
    return int(math.ceil(cfg.warmup_ratio * total_steps))


def lr_factor(step: int, *, total: int, warmup: int, kind: str, min_ratio: float) -> float:
    """Multiplier of the peak lr for optimizer step `step` (0-based: the lr used by the step-th update)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    if kind == "linear":
        decay = 1.0 - progress
    elif kind == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        raise ValueError(f"unknown scheduler {kind!r}")
    return min_ratio + (1.0 - min_ratio) * decay


class LRSchedule:
    """Sets the lr of every param group from the optimizer step; its whole state is that step.

    A plain object rather than a torch LRScheduler so that the same code drives a torch optimizer and a
    DeepSpeed engine's wrapped optimizer (whose param_groups are the inner optimizer's), and resume is exact.
    """

    def __init__(self, cfg: TrainConfig, total_steps: int):
        self.base_lr = cfg.lr
        self.total = total_steps
        self.warmup = warmup_steps(cfg, total_steps)
        self.kind = cfg.scheduler
        self.min_ratio = cfg.min_lr_ratio

    def lr_at(self, step: int) -> float:
        return self.base_lr * lr_factor(
            step, total=self.total, warmup=self.warmup, kind=self.kind, min_ratio=self.min_ratio
        )

    def apply(self, optimizer, step: int) -> float:
        lr = self.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict:
        return {
            "base_lr": self.base_lr,
            "total": self.total,
            "warmup": self.warmup,
            "kind": self.kind,
            "min_ratio": self.min_ratio,
        }
