"""Packed, supervised-only, normalised losses equal straightforward unpacked recomputations (fp32, 1e-5)."""

import pytest
import torch
import torch.nn.functional as F

from trainer.attention import uses_varlen
from trainer.collate import collate_packed, collate_padded
from trainer.loss import (
    _cu_seqlens,
    block_causal_mask,
    count_terms,
    full_logits_token_losses,
    merge_counts,
    normalised_loss,
    supervised_token_losses,
    task_key,
)
from trainer.packing import pack_bfd

TOL = 1e-5


def reference_losses(model, sample) -> torch.Tensor:
    """One sample alone through the plain HF forward (no mask, no position_ids), CE at its targets."""
    ids = torch.tensor([sample.input_ids])
    logits = model(ids).logits[0].float()
    targets = [t for t in range(len(sample) - 1) if sample.supervised[t + 1]]
    return F.cross_entropy(logits[targets], ids[0, [t + 1 for t in targets]], reduction="none")


def per_sample(tl, batch) -> dict[int, torch.Tensor]:
    """Token losses grouped by the sample's dataset index."""
    out = {}
    for k, s in enumerate(batch["samples"]):
        out[s["index"]] = tl.loss[tl.sample_idx == k]
    return out


def packed_batch(samples, max_len=512):
    bins = pack_bfd([len(s) for s in samples], max_len)
    return collate_packed([[samples[i] for i in b] for b in bins], pad_id=2)


def test_packed_equals_unpacked_per_sample(tiny, pclue_tokenized):
    samples = pclue_tokenized[:24]
    batch = packed_batch(samples)
    assert len(batch["seq_lens"]) < len(samples) / 2  # really packed: several samples per row
    with torch.no_grad():
        got = per_sample(supervised_token_losses(tiny, batch), batch)
        for s in samples:
            ref = reference_losses(tiny, s)
            assert got[s.index].shape == ref.shape and ref.numel() > 0
            torch.testing.assert_close(got[s.index], ref, atol=TOL, rtol=0)


def test_attention_crossing_samples_would_be_caught(tiny, pclue_tokenized):
    """The exactness test above can fail: without the block-diagonal mask the numbers move."""
    batch = packed_batch(pclue_tokenized[:24])
    with torch.no_grad():
        good = supervised_token_losses(tiny, batch).loss
        leaky = dict(
            batch, sample_idx=torch.where(batch["sample_idx"] >= 0, 0, -1)
        )  # one causal block per row
        bad = supervised_token_losses(tiny, leaky).loss
    assert (good - bad).abs().max() > 1e-3


def test_block_causal_mask():
    m = block_causal_mask(torch.tensor([[0, 0, 1, 1, -1]]))[0, 0]
    assert m.tolist()[3] == [False, False, True, True, False]
    assert m.diagonal().all() and not m.triu(1).any()


@pytest.mark.parametrize("chunk_size", [4096, 7])
def test_supervised_only_equals_full_logits(tiny, pclue_tokenized, chunk_size):
    batch = packed_batch(pclue_tokenized[:8])
    tl = supervised_token_losses(tiny, batch, chunk_size=chunk_size)
    assert tl.loss.numel() > chunk_size or chunk_size == 4096  # the chunked path really chunks
    # the token-mean loss the loop optimises (sums over chunks only change fp32 summation order)
    tl.loss.mean().backward()
    grads = {n: p.grad.clone() for n, p in tiny.named_parameters()}
    tiny.zero_grad()
    ref = full_logits_token_losses(tiny, batch)
    ref.loss.mean().backward()
    torch.testing.assert_close(tl.loss, ref.loss, atol=TOL, rtol=0)
    assert torch.equal(tl.sample_idx, ref.sample_idx) and torch.equal(tl.is_special, ref.is_special)
    for n, p in tiny.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, atol=TOL, rtol=0)


def reference_objective(model, samples, mode, task_level=2) -> float:
    """The normalised loss recomputed the obvious way: one sample at a time, plain Python averages."""
    with torch.no_grad():
        losses = {s.index: reference_losses(model, s).tolist() for s in samples}
    if mode == "token":
        flat = [x for v in losses.values() for x in v]
        return sum(flat) / len(flat)
    if mode == "sample":
        return sum(sum(v) / len(v) for v in losses.values()) / len(losses)
    tasks: dict[str, list[float]] = {}
    for s in samples:
        key = task_key({"task_l1": s.task_l1, "task_l2": s.task_l2}, task_level)
        tasks.setdefault(key, []).extend(losses[s.index])
    return sum(sum(v) / len(v) for v in tasks.values()) / len(tasks)


