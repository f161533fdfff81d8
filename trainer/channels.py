"""Channel losses: the loss per task_type (level 1 and level 2) and on special tokens, token-weighted.

Why: one overall loss hides which tasks learn and which do not; SFT practice watches a "channel loss"
per task_type, and the special/template tokens (role headers, end-of-turn) as their own channel,
since they start high and must fall fast. The popular trainers refuse this feature; here it is a
cheap by-product of per-token losses that the training step computes anyway.

Bookkeeping is on detached values. Per micro-batch, ``add`` only launches a few device reductions
(overall and special sums, per-sample sums and counts) and keeps their results on the device: reading
them there, between the forward and the backward, would make the host wait for the forward and leave
the GPU idle while the host then launches the backward. They become Python floats per channel
(a handful of channels) when ``sums`` is read, i.e. once per ``reduce``, after the optimizer step, in one
copy; across ranks they are reduced once per logging step with one ``all_reduce`` of a packed tensor.
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
        self._sums: dict[str, list[float]] = {}
        # per micro-batch not yet read: (level 1 and 2 task of each sample, tokens, device sums; see add)
        self._pending: list[tuple[list[tuple[str, str]], int, torch.Tensor]] = []

    def reset(self) -> None:
        self._sums, self._pending = {}, []

    @property
    def sums(self) -> dict[str, list[float]]:
        """``{channel: [loss sum, token count]}``; reading it waits for the device once for all pending adds."""
        if self._pending:
            values = torch.cat([p[2] for p in self._pending]).tolist()
            at = 0
            for tasks, n, packed in self._pending:
                lsum, special_sum, special_count = values[at : at + 3]
                per_loss = values[at + 3 : at + 3 + len(tasks)]
                per_count = values[at + 3 + len(tasks) : at + packed.numel()]
                at += packed.numel()
                # in the order, and with the values, that a read at every add used: the same floats
                self._add("overall", lsum, float(n))
                if special_count:
                    self._add("special", special_sum, special_count)
                for (l1, l2), s, c in zip(tasks, per_loss, per_count, strict=True):
                    if c:
                        self._add(f"l1/{l1}", s, c)
                        self._add(f"l2/{l1}/{l2}", s, c)
            self._pending = []
        return self._sums

    def _add(self, name: str, loss: float, count: float) -> None:
        acc = self._sums.setdefault(name, [0.0, 0.0])
        acc[0] += loss
        acc[1] += count

    @torch.no_grad()
    def add(self, tl: TokenLosses, batch: dict) -> None:
        """Accumulate one micro-batch's token losses (as returned by ``supervised_token_losses``).

        No host read: the token count is a shape, and the sums stay on the device until ``sums`` is read.
        """
        loss = tl.loss.detach().double()
        n = loss.numel()
        if n == 0:
            return
        samples = batch["samples"]
        zeros = torch.zeros(len(samples), dtype=torch.float64, device=loss.device)
        per_loss = zeros.index_add(0, tl.sample_idx, loss)
        # index_add of ones, not bincount: on CUDA bincount reads the largest index back to size its output
        per_count = zeros.index_add(0, tl.sample_idx, torch.ones_like(loss))
        special = tl.is_special
        # zeros in place of the other tokens, not loss[special], whose size the host would have to read;
        # in float64 the zeros change the special sum's rounding in its last bits at most
        totals = torch.stack([loss.sum(), torch.where(special, loss, 0.0).sum(), special.sum().double()])
        tasks = [(s.get("task_l1", ""), s.get("task_l2", "") or "") for s in samples]
        self._pending.append((tasks, n, torch.cat([totals, per_loss, per_count])))

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
