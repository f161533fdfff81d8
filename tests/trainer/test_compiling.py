"""Compiled decoder layers give the eager loss and gradients (fp32, CPU inductor), on the varlen path with
no graph break and through a whole run on the block-mask path; "auto" compiles only on CUDA without ZeRO-3."""

import pytest
import torch
import torch.nn.functional as F

from trainer.attention import HF_VARLEN, register
from trainer.compiling import compile_layers, decoder_layers, no_layers_warning, resolve_compile
from trainer.config import ConfigError, tiny_debug
from trainer.loss import supervised_token_losses

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    ("requested", "device", "zero_stage", "expected"),
    [
        ("auto", CUDA, None, True),
        ("auto", CUDA, 2, True),
        ("auto", CUDA, 3, False),  # ZeRO-3's gathering hooks would be skipped
        ("auto", CPU, None, False),
        ("on", CPU, None, True),
        ("off", CUDA, None, False),
    ],
)
def test_resolve_compile(requested, device, zero_stage, expected):
    assert resolve_compile(requested, device=device, zero_stage=zero_stage) is expected


def test_compile_on_with_zero3_is_refused():
    cfg = tiny_debug()
    cfg.model.compile = "on"
    cfg.deepspeed.enabled, cfg.deepspeed.zero_stage = True, 3
    with pytest.raises(ConfigError, match="model.compile=on does not work with deepspeed.zero_stage=3"):
        cfg.validate(check_files=False)
    cfg.model.compile = "sometimes"
    cfg.deepspeed.enabled = False
    with pytest.raises(ConfigError, match="model.compile='sometimes' is not one of"):
        cfg.validate(check_files=False)


def test_a_model_without_decoder_layers_stays_eager_and_says_so():
    class NoLayers(torch.nn.Module):
        def get_decoder(self):
            return torch.nn.Linear(2, 2)

    assert decoder_layers(NoLayers()) is None
    assert compile_layers(NoLayers()) == 0
    assert (
        no_layers_warning(NoLayers())
        == "model.compile: NoLayers has no decoder.layers to compile; it runs eager"
    )


def _loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    tl = supervised_token_losses(model, batch)
    (tl.loss.sum() / tl.loss.numel()).backward()
    return tl.loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def traceable_varlen(
    q, k, v, cu_q, cu_k, max_q, max_k, *, scale=None, window_size=(-1, -1), enable_gqa=False
):
    """A per-segment causal reference with no host reads (segments from ``searchsorted``), so the compiled
    layer traces through it the way it traces through torch's varlen custom op on a GPU."""
    assert tuple(window_size) == (-1, 0)
    pos = torch.arange(q.shape[0])
    seg = torch.searchsorted(cu_q[1:], pos, right=True)
    mask = (seg[:, None] == seg[None, :]) & (pos[None, :] <= pos[:, None])
    out = F.scaled_dot_product_attention(
        q.transpose(0, 1),
        k.transpose(0, 1),
        v.transpose(0, 1),
        attn_mask=mask,
        scale=scale,
        enable_gqa=enable_gqa,
    )
    return out.transpose(0, 1)


def test_compiled_varlen_layers_equal_eager(tiny, packed, monkeypatch):
    """The varlen path, which GPUs take; the block-mask path is compiled in the run test below."""
    import torch._dynamo
    import torch.nn.attention.varlen as tv

    register()
    monkeypatch.setattr(tv, "varlen_attn", traceable_varlen)
    tiny.set_attn_implementation(HF_VARLEN)
    batches = [packed]  # one shape: the GPU suite checks that new shapes reuse the code
    eager = [_loss_and_grads(tiny, b) for b in batches]
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    assert compile_layers(tiny) == tiny.config.num_hidden_layers
    assert all(layer._compiled_call_impl is not None for layer in decoder_layers(tiny))
    compiled = [_loss_and_grads(tiny, b) for b in batches]
    assert not torch._dynamo.utils.counters["graph_break"], dict(torch._dynamo.utils.counters["graph_break"])
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # dynamo really compiled something
    for (ref_loss, ref_grads), (got_loss, got_grads) in zip(eager, compiled, strict=True):
        torch.testing.assert_close(got_loss, ref_loss, atol=1e-5, rtol=0)
        assert got_grads.keys() == ref_grads.keys()
        for name, g in ref_grads.items():
            torch.testing.assert_close(got_grads[name], g, atol=1e-5, rtol=1e-4)
    # compiled in place: the checkpoint keys stay the model's own
    assert not any("_orig_mod" in k for k in tiny.state_dict())


