"""DeepSpeed through its engine: ZeRO-2/3 with CPU-offloaded optimizer match the plain path, ZeRO-3 loads partitioned,
saves consolidated weights and survives ranks with unequal output-layer chunks; the generated config's dtype rules."""

import json

import pytest
import torch
from tiny_run import make_tiny_model_dir, tiny_config, torchrun

from trainer.checkpoint import latest_checkpoint
from trainer.config import ConfigError, tiny_debug
from trainer.distributed import deepspeed_config
from trainer.loss import SupervisedLoss, TokenLosses, agreed_chunk_count, supervised_token_losses
from trainer.train import run


def _ds_config(precision: str, stage: int):
    cfg = tiny_debug("x.jsonl", "out")
    cfg.train.precision = precision
    cfg.deepspeed.enabled, cfg.deepspeed.zero_stage = True, stage
    return cfg


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_bf16_accumulates_gradients_in_fp32(stage):
    ds = deepspeed_config(_ds_config("bf16", stage), world=2)
    assert ds["data_types"] == {"grad_accum_dtype": "fp32"}


def test_grad_accum_dtype_left_out_where_deepspeed_rejects_or_needs_none():
    # stage 0 raises "unsupported mix" for bf16 model + fp32 accumulation; fp32 runs accumulate in fp32
    assert "data_types" not in deepspeed_config(_ds_config("bf16", 0), world=2)
    assert "data_types" not in deepspeed_config(_ds_config("fp32", 3), world=2)


def test_fp16_with_zero_stage_0_is_refused():
    cfg = _ds_config("fp16", 0)
    with pytest.raises(ConfigError, match=r"fp16 needs deepspeed.zero_stage>=1"):
        cfg.validate(check_files=False)
    _ds_config("fp16", 1).validate(check_files=False)


def _batch() -> dict:
    """One row of 12 tokens, the last 7 supervised."""
    torch.manual_seed(0)
    ids = torch.randint(0, 500, (1, 12))
    labels = ids.clone()
    labels[:, :5] = -100
    return {
        "input_ids": ids,
        "position_ids": torch.arange(12)[None],
        "sample_idx": torch.zeros(1, 12, dtype=torch.long),
        "shift_labels": labels,
        "target_is_special": torch.zeros(1, 12, dtype=torch.bool),
    }


def test_supervised_loss_module_is_the_loss_path(tiny):
    """What the engine calls gives the same per-token losses as the function, as a tuple it can hook."""
    batch = _batch()
    out = SupervisedLoss(tiny, chunk_size=3)(batch)
    ref = supervised_token_losses(tiny, batch, chunk_size=64)
    assert isinstance(out, tuple) and isinstance(out, TokenLosses)
    assert out.loss.shape == (7,) and torch.allclose(out.loss, ref.loss, atol=1e-6)


def test_chunk_count_without_a_process_group_is_the_local_one():
    assert [agreed_chunk_count(n, 4, torch.device("cpu")) for n in (0, 1, 4, 5, 9)] == [1, 1, 1, 2, 3]


def test_padding_chunks_change_neither_loss_nor_gradients(tiny, monkeypatch):
    """The empty chunks a rank adds to match another rank's count call the head and contribute nothing."""
    import trainer.loss as loss_mod

    batch = _batch()

    def losses_and_grads():
        tiny.zero_grad(set_to_none=True)
        tl = supervised_token_losses(tiny, batch, chunk_size=3)
        tl.loss.sum().backward()
        return tl.loss.detach(), {n: p.grad.clone() for n, p in tiny.named_parameters() if p.grad is not None}

    ref_loss, ref_grads = losses_and_grads()
    head_calls = []
    tiny.get_output_embeddings().register_forward_hook(lambda *a: head_calls.append(a[1][0].shape[0]))
    monkeypatch.setattr(
        loss_mod, "agreed_chunk_count", lambda n, size, device: 6
    )  # as if another rank had 16+
    loss, grads = losses_and_grads()
    assert head_calls[:6] == [3, 3, 1, 0, 0, 0]  # forward; backward recomputes each chunk again
    assert len(head_calls) == 12
    assert torch.equal(loss, ref_loss) and grads.keys() == ref_grads.keys()
    assert all(torch.allclose(grads[k], ref_grads[k], atol=1e-7) for k in grads)


