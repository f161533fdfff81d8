"""Per-token losses on packed batches, and their normalisation across micro-batches and ranks.

Three decisions, each worth the code it costs:

1. **Output layer only where there is a label.** With a 49k vocabulary the logits are the largest tensor
   of the step, yet in SFT most positions are prompt. The backbone runs on every position, but the
   output projection and cross-entropy run only at supervised positions, in chunks (each chunk is
   recomputed in backward rather than stored, as fused linear cross-entropy kernels do on GPU).
   Measured on a 2-core CPU: 2x the tokens/s of full logits.
2. **Attention never crosses samples.** A bin holds several samples. On CPU (and any non-flash
   attention) a block-diagonal causal boolean mask ``[B, 1, L, L]`` goes to SDPA; transformers returns
   a 4D mask as-is (``masking_utils._preprocess_mask_arguments``). With a variable-length kernel on CUDA
   (flash-attn's, or torch's own ``varlen_attn``: see ``trainer.attention``) the batch is flattened to
   one row and the kernel gets ``cu_seq_lens`` (linear cost, no mask).
3. **Normalise by global counts.** See ``normalised_loss``.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from trainer.attention import uses_varlen
from trainer.collate import IGNORE, cu_seq_lens, host_tensor, supervised_index, to_device

Mode = Literal["token", "sample", "task"]


class TokenLosses(NamedTuple):
    """Unreduced cross-entropy of every supervised token of a batch (row-major order).

    A tuple so that a DeepSpeed engine returning it sees its tensors (the engine hooks the outputs it can
    walk: tensors, tuples, lists, dicts) and starts its backward prologue on them.
    """

    loss: torch.Tensor  # fp32 [n], with grad
    sample_idx: torch.Tensor  # long [n], index into batch["samples"]
    is_special: torch.Tensor  # bool [n], the target is a special/template token


def unwrap_model(model):
    """The plain HF CausalLM inside DeepSpeed engines, DDP and peft wrappers.

    Calling submodules of the unwrapped model keeps peft's LoRA layers active (they are injected
    in place) and ZeRO-3's parameter gathering (its hooks sit on every submodule). A DeepSpeed engine
    still reduces gradients in ``engine.backward``. Plain DDP does not see a forward that bypasses it:
    there, reduce gradients by hand (or wrap this function's caller in DDP).
    """
    for _ in range(8):
        if hasattr(model, "get_base_model"):  # peft.PeftModel
            model = model.get_base_model()
        elif isinstance(getattr(model, "module", None), torch.nn.Module):  # DeepSpeedEngine, DDP
            model = model.module
        else:
            return model
    return model


def block_causal_mask(sample_idx: torch.Tensor) -> torch.Tensor:
    """Boolean ``[B, 1, L, L]`` mask, True where query t may attend key s: same sample and s <= t.

    Padding (``sample_idx == -1``) attends only to padding, so no row is empty (an all-False row
    makes SDPA return NaN).

    >>> block_causal_mask(torch.tensor([[0, 0, 1, -1]]))[0, 0].int().tolist()
    [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    """
    L = sample_idx.shape[1]
    same = sample_idx[:, :, None] == sample_idx[:, None, :]
    causal = torch.ones(L, L, dtype=torch.bool, device=sample_idx.device).tril()
    return (same & causal)[:, None, :, :]


def _cu_seqlens(batch: dict, L: int, device) -> tuple[torch.Tensor, int]:
    """The batch's precomputed sequence starts (``trainer.plan.build_batch``), or ones computed now."""
    if "cu_seq_lens" in batch:
        return batch["cu_seq_lens"], batch["max_seq_len"]
    cu, longest = cu_seq_lens(batch["seq_lens"], L)
    return cu.to(device), longest


def backbone_hidden_states(model, batch: dict) -> torch.Tensor:
    """Last hidden states ``[B, L, H]`` of the backbone, with attention kept inside each sample."""
    hf = unwrap_model(model)
    backbone = hf.get_decoder()
    input_ids, position_ids = batch["input_ids"], batch["position_ids"]
    B, L = input_ids.shape
    if uses_varlen(hf):
        # A varlen kernel (flash-attn, or torch's through trainer.attention): one flattened row,
        # explicit sequence boundaries, no mask.
        cu, max_len = _cu_seqlens(batch, L, input_ids.device)
        out = backbone(
            input_ids=input_ids.reshape(1, B * L),
            position_ids=position_ids.reshape(1, B * L),
            attention_mask=None,
            use_cache=False,
            cu_seq_lens_q=cu,
            cu_seq_lens_k=cu,
            max_length_q=max_len,
            max_length_k=max_len,
        )
        return out[0].reshape(B, L, -1)
    mask = block_causal_mask(batch["sample_idx"].to(input_ids.device))
    out = backbone(input_ids=input_ids, position_ids=position_ids, attention_mask=mask, use_cache=False)
    return out[0]


def _head_ce(head, softcap, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = head(hidden).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return F.cross_entropy(logits, targets, reduction="none")


def supervised_token_losses(model, batch: dict, *, chunk_size: int = 4096) -> TokenLosses:
    """Cross-entropy at supervised positions only: backbone everywhere, output layer where labelled.

    Works for plain HF CausalLM models, peft-wrapped ones and DeepSpeed engines (see ``unwrap_model``).
    A batch from ``trainer.plan.build_batch`` carries its gather indices (``supervised_index``); for any
    other collated batch they are computed here, which reads the labels on the host.
    """
    hf = unwrap_model(model)
    hidden = backbone_hidden_states(model, batch)
    idx = batch if "sup_pos" in batch else to_device(supervised_index(batch), hidden.device)
    # gathered with host-made indices, not a boolean mask, so the host never reads how many there are
    h = hidden.reshape(-1, hidden.shape[-1]).index_select(0, idx["sup_pos"])  # [n, H], row-major
    targets = idx["sup_targets"]
    head = hf.get_output_embeddings()
    softcap = getattr(hf.config, "final_logit_softcapping", None)
    chunks = agreed_chunk_count(h.shape[0], chunk_size, h.device)
    if chunks == 1:
        loss = _head_ce(head, softcap, h, targets)
    else:
        parts = []
        for s in range(0, chunks * chunk_size, chunk_size):
            # past this rank's own tokens the slice is empty: the head still runs, so its ZeRO-3 gather
            # (forward, and the recompute in backward) happens on every rank, and adds no loss
            hc, tc = h[s : s + chunk_size], targets[s : s + chunk_size]
            if torch.is_grad_enabled():
                # recompute this chunk's logits in backward instead of keeping n x vocab floats alive
                parts.append(checkpoint(_head_ce, head, softcap, hc, tc, use_reentrant=False))
            else:
                parts.append(_head_ce(head, softcap, hc, tc))
        loss = torch.cat(parts)
    return TokenLosses(loss=loss, sample_idx=idx["sup_sample_idx"], is_special=idx["sup_special"])


def agreed_chunk_count(n: int, chunk_size: int, device: torch.device) -> int:
    """How many output-layer calls this batch makes: the most any rank needs, at least one.

    Under ZeRO-3 every call of the output layer all-gathers its weight, a collective: if ranks made as
    many calls as their own supervised tokens need, a rank with more tokens would wait forever for the
    others. So ranks agree on the maximum (one small all-reduce) and pad with empty chunks. Without
    ZeRO-3 the head's weight is local, so ranks skip that all-reduce and the host read it costs.
    """
    import torch.distributed as dist
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    local = max(1, math.ceil(n / chunk_size))
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return local
    if not is_deepspeed_zero3_enabled():  # set by the HfDeepSpeedConfig the run holds under ZeRO-3
        return local
    t = torch.tensor([local], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


class SupervisedLoss(torch.nn.Module):
    """The model and its supervised-token loss as one module, which the DeepSpeed engine wraps.

    DeepSpeed's forward machinery (ZeRO-3 prefetch, the hooks on the outputs that start its backward
    prologue and set the gradient-accumulation boundary) runs only when the ENGINE is called; calling the
    model's submodules past it skipped them. The HF (or peft) model is ``self.module``, so ``unwrap_model``
    finds it and its state-dict keys are the model's own behind a ``module.`` prefix.
    """

    def __init__(self, module: torch.nn.Module, *, chunk_size: int):
        super().__init__()
        self.module = module
        self.chunk_size = chunk_size

    def forward(self, batch: dict) -> TokenLosses:
        return supervised_token_losses(self.module, batch, chunk_size=self.chunk_size)


def full_logits_token_losses(model, batch: dict) -> TokenLosses:
    """Reference path: logits at every position, then CE with ``ignore_index``. For tests and benches."""
    hf = unwrap_model(model)
    hidden = backbone_hidden_states(model, batch)
    logits = hf.get_output_embeddings()(hidden).float()
    labels = batch["shift_labels"].to(hidden.device)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    where = (labels != IGNORE).reshape(-1)
    return TokenLosses(
        ce[where], batch["sample_idx"].reshape(-1)[where], batch["target_is_special"].reshape(-1)[where]
    )


def task_key(sample: dict, task_level: int = 2) -> str:
    """The task_type a sample counts under: ``l1`` at level 1, ``l1/l2`` (or ``l1``) at level 2."""
    l1, l2 = sample.get("task_l1", ""), sample.get("task_l2", "")
    return f"{l1}/{l2}" if task_level == 2 and l2 else l1


def count_terms(batch: dict, mode: Mode, *, task_level: int = 2) -> dict[str, float]:
    """This micro-batch's share of the normaliser; sum these over micro-batches and ranks first.

    token: ``{"tokens": n}``; sample: ``{"samples": samples with at least one target}``;
    task: ``{"task:<key>": tokens of that task}``. The number of tasks is not additive (two
    micro-batches may hold the same task), so ``merge_counts`` derives ``"tasks"`` after summing.

    >>> batch = {"samples": [{"task_l1": "a", "task_l2": "x", "n_supervised": 2},
    ...                      {"task_l1": "a", "task_l2": "", "n_supervised": 3}]}
    >>> count_terms(batch, "token"), count_terms(batch, "task")
    ({'tokens': 5.0}, {'task:a/x': 2.0, 'task:a': 3.0})
    """
    samples = batch["samples"]
    if mode == "token":
        return {"tokens": float(sum(s["n_supervised"] for s in samples))}
    if mode == "sample":
        return {"samples": float(sum(1 for s in samples if s["n_supervised"] > 0))}
    if mode == "task":
        out: dict[str, float] = {}
        for s in samples:
            if s["n_supervised"]:
                k = "task:" + task_key(s, task_level)
                out[k] = out.get(k, 0.0) + s["n_supervised"]
        return out
    raise ValueError(f"unknown loss normalisation mode {mode!r}")


def merge_counts(counts) -> dict[str, float]:
    """Sum ``count_terms`` dicts (micro-batches, or the gathered dicts of all ranks); add ``"tasks"``.

    >>> merge_counts([{"task:a": 2.0}, {"task:a": 1.0, "task:b": 4.0}])
    {'task:a': 3.0, 'task:b': 4.0, 'tasks': 2.0}
    """
    total: dict[str, float] = {}
    for c in counts:
        for k, v in c.items():
            if k != "tasks":
                total[k] = total.get(k, 0.0) + float(v)
    if any(k.startswith("task:") for k in total):
        total["tasks"] = float(sum(1 for k, v in total.items() if k.startswith("task:") and v > 0))
    return total


def global_counts(local: dict[str, float]) -> dict[str, float]:
    """Merge a rank's summed counts with every other rank's (``all_gather_object``: keys differ by rank)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return merge_counts([local])
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local)
    return merge_counts(gathered)


def normalised_loss(
    tl: TokenLosses, batch: dict, *, mode: Mode, global_counts: dict, task_level: int = 2
) -> torch.Tensor:
    """This micro-batch's term of the global loss: the SUM over all micro-batches of all ranks is the loss.

    Why global counts: in 2024 transformers' gradient accumulation averaged each micro-batch's loss
    over its own tokens, then averaged the micro-batch means, so a micro-batch with 3 supervised tokens
    weighed as much as one with 3,000 and the result depended on how the batch happened to be split
    (the loss of accumulation 4 x batch 2 did not match batch 8). Here every term is divided by
    counts summed over ALL micro-batches of the step and ALL ranks (``merge_counts``/``global_counts``)
    before any backward, so any split of the same global batch gives the same loss and gradients.

    - token: ``sum(loss) / global tokens``
    - sample: ``sum over samples of (mean token loss of the sample) / global samples``
    - task: ``sum over tasks of (task token-loss sum / global task tokens) / global number of tasks``

    The loop calls ``backward`` on each term as is. DDP and DeepSpeed AVERAGE gradients over ranks,
    i.e. divide the sum by world_size: multiply each term by ``world_size`` before backward to get
    the global loss's gradient (and call ``engine.backward(loss, scale_wrt_gas=False)`` with
    DeepSpeed, which otherwise also divides by the accumulation steps).
    """
    if tl.loss.numel() == 0:
        return tl.loss.sum()  # zero with grad_fn: this rank still joins the gradient reduction
    if mode == "token":
        return tl.loss.sum() / global_counts["tokens"]
    samples = batch["samples"]
    n_samples = len(samples)
    per_sample = torch.zeros(n_samples, dtype=tl.loss.dtype, device=tl.loss.device)
    per_sample = per_sample.index_add(0, tl.sample_idx, tl.loss)
    if mode == "sample":
        n_tok = host_tensor(
            [max(s["n_supervised"], 1) for s in samples], dtype=tl.loss.dtype, device=tl.loss.device
        )
        return (per_sample / n_tok).sum() / global_counts["samples"]
    if mode == "task":
        denom = host_tensor(
            [global_counts.get("task:" + task_key(s, task_level), 1.0) or 1.0 for s in samples],
            dtype=tl.loss.dtype,
            device=tl.loss.device,
        )
        # per task: (sum of its tokens' losses) / (its global tokens), i.e. distribute per sample
        return (per_sample / denom).sum() / global_counts["tasks"]
    raise ValueError(f"unknown loss normalisation mode {mode!r}")
