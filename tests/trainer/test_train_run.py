"""A tiny run writes the contract's events, channels, data plan and warnings; NaN stops it; bad input fails early."""

import json

import pytest
from tiny_run import make_tiny_model_dir, pclue_messages, tiny_config

from trainer.config import ConfigError
from trainer.data import DataError
from trainer.metrics import NonFiniteLoss, read_events
from trainer.train import main, run

TRAIN_KEYS = {
    "type",
    "step",
    "epoch",
    "loss",
    "channels",
    "lr",
    "grad_norm",
    "tokens_per_s",
    "supervised_tokens_per_s",
    "packing_efficiency",
    "mfu",
    "time",
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    return make_tiny_model_dir(root / "model"), pclue_messages(root / "data.jsonl", 60)


def test_events_channels_and_plan(tmp_path, setup):
    model, data = setup
    cfg = tiny_config(
        tmp_path,
        model,
        data,
        per_device_batch=2,
        grad_accum=2,
        epochs=1.5,
        scheduler="linear",
        warmup_ratio=0.2,
    )
    cfg.data.eval_fraction = 0.15
    cfg.eval.every_n_steps = 2
    out = run(cfg)
    events = read_events(tmp_path / "run" / "metrics.jsonl")
    types = [e["type"] for e in events]
    assert types[0] == "start" and types[-1] == "done"
    assert set(types) <= {"start", "train", "eval", "checkpoint", "warning", "done"}
    start = events[0]
    assert start["total_steps"] == out["total_steps"] and start["counts_per_task"]
    assert set(start["counts_per_task"]) <= {
        "pclue/nli",
        "pclue/classify",
        "pclue/mrc",
        "pclue/generate",
        "pclue/anaphora_resolution",
    }
    train = [e for e in events if e["type"] == "train"]
    assert [e["step"] for e in train] == list(range(1, out["total_steps"] + 1))
    for e in train:
        assert TRAIN_KEYS <= set(e), TRAIN_KEYS - set(e)
        ch = e["channels"]
        assert {"overall", "special", "l1/pclue"} <= set(ch)
        assert any(k.startswith("l2/pclue/") for k in ch)
        # level-2 channels partition the overall tokens
        assert sum(v["tokens"] for k, v in ch.items() if k.startswith("l2/")) == ch["overall"]["tokens"]
        assert 0 < e["packing_efficiency"] <= 1 and e["tokens_per_s"] > e["supervised_tokens_per_s"] > 0
        assert e["mfu"] is None  # a CPU's peak is not known: no MFU rather than a guessed one
    assert train[-1]["epoch"] == pytest.approx(1.5, abs=0.02)  # round(1.5 * n) samples
    lrs = [e["lr"] for e in train]
    assert lrs[0] < lrs[1] and lrs[-1] < max(lrs)  # warmup then linear decay
    evals = [e for e in events if e["type"] == "eval"]
    assert evals and all("overall" in e["channels"] for e in evals)
    assert evals[-1]["step"] == out["total_steps"]
    plan = json.loads((tmp_path / "run" / "data_plan.json").read_text())
    assert plan["seed"] == cfg.train.seed and plan["total_steps"] == out["total_steps"]
    assert plan["counts"]["per_task"]["pclue/nli"]["eval"] > 0
    order = [json.loads(x) for x in open(tmp_path / "run" / "data_order.jsonl")]
    assert len(order) == out["total_steps"]
    seen = [i for o in order for b in o["bins"] for i in b]
    assert len(seen) == plan["counts"]["train_seen"]
    index = [json.loads(x) for x in open(tmp_path / "run" / "data_samples.jsonl", encoding="utf-8")]
    assert [x["index"] for x in index] == list(range(plan["counts"]["train_samples"]))
    assert all(x["where"].startswith(str(data) + ":") and x["task_type"].startswith("pclue/") for x in index)
    lines = open(data, encoding="utf-8").read().splitlines()
    first = index[seen[0]]  # the first trained sample, traced back to its line of the data file
    assert json.loads(lines[int(first["where"].rsplit(":", 1)[1]) - 1])["task_type"] == first["task_type"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["lr"] == cfg.train.lr


def test_mfu_is_reported_against_a_configured_peak_only(tmp_path, setup):
    model, data = setup
    cfg = tiny_config(tmp_path, model, data, per_device_batch=2, epochs=0.3)
    cfg.metrics.peak_flops = 1e12
    run(cfg)
    events = read_events(tmp_path / "run" / "metrics.jsonl")
    assert (events[0]["peak_flops"], events[0]["peak_flops_source"]) == (1e12, "config")
    train = [e for e in events if e["type"] == "train"]
    assert train and all(0 < e["mfu"] < 1 for e in train)


def test_padded_mode_runs_one_sample_per_row(tmp_path, setup):
    model, data = setup
    cfg = tiny_config(tmp_path, model, data, per_device_batch=4, epochs=0.5)
    cfg.packing.enabled = False
    run(cfg)
    order = [json.loads(x) for x in open(tmp_path / "run" / "data_order.jsonl")]
    assert all(len(b) == 1 for o in order for b in o["bins"])


def test_non_finite_loss_stops_with_error_event(tmp_path, setup, monkeypatch):
    import trainer.loss as loss_mod

    model, data = setup
    orig = loss_mod.normalised_loss
    calls = {"n": 0}

    def poisoned(tl, batch, **kw):
        calls["n"] += 1
        out = orig(tl, batch, **kw)
        return out * float("nan") if calls["n"] >= 3 else out

    monkeypatch.setattr(loss_mod, "normalised_loss", poisoned)
    cfg = tiny_config(tmp_path, model, data, per_device_batch=2)
    with pytest.raises(NonFiniteLoss, match="step 3"):
        run(cfg)
    events = read_events(tmp_path / "run" / "metrics.jsonl")
    assert events[-1]["type"] == "error" and "non-finite" in events[-1]["message"]
    assert [e["step"] for e in events if e["type"] == "train"] == [1, 2]


def test_bad_inputs_fail_before_training(tmp_path, setup, capsys):
    model, data = setup
    cfg = tiny_config(tmp_path, model, data)
    cfg.data.max_seq_len = 40
    with pytest.raises(
        DataError,
        match=r"of \d+ samples are longer than data\.max_seq_len 40 tokens(.|\n)*data\.jsonl:\d+ \(",
    ):
        run(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()
    cfg.data.max_seq_len = 256
    cfg.data.mix = {"pclue/nope": 2.0}
    with pytest.raises(DataError, match="nope"):
        run(cfg)
    cfg.data.mix = {}
    cfg.model.path = str(tmp_path / "missing")
    with pytest.raises(ConfigError, match="does not exist"):
        run(cfg)
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"data": {"train_file": str(data)}, "output_dir": str(tmp_path), "train": {"lr": -1}})
    )
    assert main(["--config", str(bad)]) == 2
    assert "train.lr must be > 0" in capsys.readouterr().err
    # bad data through the CLI: a clean message and exit status 2, and the error event for the worker
    cfg.model.path = str(model)
    cfg.data.mix = {"nope": 2.0}
    cfg.to_json(bad)
    assert main(["--config", str(bad)]) == 2
    assert "DataError: mix: unknown task_type 'nope'" in capsys.readouterr().err
    assert read_events(tmp_path / "run" / "metrics.jsonl")[-1]["type"] == "error"


