"""Validation: the held-out split, scored with the same loss path and per-task_type channels as training.

Eval bins (packed once, no shuffle) are dealt to ranks round-robin; every rank runs the same number of
forward passes (a fully masked dummy bin fills the gaps) because ZeRO-3 gathers parameters collectively
in each forward. The reported loss is token-weighted over all supervised eval tokens, all ranks summed.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from trainer import distributed as dist_
from trainer.plan import BinPlan, build_batch


def eval_rows(plan: BinPlan, rank: int, world: int) -> list[list[list[int]]]:
    """This rank's eval micro-batches, padded with empty ones so all ranks run the same count."""
    mine = plan.eval_bins[rank::world]
    n = math.ceil(len(plan.eval_bins) / world / plan.batch) if plan.eval_bins else 0
    return [mine[i * plan.batch : (i + 1) * plan.batch] for i in range(n)]


@torch.no_grad()
def evaluate(
    module: Any,
    plan: BinPlan,
    data: Any,
    *,
    rank: int,
    device: torch.device,
    chunk_size: int = 4096,
    amp: AbstractContextManager | None = None,
) -> dict:
    """Eval loss and channels; ``amp`` is training's autocast (``trainer.model.autocast``), so eval runs at
    the precision training does and flash kernels, which take no fp32, get bf16 inputs."""
    from trainer.channels import ChannelAccumulator
    from trainer.loss import supervised_token_losses

    world = plan.world
    was_training = module.training
    module.eval()
    acc = ChannelAccumulator()
    try:
        for rows in eval_rows(plan, rank, world):
            batch = build_batch(data, data.eval, rows, device)
            with amp if amp is not None else nullcontext():
                tl = supervised_token_losses(module, batch, chunk_size=chunk_size)
            acc.add(tl, batch)
        channels = acc.reduce(dist_.all_reduce_sum if dist_.is_on() else None)
    finally:
        module.train(was_training)
    overall = channels.get("overall", {"loss": float("nan"), "tokens": 0})
    return {"loss": overall["loss"], "tokens": overall["tokens"], "channels": channels}