def run_step(model, micro_batches, mode, task_level=2):
    """What the loop does: global counts first, then backward on each micro-batch's term."""
    counts = merge_counts(count_terms(mb, mode, task_level=task_level) for mb in micro_batches)
    total = 0.0
    model.zero_grad()
    for mb in micro_batches:
        loss = normalised_loss(
            supervised_token_losses(model, mb), mb, mode=mode, global_counts=counts, task_level=task_level
        )
        loss.backward()
        total += loss.item()
    return total, {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize(("mode", "task_level"), [("token", 2), ("sample", 2), ("task", 2), ("task", 1)])
def test_modes_match_reference_and_accumulation(tiny, pclue_tokenized, mode, task_level):
    samples = pclue_tokenized[:8]
    assert len({s.task_l2 for s in samples}) > 1
    whole, g_whole = run_step(tiny, [packed_batch(samples)], mode, task_level)
    assert whole == pytest.approx(reference_objective(tiny, samples, mode, task_level), abs=TOL)
    # 4 micro-batches of 2 samples: same loss and gradients as one batch of 8
    micro = [collate_padded(samples[i : i + 2], pad_id=2) for i in range(0, 8, 2)]
    split, g_split = run_step(tiny, micro, mode, task_level)
    assert split == pytest.approx(whole, abs=TOL)
    for n in g_whole:
        torch.testing.assert_close(g_split[n], g_whole[n], atol=TOL, rtol=0)


def test_naive_micro_batch_mean_differs(tiny, pclue_tokenized):
    """The 2024 accumulation bug, reproduced: a mean of per-micro-batch means is not the token mean."""
    samples = pclue_tokenized[:8]
    micro = [collate_padded(samples[i : i + 2], pad_id=2) for i in range(0, 8, 2)]
    with torch.no_grad():
        naive = sum(supervised_token_losses(tiny, mb).loss.mean().item() for mb in micro) / len(micro)
    assert abs(naive - reference_objective(tiny, samples, "token")) > 1e-4


def test_count_terms_and_merge():
    batch = {
        "samples": [
            {"task_l1": "a", "task_l2": "x", "n_supervised": 2},
            {"task_l1": "a", "task_l2": "y", "n_supervised": 0},
            {"task_l1": "b", "task_l2": "", "n_supervised": 3},
        ]
    }
    assert count_terms(batch, "token") == {"tokens": 5.0}
    assert count_terms(batch, "sample") == {"samples": 2.0}
    assert count_terms(batch, "task", task_level=1) == {"task:a": 2.0, "task:b": 3.0}
    merged = merge_counts([count_terms(batch, "task"), {"task:a/x": 1.0, "task:c": 1.0, "tasks": 99.0}])
    assert merged == {"task:a/x": 3.0, "task:b": 3.0, "task:c": 1.0, "tasks": 3.0}
    with pytest.raises(ValueError):
        count_terms(batch, "bogus")


def test_batch_without_targets_gives_zero_with_grad(tiny, pclue_tokenized):
    batch = collate_padded(pclue_tokenized[:1], pad_id=2)
    batch["shift_labels"][:] = -100
    tl = supervised_token_losses(tiny, batch)
    loss = normalised_loss(tl, batch, mode="token", global_counts={"tokens": 10.0})
    assert tl.loss.numel() == 0 and loss.item() == 0.0 and loss.requires_grad


def test_peft_wrapped_model(tiny, pclue_tokenized):
    from peft import LoraConfig, get_peft_model

    batch = packed_batch(pclue_tokenized[:6])
    with torch.no_grad():
        base = supervised_token_losses(tiny, batch).loss
    peft_model = get_peft_model(tiny, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    tl = supervised_token_losses(peft_model, batch)
    torch.testing.assert_close(tl.loss, base, atol=TOL, rtol=0)  # LoRA B starts at zero
    tl.loss.sum().backward()
    lora_grads = [p.grad for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert lora_grads and all(g is not None and g.abs().sum() > 0 for g in lora_grads)


def test_flash_path_is_guarded_and_cu_seqlens(tiny):
    assert not uses_varlen(tiny)
    cu, max_len = _cu_seqlens({"seq_lens": [[3, 2], [4]]}, 6, "cpu")
    assert cu.tolist() == [0, 3, 5, 6, 10, 12] and max_len == 4