def test_gradient_checkpointing_and_bf16(tmp_path, setup):
    model, data = setup
    base = run(tiny_config(tmp_path / "a", model, data, per_device_batch=2), stop_after=3)["losses"]
    cfg = tiny_config(tmp_path / "b", model, data, per_device_batch=2, gradient_checkpointing=True)
    ckpt = run(cfg, stop_after=3)["losses"]
    assert all(abs(base[s] - ckpt[s]) < 1e-5 for s in base)  # recomputation changes memory, not numbers
    bf16 = run(tiny_config(tmp_path / "c", model, data, per_device_batch=2, precision="bf16"), stop_after=3)[
        "losses"
    ]
    assert all(abs(base[s] - bf16[s]) < 0.1 for s in base) and bf16 != base


def test_warnings_reach_metrics_jsonl(tmp_path, setup, monkeypatch):
    """The loop feeds the detectors: rising eval losses and a step-shaped drop at an epoch boundary."""
    import math

    import trainer.train as train_mod

    model, data = setup
    cfg = tiny_config(tmp_path, model, data, per_device_batch=1, epochs=2.0)
    cfg.packing.enabled = False  # one sample per step: enough steps per epoch for the detector
    cfg.data.eval_fraction = 0.2
    cfg.eval.every_n_steps = 1
    cfg.eval.rising_k = 2
    cfg.metrics.step_drop_window = 2

    def fake_step(self, step, acc, grad_dump=None):
        # one loss level per epoch: 3.0 in the first, 2.0 in the second (a step at the boundary)
        loss = 3.0 - math.floor(self.plan.epoch_at(step) + 1e-9)
        stats = {"real_tokens": 10.0, "slots": 10.0, "supervised_tokens": 2.0, "sum_sq_len": 100.0}
        return {"loss": loss, "lr": 1e-3, "grad_norm": 1.0, "time": 0.01, **stats}

    evals = iter(1.0 + 0.1 * i for i in range(1000))
    monkeypatch.setattr(train_mod.Run, "train_step", fake_step)
    monkeypatch.setattr(
        train_mod, "evaluate", lambda *a, **k: {"loss": next(evals), "tokens": 1, "channels": {}}
    )
    run(cfg)
    events = read_events(tmp_path / "run" / "metrics.jsonl")
    warnings = [e for e in events if e["type"] == "warning"]
    rising = [e for e in warnings if e["kind"] == "rising_eval_loss"]
    assert rising and rising[0]["step"] == 3  # evals at steps 1, 2, 3: rose twice
    drops = [e for e in warnings if e["kind"] == "step_drop"]
    assert len(drops) == 1
    first_of_epoch2 = next(e["step"] for e in events if e["type"] == "train" and e["epoch"] > 1)
    assert f"step {first_of_epoch2})" in drops[0]["message"]