def _uneven_messages(path, n: int = 24):
    """Answers of 1 character and of ~60: ranks get very different numbers of supervised tokens."""
    rows = []
    for i in range(n):
        answer = "是" if i % 2 else "这是一个比较长的回答，" * 3
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"问题{i}"},
                    {"role": "assistant", "content": answer},
                ],
                "task_type": "qa/x",
            }
        )
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _weights(path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    return {k: v.detach().float() for k, v in AutoModelForCausalLM.from_pretrained(path).state_dict().items()}


STEPS = 2


@pytest.fixture(scope="module")
def plain_reference(tmp_path_factory):
    """The plain torch path on one process: 8 bins per step, as 2 ranks x 1 x accumulation 4."""
    tmp = tmp_path_factory.mktemp("plain")
    model_dir = make_tiny_model_dir(tmp / "model")
    data = _uneven_messages(tmp / "data.jsonl")
    cfg = tiny_config(tmp, model_dir, data, per_device_batch=8, grad_accum=1)
    _shared_settings(cfg)
    out = run(cfg, stop_after=STEPS)
    ck = latest_checkpoint(tmp / "run")
    assert ck.name == f"step-{STEPS:08d}" and sorted(out["evals"]) == [STEPS]
    return {"model_dir": model_dir, "data": data, **out, "weights": _weights(ck)}


def _shared_settings(cfg) -> None:
    cfg.data.max_seq_len = 128
    cfg.packing.chunk_size = 4  # many output-layer chunks, unequal across ranks
    cfg.checkpoint.every_n_steps = STEPS
    cfg.data.eval_fraction = 0.25  # eval runs the same chunked head: ranks must agree there too
    cfg.eval.every_n_steps = STEPS


def _deepspeed_run(tmp, ref, stage: int) -> tuple[dict, dict]:
    cfg = tiny_config(tmp, ref["model_dir"], ref["data"], per_device_batch=1, grad_accum=4)
    _shared_settings(cfg)
    cfg.deepspeed.enabled, cfg.deepspeed.zero_stage, cfg.deepspeed.offload_optimizer = True, stage, True
    gathered = str(tmp / "gathered.pt") if stage == 3 else None
    out = torchrun(cfg, tmp, nproc=2, stop_after=STEPS, timeout=240, record_load=True, dump_gathered=gathered)
    ck = latest_checkpoint(tmp / "run")
    assert ck.name == f"step-{STEPS:08d}"
    return out, _weights(ck)


def _assert_matches_plain(out: dict, weights: dict, ref: dict) -> None:
    losses = {int(k): v for k, v in out["losses"].items()}
    assert sorted(losses) == list(range(1, STEPS + 1))
    for s, v in losses.items():
        assert v == pytest.approx(ref["losses"][s], abs=1e-5), (s, v, ref["losses"][s])
    evals = {int(k): v for k, v in out["evals"].items()}
    assert evals == pytest.approx(ref["evals"], abs=1e-5)
    assert weights.keys() == ref["weights"].keys()
    worst = max((weights[k] - ref["weights"][k]).abs().max().item() for k in weights)
    assert worst < 1e-5, worst


@pytest.mark.slow
def test_zero3_offload_accumulation_matches_plain_and_saves_consolidated(tmp_path, plain_reference):
    """ZeRO-3, 2 ranks, CPU optimizer, accumulation 4, chunk 4 over uneven answers: no hang, same numbers.

    Also: the model reaches deepspeed.initialize already partitioned (HfDeepSpeedConfig at load), and the
    checkpoint, written from DeepSpeed's layer-by-layer consolidated state dict, loads with from_pretrained
    and holds the trained weights.
    """
    out, weights = _deepspeed_run(tmp_path, plain_reference, stage=3)
    assert out["partitioned_at_load"] is True
    gathered = torch.load(tmp_path / "gathered.pt")  # the engine's parameters at the last save
    assert gathered.keys() == weights.keys()
    assert all((weights[k] - gathered[k].float()).abs().max() <= 1e-6 for k in weights)
    _assert_matches_plain(out, weights, plain_reference)


@pytest.mark.slow
def test_zero2_offload_accumulation_matches_plain(tmp_path, plain_reference):
    """ZeRO-2 with the optimizer on CPU and accumulation 4: gradients land at the right boundary."""
    out, weights = _deepspeed_run(tmp_path, plain_reference, stage=2)
    assert out["partitioned_at_load"] is False
    _assert_matches_plain(out, weights, plain_reference)


def test_engine_is_called_once_per_micro_batch_zero3_lora(tmp_path, monkeypatch):
    """One rank in this process: the loop goes through the engine's forward (its hooks, prefetch and
    boundary bookkeeping), LoRA under ZeRO-3 included, and the checkpoint is the peft adapter.

    Only one in-process engine per test process: DeepSpeed keeps its process groups in module globals,
    which a second init_distributed in the same process does not replace (the 2-rank runs use torchrun).
    """
    import deepspeed
    from peft import PeftModel
    from tiny_run import pclue_messages
    from transformers import AutoModelForCausalLM

    from trainer.distributed import _free_port

    for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    monkeypatch.setenv("DS_ACCELERATOR", "cpu")
    calls = []
    forward = deepspeed.DeepSpeedEngine.forward

    def counting(self, *args, **kwargs):
        calls.append(type(self.module).__name__)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(deepspeed.DeepSpeedEngine, "forward", counting)
    model_dir = make_tiny_model_dir(tmp_path / "model")
    data = pclue_messages(tmp_path / "data.jsonl", 8)
    cfg = tiny_config(tmp_path, model_dir, data, per_device_batch=1, grad_accum=2, lr=5e-3)
    cfg.deepspeed.enabled, cfg.deepspeed.zero_stage = True, 3
    cfg.checkpoint.every_n_steps = 2
    cfg.finetune.method, cfg.finetune.lora_rank, cfg.finetune.lora_alpha = "lora", 4, 8
    cfg.finetune.lora_target_modules = ["q_proj", "v_proj"]
    run(cfg, stop_after=2)
    assert calls == ["SupervisedLoss"] * 4  # 2 steps x 2 micro-batches
    ck = latest_checkpoint(tmp_path / "run")
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    before = base(ids).logits
    assert (ck / "adapter_config.json").is_file()
    trained = PeftModel.from_pretrained(base, ck).merge_and_unload()
    assert not any(hasattr(p, "ds_id") for p in trained.parameters())  # loads whole after the run
    assert not torch.allclose(trained(ids).logits, before, atol=1e-5)
