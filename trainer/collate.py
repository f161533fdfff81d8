"""Collation: bins of tokenised samples -> the batch contract that ``trainer.loss`` consumes.

Why pre-shifted labels: with several samples in one row, the usual "shift inside the loss" would make
the last token of one sample predict the first token of the next. Shifting here, per sample, means
``shift_labels[b, t]`` is exactly what position ``t`` must predict, and is ``-100`` at every sample's
last position, so a target never crosses a sample boundary. ``position_ids`` restart at 0 per sample
(RoPE sees each sample as if alone) and ``sample_idx`` tells the loss which sample owns each position
(the block-diagonal attention mask, per-sample and per-task normalisation, channel losses).

The padded collate produces the same contract with one sample per row, so baselines and evaluation
share one loss path with packed training.

Samples may be ``trainer.data.TokenizedSample`` objects or plain dicts with the same keys
(``input_ids``, ``supervised``, optional ``special``, ``task_l1``, ``task_l2``, ``index``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

IGNORE = -100


def _get(sample, key: str, default=None):
    if isinstance(sample, dict):
        return sample.get(key, default)
    return getattr(sample, key, default)


def collate_packed(bins: Sequence[Sequence], *, pad_id: int) -> dict:
    """One row per bin; rows padded to the longest bin with ``pad_id``.

    >>> a = {"input_ids": [5, 6, 7], "supervised": [False, True, True], "task_l1": "x", "index": 0}
    >>> b = {"input_ids": [8, 9], "supervised": [False, True], "task_l1": "y", "index": 1}
    >>> batch = collate_packed([[a, b]], pad_id=0)
    >>> batch["input_ids"].tolist(), batch["position_ids"].tolist()
    ([[5, 6, 7, 8, 9]], [[0, 1, 2, 0, 1]])
    >>> batch["shift_labels"].tolist(), batch["sample_idx"].tolist()
    ([[6, 7, -100, 9, -100]], [[0, 0, 0, 1, 1]])
    """
    if not bins or any(len(b) == 0 for b in bins):
        raise ValueError("collate_packed needs non-empty bins")
    rows_len = [sum(len(_get(s, "input_ids")) for s in b) for b in bins]
    B, L = len(bins), max(rows_len)
    input_ids = [[pad_id] * L for _ in range(B)]
    position_ids = [[0] * L for _ in range(B)]
    shift_labels = [[IGNORE] * L for _ in range(B)]
    sample_idx = [[-1] * L for _ in range(B)]
    target_special = [[False] * L for _ in range(B)]
    seq_lens: list[list[int]] = []
    samples: list[dict] = []
    supervised_total = 0
    for r, b in enumerate(bins):
        t0 = 0
        lens = []
        for s in b:
            ids = list(_get(s, "input_ids"))
            sup = list(_get(s, "supervised"))
            spec = _get(s, "special") or [False] * len(ids)
            n = len(ids)
            if len(sup) != n or len(spec) != n:
                raise ValueError("input_ids, supervised and special must have the same length")
            k = len(samples)
            input_ids[r][t0 : t0 + n] = ids
            position_ids[r][t0 : t0 + n] = range(n)
            sample_idx[r][t0 : t0 + n] = [k] * n
            n_sup = 0
            # position j predicts token j+1 of the same sample; the sample's last position predicts nothing
            for j in range(n - 1):
                if sup[j + 1]:
                    shift_labels[r][t0 + j] = ids[j + 1]
                    target_special[r][t0 + j] = bool(spec[j + 1])
                    n_sup += 1
            samples.append(
                {
                    "task_l1": _get(s, "task_l1", ""),
                    "task_l2": _get(s, "task_l2", "") or "",
                    "n_supervised": n_sup,
                    "index": _get(s, "index", k),
                }
            )
            supervised_total += n_sup
            lens.append(n)
            t0 += n
        seq_lens.append(lens)
    return {
        "input_ids": torch.tensor(input_ids, dtype=torch.long),
        "position_ids": torch.tensor(position_ids, dtype=torch.long),
        "shift_labels": torch.tensor(shift_labels, dtype=torch.long),
        "sample_idx": torch.tensor(sample_idx, dtype=torch.long),
        "target_is_special": torch.tensor(target_special, dtype=torch.bool),
        "seq_lens": seq_lens,
        "samples": samples,
        "stats": {"real_tokens": sum(rows_len), "slots": B * L, "supervised_tokens": supervised_total},
    }


def collate_padded(samples: Sequence, *, pad_id: int) -> dict:
    """The same contract with one sample per row (no packing), for baselines and evaluation.

    >>> a = {"input_ids": [5, 6, 7], "supervised": [False, False, True]}
    >>> b = {"input_ids": [8, 9], "supervised": [False, True]}
    >>> batch = collate_padded([a, b], pad_id=0)
    >>> batch["input_ids"].tolist(), batch["shift_labels"].tolist()
    ([[5, 6, 7], [8, 9, 0]], [[-100, 7, -100], [9, -100, -100]])
    >>> batch["sample_idx"].tolist(), batch["stats"]
    ([[0, 0, 0], [1, 1, -1]], {'real_tokens': 5, 'slots': 6, 'supervised_tokens': 2})
    """
    return collate_packed([[s] for s in samples], pad_id=pad_id)


def supervised_index(batch: dict) -> dict:
    """Where the loss gathers: every supervised position, with its target, sample and special flag.

    Why here, on the host: derived on the device from a boolean mask, the number of supervised tokens
    is a host read in the middle of the step, and the host then waits for the whole backbone forward
    before it can launch the output layer. From the host labels, before the batch is copied, it costs
    nothing. ``trainer.plan.build_batch`` adds these keys to every training and eval batch; ``n`` is
    ``sup_pos``'s length, a shape, known on the host wherever the tensors are.

    >>> a = {"input_ids": [5, 6, 7], "supervised": [False, True, True], "special": [False, False, True]}
    >>> idx = supervised_index(collate_packed([[a], [a]], pad_id=0))
    >>> idx["sup_pos"].tolist(), idx["sup_targets"].tolist(), idx["sup_sample_idx"].tolist()
    ([0, 1, 3, 4], [6, 7, 6, 7], [0, 0, 1, 1])
    >>> idx["sup_special"].tolist()
    [False, True, False, True]
    """
    labels = batch["shift_labels"].reshape(-1)
    pos = torch.nonzero(labels != IGNORE).reshape(-1)  # row-major, like every per-token tensor of the loss
    return {
        "sup_pos": pos,
        "sup_targets": labels[pos],
        "sup_sample_idx": batch["sample_idx"].reshape(-1)[pos],
        "sup_special": batch["target_is_special"].reshape(-1)[pos],
    }


def cu_seq_lens(seq_lens: Sequence[Sequence[int]], L: int) -> tuple[torch.Tensor, int]:
    """Sequence starts of the flattened ``[B * L]`` batch for varlen attention, and the longest sequence.

    Each sample is a sequence, and so is each row's padding.

    >>> cu, longest = cu_seq_lens([[3, 2], [4]], 6)
    >>> cu.tolist(), cu.dtype, longest
    ([0, 3, 5, 6, 10, 12], torch.int32, 4)
    """
    lens: list[int] = []
    for row in seq_lens:
        lens.extend(row)
        if L - sum(row) > 0:
            lens.append(L - sum(row))
    return torch.tensor([0, *itertools.accumulate(lens)], dtype=torch.int32), max(lens)


def to_device(batch: dict, device) -> dict:
    """Move the host tensor entries of a batch to ``device``: one copy per dtype, which the host need not wait for.

    A copy from ordinary (pageable) host memory, or any copy without ``non_blocking``, makes the host
    wait until the GPU has drained its queue, i.e. the previous step. So the tensors of each dtype are
    packed into one pinned buffer, copied with ``non_blocking=True``, and come back as views of it.
    Lists and dicts are left as they are.

    >>> batch = to_device({"a": torch.ones(2, 2), "b": torch.zeros(3), "n": [1]}, "meta")
    >>> batch["a"].device, batch["a"].shape, batch["b"].shape, batch["n"]
    (device(type='meta'), torch.Size([2, 2]), torch.Size([3]), [1])
    """
    device = torch.device(device)
    out = dict(batch)
    by_dtype: dict[torch.dtype, list[str]] = {}
    for k, v in batch.items():
        if not isinstance(v, torch.Tensor):
            continue
        if v.device.type == "cpu" and device.type != "cpu":
            by_dtype.setdefault(v.dtype, []).append(k)
        else:
            out[k] = v.to(device)  # already there (a no-op), or from one device to another
    for dtype, keys in by_dtype.items():
        parts = [batch[k].reshape(-1) for k in keys]
        buf = torch.empty(sum(p.numel() for p in parts), dtype=dtype, pin_memory=device.type == "cuda")
        torch.cat(parts, out=buf)
        moved = buf.to(device, non_blocking=True)
        for k, part in zip(keys, moved.split([p.numel() for p in parts]), strict=True):
            out[k] = part.view(batch[k].shape)
    return out


def host_tensor(values: Sequence, *, dtype: torch.dtype, device) -> torch.Tensor:
    """``torch.tensor(values, device=device)`` without the host waiting for the GPU (see ``to_device``).

    >>> host_tensor([1.0, 2.0], dtype=torch.float32, device="cpu").tolist()
    [1.0, 2.0]
    """
    device = torch.device(device)
    t = torch.tensor(values, dtype=dtype, pin_memory=device.type == "cuda")
    return t.to(device, non_blocking=True)