def test_max_steps_cuts_the_run_to_the_first_steps_of_the_full_plan(tmp_path, setup):
    """A smoke test is one field: the run takes exactly the first max_steps steps of the full plan's bins, and
    its schedule, progress, epoch and per-task counts follow the shorter run."""
    model, data = setup
    full = tiny_config(tmp_path / "full", model, data, per_device_batch=2, epochs=2.0)
    from trainer.model import load_tokenizer
    from trainer.plan import build_plan, load_data

    uncut = build_plan(full, load_data(full, load_tokenizer(full, str(model))), world=1)
    assert uncut.total_steps > 3
    cut_cfg = tiny_config(tmp_path, model, data, per_device_batch=2, epochs=2.0)
    cut_cfg.train.max_steps = 3
    out = run(cut_cfg)
    assert out["step"] == out["total_steps"] == 3
    events = read_events(tmp_path / "run" / "metrics.jsonl")
    start = next(e for e in events if e["type"] == "start")
    assert start["total_steps"] == 3
    assert [e["step"] for e in events if e["type"] == "train"] == [1, 2, 3]
    order = [json.loads(x)["bins"] for x in open(tmp_path / "run" / "data_order.jsonl")]
    assert order == [uncut.bins[s * uncut.G : (s + 1) * uncut.G] for s in range(3)]
    seen = sum(c["train_seen"] for c in start["counts"]["per_task"].values())
    assert seen == sum(len(b) for step in order for b in step) < len(uncut.bins)


def test_max_steps_must_not_be_negative(tmp_path, setup):
    model, data = setup
    cfg = tiny_config(tmp_path, model, data)
    cfg.train.max_steps = -1
    with pytest.raises(ConfigError, match="train.max_steps must be >= 0"):
        cfg.validate(check_files=False)


def test_chat_template_file_is_used_copied_and_its_gaps_warned(tmp_path, setup):
    """model.chat_template_file replaces the model's template; what it drops is a chat_template warning."""
    from pathlib import Path

    model, data = setup
    tpl = Path(__file__).resolve().parents[1] / "assets" / "chat_templates" / "vicuna_1_1.jinja"
    cfg = tiny_config(tmp_path, model, data, per_device_batch=2)
    cfg.model.chat_template_file = str(tpl)
    run(cfg, stop_after=1)
    out = tmp_path / "run"
    assert (out / "chat_template.jinja").read_text(encoding="utf-8") == tpl.read_text(encoding="utf-8")
    events = read_events(out / "metrics.jsonl")
    assert events[0]["type"] == "start"
    warned = [e["message"] for e in events if e["type"] == "warning" and e["kind"] == "chat_template"]
    assert len(warned) == 2 and all("vicuna_1_1.jinja drops" in m for m in warned)
