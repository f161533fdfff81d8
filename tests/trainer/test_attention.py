"""Torch's varlen kernel as a transformers backend gives the block-mask SDPA loss (GQA, 1e-5, kernel
replaced by a per-segment reference on CPU), and "auto" resolves to the right kernel per device."""

import pytest
import torch
import torch.nn.functional as F

from trainer import attention
from trainer.attention import HF_VARLEN, register, resolve_attention, uses_varlen
from trainer.loss import supervised_token_losses

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def _segments(q, k, v, cu_q, cu_k, scale, gqa):
    assert torch.equal(cu_q, cu_k)
    outs = []
    for s, e in zip(cu_q[:-1].tolist(), cu_q[1:].tolist(), strict=True):
        qs, ks, vs = (t[s:e].transpose(0, 1)[None] for t in (q, k, v))
        o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=scale, enable_gqa=gqa)
        outs.append(o[0].transpose(0, 1))
    return torch.cat(outs)


def new_varlen(
    q, k, v, cu_q, cu_k, max_q, max_k, *, return_aux=None, scale=None, window_size=(-1, -1), enable_gqa=False
):
    """torch >= 2.11's signature: causal is window_size=(-1, 0)."""
    assert tuple(window_size) == (-1, 0) and return_aux is None
    assert max_q == max(torch.diff(cu_q).tolist())
    new_varlen.calls += 1
    return _segments(q, k, v, cu_q, cu_k, scale, enable_gqa)


def old_varlen(q, k, v, cu_q, cu_k, max_q, max_k, is_causal=False, return_aux=None, scale=None):
    """The older signature: is_causal=, no enable_gqa (K/V heads must be repeated by the caller)."""
    assert is_causal
    old_varlen.calls += 1
    return _segments(q, k, v, cu_q, cu_k, scale, False)


def _loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    tl = supervised_token_losses(model, batch)
    loss = tl.loss.sum() / tl.loss.numel()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if "layers.0." in n}
    return tl.loss.detach(), grads


@pytest.mark.parametrize("kernel", [new_varlen, old_varlen])
def test_varlen_backend_equals_block_mask_sdpa(tiny, packed, kernel, monkeypatch):
    import torch.nn.attention.varlen as tv

    assert tiny.config.num_key_value_heads < tiny.config.num_attention_heads  # GQA
    ref_loss, ref_grads = _loss_and_grads(tiny, packed)
    register()
    kernel.calls = 0
    monkeypatch.setattr(tv, "varlen_attn", kernel)
    tiny.set_attn_implementation(HF_VARLEN)
    assert uses_varlen(tiny)
    got_loss, got_grads = _loss_and_grads(tiny, packed)
    assert kernel.calls == tiny.config.num_hidden_layers  # the varlen path ran, once per layer
    torch.testing.assert_close(got_loss, ref_loss, atol=1e-5, rtol=0)
    for name, g in ref_grads.items():
        torch.testing.assert_close(got_grads[name], g, atol=1e-5, rtol=1e-4)


def test_varlen_backend_would_catch_a_cross_sample_kernel(tiny, packed, monkeypatch):
    """The equality above can fail: a kernel that ignores the boundaries (one causal segment) moves the loss."""
    import torch.nn.attention.varlen as tv

    ref = supervised_token_losses(tiny, packed).loss.detach()

    def one_segment(q, k, v, cu_q, cu_k, max_q, max_k, *, scale=None, window_size=(-1, -1), enable_gqa=False):
        whole = torch.tensor([0, q.shape[0]])
        return _segments(q, k, v, whole, whole, scale, enable_gqa)

    register()
    monkeypatch.setattr(tv, "varlen_attn", one_segment)
    tiny.set_attn_implementation(HF_VARLEN)
    got = supervised_token_losses(tiny, packed).loss.detach()
    assert (got - ref).abs().max() > 1e-3


def test_varlen_backend_needs_sequence_boundaries(tiny):
    register()
    tiny.set_attn_implementation(HF_VARLEN)
    with pytest.raises(ValueError, match="cu_seq_lens"):
        tiny(torch.tensor([[1, 2, 3]]))


def test_auto_is_sdpa_on_cpu():
    assert resolve_attention("auto", device=CPU, precision="bf16") == ("sdpa", [])
    assert resolve_attention("eager", device=CPU, precision="fp32") == ("eager", [])
    impl, warnings = resolve_attention("varlen", device=CPU, precision="bf16")
    assert impl == "sdpa" and "needs a CUDA device" in warnings[0]


@pytest.fixture
def fake_cuda(monkeypatch):
    """A pretend CUDA device: set which kernels exist with ``fake_cuda(flash=..., varlen=...)``."""

    def setup(*, flash: bool, varlen: bool):
        monkeypatch.setattr(attention, "flash_attn_available", lambda device: flash)
        monkeypatch.setattr(attention, "torch_varlen_available", lambda device: varlen)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA T4")

    return setup


@pytest.mark.parametrize(
    "requested, flash, varlen, precision, expected, warning",
    [
        ("auto", True, True, "bf16", "flash_attention_2", None),
        ("auto", False, True, "bf16", HF_VARLEN, None),
        ("auto", False, False, "bf16", "sdpa", "NVIDIA T4 has no torch varlen kernel"),
        ("auto", True, True, "fp32", "sdpa", "precision=fp32"),
        ("flash_attention_2", True, True, "bf16", "flash_attention_2", None),
        ("flash_attention_2", False, True, "bf16", HF_VARLEN, "flash_attn is not installed"),
        ("flash_attention_2", False, False, "bf16", "sdpa", "flash_attn is not installed"),
        ("varlen", True, True, "bf16", HF_VARLEN, None),
        ("varlen", False, False, "fp16", "sdpa", "O(L^2)"),
        ("sdpa", True, True, "bf16", "sdpa", None),
    ],
)
def test_resolution_on_cuda(fake_cuda, requested, flash, varlen, precision, expected, warning):
    fake_cuda(flash=flash, varlen=varlen)
    impl, warnings = resolve_attention(requested, device=CUDA, precision=precision)
    assert impl == expected
    if warning is None:
        assert warnings == []
    else:
        assert len(warnings) >= 1 and any(warning in w for w in warnings), warnings


def test_auto_with_dropout_skips_torch_varlen(fake_cuda):
    fake_cuda(flash=False, varlen=True)
    impl, warnings = resolve_attention("auto", device=CUDA, precision="bf16", dropout=0.1)
    assert impl == "sdpa" and "train.dropout" in warnings[0]


@pytest.mark.parametrize("capability, expected", [((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_torch_varlen_needs_ampere(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert attention.torch_varlen_available(CUDA) is expected
    assert attention.torch_varlen_available(CPU) is False


def test_flash_attn_must_import_not_just_exist(monkeypatch):
    """A flash-attn wheel built for another torch is found on disk but fails to load: not available."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    real = attention.importlib.import_module

    def broken(name, *a):
        if name == "flash_attn":
            raise OSError("flash_attn_2_cuda.so: undefined symbol")
        return real(name, *a)

    monkeypatch.setattr(attention.importlib, "import_module", broken)
    assert attention.flash_attn_available(CUDA) is False
    assert attention.torch_varlen_available(CUDA) is True
