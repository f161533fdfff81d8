"""metrics.jsonl holds one flushed JSON event per line, and the warning detectors fire on the right series only."""

import json
import math

import pytest

from trainer.metrics import (
    MetricsWriter,
    NonFiniteLoss,
    RisingEvalLoss,
    StepDropDetector,
    check_finite,
    read_events,
)


def test_events_are_flushed_lines(tmp_path):
    w = MetricsWriter(tmp_path)
    w.write("start", config={"a": 1}, counts_per_task={"x": 3}, total_steps=5)
    w.write(
        "train",
        step=1,
        epoch=0.2,
        loss=1.5,
        channels={"overall": {"loss": 1.5, "tokens": 10}},
        lr=1e-3,
        grad_norm=float("nan"),
        tokens_per_s=10.0,
        supervised_tokens_per_s=2.0,
        packing_efficiency=0.9,
        mfu=0.1,
    )
    # readable before close: written and flushed per event
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    events = [json.loads(line) for line in lines]
    assert [e["type"] for e in events] == ["start", "train"]
    assert events[1]["grad_norm"] == "nan"  # JSON has no NaN: a reader must never choke
    assert all("time" in e for e in events)
    with pytest.raises(ValueError):
        w.write("bogus")
    w.write("done", step=5)
    w.close()
    # a torn last line (process killed mid-write) is skipped by the reader
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"type": "tra')
    assert [e["type"] for e in read_events(tmp_path / "metrics.jsonl")] == ["start", "train", "done"]


def test_non_rank0_writes_nothing(tmp_path):
    w = MetricsWriter(tmp_path / "r1", rank=1)
    assert w.write("train", step=1) is None
    assert not (tmp_path / "r1" / "metrics.jsonl").exists()


def test_rising_eval_loss_fires_once_per_streak():
    d = RisingEvalLoss(k=3)
    fired = [d.observe(x) for x in [2.0, 1.8, 1.7, 1.75, 1.8, 1.9, 2.0, 2.1, 1.5, 1.6, 1.7, 1.8]]
    hits = [i for i, m in enumerate(fired) if m]
    assert hits == [5, 11]
    assert "3 consecutive evals" in fired[5]
    d2 = RisingEvalLoss(k=3)
    assert not any(d2.observe(x) for x in [2.0, 1.9, 1.95, 1.85, 1.9, 1.8, 1.85, 1.7])  # noisy but falling


def _curve(steps_per_epoch, epochs, drop):
    out = []
    for s in range(steps_per_epoch * epochs):
        e = s / steps_per_epoch
        loss = 2.0 * math.exp(-s / 40) + 0.5 - drop * math.floor(e)
        out.append((s + 1, (s + 1) / steps_per_epoch, loss))
    return out


def test_step_drop_at_epoch_boundary():
    d = StepDropDetector(window=5, ratio=0.15)
    msgs = [m for s, e, loss in _curve(20, 3, drop=0.4) if (m := d.observe(s, e, loss))]
    assert len(msgs) == 2 and "epoch boundary" in msgs[0]
    d = StepDropDetector(window=5, ratio=0.15)
    assert not [m for s, e, loss in _curve(20, 3, drop=0.0) if d.observe(s, e, loss)]
    # a steep but smooth fall is not a step
    d = StepDropDetector(window=5, ratio=0.15)
    steep = [(s, s / 20, 3.0 * math.exp(-s / 8) + 0.1) for s in range(1, 61)]
    assert not [m for s, e, loss in steep if d.observe(s, e, loss)]


def test_non_finite_loss():
    check_finite(1.0, 3)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(NonFiniteLoss, match="step 7"):
            check_finite(bad, 7)
