"""Channel losses: the loss per task_type (level 1 and level 2) and on special tokens, token-weighted.

Why: one overall loss hides which tasks learn and which do not; SFT practice watches a "channel loss"
per task_type, and the special/template tokens (role headers, end-of-turn) as their own channel,
since they start high and must fall fast. The popular trainers refuse this feature; here it is a
cheap by-product of per-token losses that the training step computes anyway.

Bookkeeping is on detached values, accumulated as Python floats per channel (a handful of
``index_add``/``tolist`` calls per micro-batch), and reduced across ranks once per logging step
with one ``all_reduce`` of a packed tensor.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from trainer.loss import TokenLosses


class ChannelAccumulator:
    """Sums of token losses and token counts per channel since the last ``reset``.

    Channels: ``overall``, ``l1/<level1>``, ``l2/<level1>/<level2>`` (level 2 empty: ``l2/<level1>/``),
    and ``special`` (targets that are special or template tokens).
    """

    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}

    def reset(self) -> None:
        self.sums = {}

    def _add(self, name: str, loss: float, count: float) -> None:
        acc = self.sums.setdefault(name, [0.0, 0.0])
        acc[0] += loss
        acc[1] += count

    @torch.no_grad()
    def add(self, tl: TokenLosses, batch: dict) -> None:
        """Accumulate one micro-batch's token losses (as returned by ``supervised_token_losses``)."""
        loss = tl.loss.detach().double()
        n = loss.numel()
        if n == 0:
            return
        samples = batch["samples"]
        per_loss = torch.zeros(len(samples), dtype=torch.float64, device=loss.device).index_add_(
            0, tl.sample_idx, loss
        )
        per_count = torch.bincount(tl.sample_idx, minlength=len(samples))
        special = tl.is_special
        sums = torch.stack([loss.sum(), loss[special].sum(), special.sum().double()]).tolist()
        self._add("overall", sums[0], float(n))
        if sums[2]:
            self._add("special", sums[1], sums[2])
        for s, lsum, cnt in zip(samples, per_loss.tolist(), per_count.tolist(), strict=True):
            if cnt:
                l1, l2 = s.get("task_l1", ""), s.get("task_l2", "") or ""
                self._add(f"l1/{l1}", lsum, cnt)
                self._add(f"l2/{l1}/{l2}", lsum, cnt)

    def reduce(
        self,
        all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
        *,
        all_gather_object: Callable | None = None,
    ) -> dict[str, dict]:
        """``{channel: {"loss": sum / count, "tokens": count}}`` over all ranks.

        ``all_reduce`` receives a float64 CPU tensor ``[2 * channels]`` and must return its sum over
        ranks (it may move it to the communication device); None means this process only. Channel
        names differ by rank (a rank may not have seen a task), so names are first gathered with
        ``all_gather_object`` (a callable ``obj -> [obj of each rank]``; default: through
        ``torch.distributed.all_gather_object`` when initialised). Does not reset.
        """
        names = sorted(self.sums)
        if all_reduce is not None:
            names = sorted(set().union(*_gather_names(names, all_gather_object)))
            packed = torch.tensor(
                [v for n in names for v in self.sums.get(n, [0.0, 0.0])], dtype=torch.float64
            )
            packed = all_reduce(packed).to("cpu", torch.float64)
            values = packed.view(-1, 2).tolist()
        else:
            values = [self.sums[n] for n in names]
        return {
            n: {"loss": s / c if c else float("nan"), "tokens": int(c)}
            for n, (s, c) in zip(names, values, strict=True)
        }


def _gather_names(names: list[str], all_gather_object: Callable | None) -> list[list[str]]:
    if all_gather_object is None:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return [names]
        gathered: list = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, names)
        return gathered
    gathered = all_gather_object(names)
    return list(gathered)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over ranks with torch.distributed (on the GPU for NCCL); identity when not distributed."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    if dist.get_backend() == "nccl":
        t = t.to(torch.device("cuda", torch.cuda.current_device()))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t
