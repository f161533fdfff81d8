"""The run's bin stream and which bins each rank sees at each step.

Why a plan: exactness and exact resume both come from the data order being a pure function of
(data, config, seed). T1's `trainer.data.prepare_data` gives the sample order of the whole run (one
seeded shuffle per epoch, the last one cut for fractional epochs); here each epoch's samples are packed
best-fit-decreasing into bins (`trainer.packing.pack_stream`, bins shuffled with the seed), and the bins
are consumed G = world x per_device_batch x grad_accum at a time.

Step k owns bins [k·G, (k+1)·G) of the stream; rank r takes the r-th contiguous slice of B·A bins and cuts
it into A micro-batches of B bins. Changing how G is split (ranks, batch, accumulation) never changes
which bins a step sees. A short last step leaves some micro-batches empty: they get a fully masked dummy
bin, so every rank still runs the same number of forward/backward passes (DeepSpeed collectives need it).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainer.config import RunConfig


def load_data(cfg: RunConfig, tokenizer: Any):
    """T1's data pipeline with the run's options; raises DataError before any weight is loaded."""
    from trainer.data import prepare_data
    from trainer.render import RenderOptions

    d = cfg.data
    options = RenderOptions(
        scope=cfg.loss.scope, prompt_loss=cfg.loss.prompt_loss, eos_in_loss=cfg.loss.eos_in_loss
    )
    data = prepare_data(
        d.train_file,
        tokenizer,
        options=options,
        max_seq_len=d.max_seq_len,
        over_length=d.over_length,
        mix=d.mix or None,
        epochs=cfg.train.epochs,
        seed=cfg.train.seed,
        eval_fraction=d.eval_fraction,
        eval_path=d.eval_file or None,
    )
    data.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return data


@dataclass
class BinPlan:
    bins: list[list[int]]  # the whole run's bins, indices into data.train
    epoch_ends: list[int]  # cumulative bin count at the end of each (possibly partial) epoch
    epoch_sizes: list[int]  # bins per epoch (the last one may be partial)
    samples_cum: list[int]  # samples consumed after each bin
    n_train: int
    G: int  # bins per optimizer step, all ranks
    world: int
    batch: int
    accum: int
    eval_bins: list[list[int]]
    counts: dict
    packing_efficiency: float
    digest: str = ""
    counts_per_task: dict = field(default_factory=dict)
    sources: list[tuple[str, str]] = field(default_factory=list)  # (file:line, task_type) per train index

    @property
    def total_steps(self) -> int:
        return math.ceil(len(self.bins) / self.G)

    def bins_done(self, step: int) -> int:
        return min(step * self.G, len(self.bins))

    def epoch_at(self, step: int) -> float:
        """Epochs completed after `step`, counted in samples (1.5 = one and a half passes over the data)."""
        done = self.bins_done(step)
        return self.samples_cum[done - 1] / self.n_train if done else 0.0

    def ends_epoch(self, step: int) -> bool:
        """True when an epoch end falls inside this step (or the run ends with it)."""
        lo, hi = self.bins_done(step - 1), self.bins_done(step)
        return any(lo < end <= hi for end in self.epoch_ends)

    def step_bins(self, step: int, rank: int) -> list[list[list[int]]]:
        """This rank's micro-batches at `step`: accum lists of <= batch bins (each bin a list of indices)."""
        chunk = self.bins[step * self.G : (step + 1) * self.G]
        per_rank = self.batch * self.accum
        mine = chunk[rank * per_rank : (rank + 1) * per_rank]
        return [mine[m * self.batch : (m + 1) * self.batch] for m in range(self.accum)]

    def write(self, out: Path) -> None:
        """Record seed, counts per task_type and the data order (one line per step) in the run dir.

        The bins hold indices into the mixed training set; data_samples.jsonl maps each index to its
        file:line and task_type, so the order can be read without re-running the mix.
        """
        (out / "data_plan.json").write_text(
            json.dumps(
                {
                    "seed": self.counts.get("seed"),
                    "digest": self.digest,
                    "total_steps": self.total_steps,
                    "bins": len(self.bins),
                    "bins_per_step": self.G,
                    "epoch_ends": self.epoch_ends,
                    "packing_efficiency": self.packing_efficiency,
                    "counts": self.counts,
                },
                indent=2,
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )
        with open(out / "data_order.jsonl", "w", encoding="utf-8") as fh:
            for s in range(self.total_steps):
                fh.write(json.dumps({"step": s + 1, "bins": self.bins[s * self.G : (s + 1) * self.G]}) + "\n")
        with open(out / "data_samples.jsonl", "w", encoding="utf-8") as fh:
            for i, (where, task) in enumerate(self.sources):
                fh.write(
                    json.dumps({"index": i, "where": where, "task_type": task}, ensure_ascii=False) + "\n"
                )


def build_plan(cfg: RunConfig, data: Any, *, world: int) -> BinPlan:
    from trainer.packing import pack_stream

    n = len(data.train)
    lengths = [len(t) for t in data.train]
    L = cfg.data.max_seq_len
    bins: list[list[int]] = []
    epoch_ends, sizes = [], []
    for e, start in enumerate(range(0, len(data.order), n)):
        seg = data.order[start : start + n]
        if cfg.packing.enabled:
            seg_bins = pack_stream(seg, lengths, L, seed=cfg.train.seed * 1000 + e)
        else:
            seg_bins = [[i] for i in seg]
        bins.extend(seg_bins)
        epoch_ends.append(len(bins))
        sizes.append(len(seg_bins))
    t = cfg.train
    G = world * t.per_device_batch * t.grad_accum
    if t.max_steps:
        # A run cut at max_steps: the bins after its last step are never reached, and the schedule,
        # progress and epoch count follow the shorter run.
        bins = bins[: t.max_steps * G]
        kept = [min(end, len(bins)) for end in epoch_ends]
        epoch_ends = sorted({e for e in kept if e > 0})
        sizes = [b - a for a, b in zip([0, *epoch_ends[:-1]], epoch_ends, strict=True)]
        seen = Counter(data.train[i].task_type for b in bins for i in b)
        for name, numbers in data.counts.get("per_task", {}).items():
            numbers["train_seen"] = seen.get(name, 0)
        data.counts["train_seen"] = sum(seen.values())
    samples_cum, acc = [], 0
    for b in bins:
        acc += len(b)
        samples_cum.append(acc)
    if cfg.packing.enabled:
        eval_bins = pack_stream(list(range(len(data.eval))), [len(t) for t in data.eval], L)
    else:
        eval_bins = [[i] for i in range(len(data.eval))]
    real = sum(lengths[i] for b in bins for i in b)
    slots = 0
    for s in range(0, len(bins), t.per_device_batch):  # a micro-batch pads its bins to the longest one
        group = bins[s : s + t.per_device_batch]
        slots += len(group) * max(sum(lengths[i] for i in b) for b in group)
    digest = hashlib.sha256(
        json.dumps([bins, [list(t.input_ids) for t in data.train[:50]], G]).encode()
    ).hexdigest()
    per_task = data.counts.get("per_task", {})
    return BinPlan(
        bins=bins,
        epoch_ends=epoch_ends,
        epoch_sizes=sizes,
        samples_cum=samples_cum,
        n_train=n,
        G=G,
        world=world,
        batch=t.per_device_batch,
        accum=t.grad_accum,
        eval_bins=eval_bins,
        counts=data.counts,
        packing_efficiency=real / slots if slots else 0.0,
        digest=digest[:16],
        counts_per_task={k: v.get("train_seen", 0) for k, v in per_task.items()},
        sources=[(getattr(t, "location", ""), getattr(t, "task_type", "")) for t in data.train],
    )


def _dummy(data: Any, samples: list) -> dict:
    """A one-bin micro-batch with no supervised token: zero loss, zero gradient, same collectives."""
    from trainer.collate import collate_packed

    batch = collate_packed([[samples[0]]], pad_id=data.pad_id)
    batch["shift_labels"] = torch.full_like(batch["shift_labels"], -100)
    batch["target_is_special"] = torch.zeros_like(batch["target_is_special"])
    batch["samples"] = [{**s, "n_supervised": 0} for s in batch["samples"]]
    batch["stats"] = {**batch["stats"], "real_tokens": 0, "slots": 0, "supervised_tokens": 0}
    batch["dummy"] = True
    return batch


def build_batch(data: Any, samples: list, rows: list[list[int]], device: torch.device) -> dict:
    """Collate ``rows`` (bins of indices into ``samples``) and put the batch on ``device``.

    What the loss derives from the batch alone (gather indices, varlen sequence starts) is computed
    here on the host and travels with the batch, in the same non-blocking copies: nothing in the step
    then has to read it back from the device.
    """
    from trainer.collate import collate_packed, cu_seq_lens, supervised_index, to_device

    if rows:
        batch = collate_packed([[samples[i] for i in row] for row in rows], pad_id=data.pad_id)
    else:
        batch = _dummy(data, samples)
    batch.update(supervised_index(batch))
    batch["cu_seq_lens"], batch["max_seq_len"] = cu_seq_lens(batch["seq_lens"], batch["input_ids"].shape[1])
    return to_device(batch, device)


def micro_batches(plan: BinPlan, data: Any, step: int, *, rank: int, device: torch.device) -> list[dict]:
    return [build_batch(data, data.train, rows, device) for rows in plan.step_bins(step, rank)]
