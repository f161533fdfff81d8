"""On one CUDA GPU: decoder layers compiled over torch's varlen kernel give the eager bf16 losses and
gradients, with no graph break, and packed batches of new shapes reuse the compiled code instead of
compiling again (past dynamo's recompile limit a layer would silently run eager)."""

import pytest
import torch
from gpu_models import VOCAB, random_samples, small_model

from trainer.attention import HF_VARLEN, register
from trainer.collate import collate_packed
from trainer.compiling import compile_layers
from trainer.loss import supervised_token_losses
from trainer.packing import pack_bfd

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def _batch(seed: int, n: int) -> dict:
    samples = random_samples(n, seed)
    bins = pack_bfd([len(s) for s in samples], 1024)
    batch = collate_packed([[samples[i] for i in b] for b in bins], pad_id=0)
    return {k: v.to(CUDA) if torch.is_tensor(v) else v for k, v in batch.items()}


def _step(model, batch):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        tl = supervised_token_losses(model, batch)
        (tl.loss.sum() / tl.loss.numel()).backward()
    return tl.loss.detach().float(), {n: p.grad.float().clone() for n, p in model.named_parameters()}


def test_compiled_varlen_layers_equal_eager_and_compile_once():
    import torch._dynamo

    register()
    torch.manual_seed(0)
    model = small_model("qwen2", vocab=VOCAB).to(CUDA)
    model.set_attn_implementation(HF_VARLEN)
    batches = [_batch(seed, n) for seed, n in ((1, 24), (2, 17), (3, 30), (4, 21))]
    assert len({b["input_ids"].shape for b in batches}) > 2  # shapes vary, as packed batches do
    eager = [_step(model, b) for b in batches]
    torch._dynamo.reset()
    counters = torch._dynamo.utils.counters
    counters.clear()
    compile_layers(model)
    frames = []
    compiled = []
    for b in batches:
        compiled.append(_step(model, b))
        frames.append(counters["stats"]["unique_graphs"])
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert frames[0] >= 1
    assert frames[-1] == frames[1], (
        f"graphs compiled after each batch: {frames}"
    )  # symbolic after the 2nd shape
    for (ref_loss, ref_grads), (got_loss, got_grads) in zip(eager, compiled, strict=True):
        assert ((got_loss - ref_loss).abs().max() / ref_loss.abs().mean()).item() < 2e-2
        for name, g in ref_grads.items():
            err = ((got_grads[name] - g).norm() / g.norm().clamp_min(1e-12)).item()
            assert err < 5e-2, (name, err)