@pytest.fixture(autouse=True)
def _dynamo_config():
    """compile_layers sets dynamo's suppress_errors for the process; put it back after each test."""
    import torch._dynamo

    with torch._dynamo.config.patch(suppress_errors=torch._dynamo.config.suppress_errors):
        yield


def _failing_backend(gm, example_inputs):
    raise RuntimeError("the compiler broke")


def test_a_run_with_compiled_layers_trains_and_saves_like_an_eager_one(tmp_path, monkeypatch):
    """Through trainer.train.run: the start event says how many layers were compiled, the losses equal the
    eager run's, in training and eval, and the saved checkpoint holds the model's own keys and the same weights. A compiler that
    fails leaves the run going eager, with a warning that says so."""
    import torch._dynamo
    from safetensors.torch import load_file
    from tiny_run import make_tiny_model_dir, pclue_messages, tiny_config

    from trainer import compiling
    from trainer.metrics import read_events
    from trainer.train import run

    model, data = make_tiny_model_dir(tmp_path / "model"), pclue_messages(tmp_path / "data.jsonl", 24)
    out: dict[str, dict] = {}
    for mode in ("off", "on", "broken"):
        cfg = tiny_config(tmp_path / mode, model, data, per_device_batch=2, grad_accum=2, max_steps=3)
        cfg.model.compile = "off" if mode == "off" else "on"
        cfg.checkpoint.every_n_steps = 3
        cfg.data.eval_fraction = 0.2  # eval runs the compiled layers in no-grad mode too
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        if mode == "broken":
            monkeypatch.setattr(compiling, "BACKEND", _failing_backend)
        out[mode] = run(cfg)
        events = read_events(tmp_path / mode / "run" / "metrics.jsonl")
        assert events[0]["compiled_layers"] == (0 if mode == "off" else 2)
        warned = [e for e in events if e["type"] == "warning" and e["kind"] == "compile"]
        assert len(warned) == (1 if mode == "broken" else 0)
        if warned:
            assert "torch.compile failed" in warned[0]["message"] and warned[0]["step"] == 1
    assert out["off"]["evals"] and out["on"]["evals"].keys() == out["off"]["evals"].keys()
    for step, loss in out["off"]["evals"].items():
        assert out["on"]["evals"][step] == pytest.approx(loss, abs=1e-5)
    assert sorted(out["broken"]["losses"]) == [1, 2, 3]
    for step, loss in out["off"]["losses"].items():
        assert out["broken"]["losses"][step] == pytest.approx(loss, abs=1e-6)
    assert sorted(out["on"]["losses"]) == [1, 2, 3]
    for step, loss in out["off"]["losses"].items():
        assert out["on"]["losses"][step] == pytest.approx(loss, abs=1e-5)
    weights = {
        m: load_file(next((tmp_path / m / "run" / "checkpoints" / "step-00000003").glob("*.safetensors")))
        for m in out
    }
    assert weights["on"].keys() == weights["off"].keys()
    for k, w in weights["off"].items():
        torch.testing.assert_close(weights["on"][k], w, atol=1e-5, rtol=1e-4)


def test_a_run_whose_model_has_no_decoder_layers_warns_at_start(tmp_path, monkeypatch):
    from tiny_run import make_tiny_model_dir, pclue_messages, tiny_config

    from trainer import train
    from trainer.metrics import read_events

    monkeypatch.setattr(train, "compile_layers", lambda model: 0)  # as for a model without decoder.layers
    cfg = tiny_config(
        tmp_path, make_tiny_model_dir(tmp_path / "model"), pclue_messages(tmp_path / "d.jsonl", 8)
    )
    cfg.model.compile, cfg.train.max_steps = "on", 1
    train.run(cfg)
    events = read_events(tmp_path / "run" / "metrics.jsonl")
    assert events[0]["compiled_layers"] == 0
    warned = [e["message"] for e in events if e["type"] == "warning" and e["kind"] == "compile"]
    assert warned == ["model.compile: LlamaForCausalLM has no decoder.layers to compile; it runs eager"]
