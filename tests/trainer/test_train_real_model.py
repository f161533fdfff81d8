"""Training the real embedded SmolLM2-135M-Instruct on pCLUE for a few dozen steps lowers the loss of each task_type."""

import json

import pytest
import torch
from tiny_run import pclue_messages

from trainer.config import embedded_default
from trainer.train import run


@pytest.mark.slow
def test_real_model_loss_falls_per_task_type(tmp_path):
    from trainer.embedded import ensure_model

    ensure_model()  # the default model.path="" resolves to it; converted once and cached
    data = pclue_messages(tmp_path / "pclue.jsonl", 12, max_chars=70)
    cfg = embedded_default(str(data), str(tmp_path / "run"))
    cfg.data.max_seq_len = 192
    cfg.train.epochs = 2.0
    cfg.train.per_device_batch = 1
    cfg.train.grad_accum = 1
    cfg.train.lr = 1e-4
    cfg.train.warmup_steps = 2
    cfg.checkpoint.at_epoch_end = False
    threads = torch.get_num_threads()
    # One intra-op thread: on a busy 2-core CI box (other test workers) two spinning OpenMP threads
    # measured 5x slower; alone, one thread costs at most 2x.
    torch.set_num_threads(1)
    try:
        out = run(cfg)
    finally:
        torch.set_num_threads(threads)
    assert out["total_steps"] >= 20
    events = [json.loads(x) for x in open(tmp_path / "run" / "metrics.jsonl")]
    train = [e for e in events if e["type"] == "train"]
    k = max(len(train) // 4, 3)

    def window_loss(rows, channel):
        s = sum(
            r["channels"][channel]["loss"] * r["channels"][channel]["tokens"]
            for r in rows
            if channel in r["channels"]
        )
        n = sum(r["channels"][channel]["tokens"] for r in rows if channel in r["channels"])
        return s / n if n else None

    print({e["step"]: round(e["loss"], 3) for e in train})
    for channel in ("overall", "l2/pclue/nli", "l2/pclue/classify"):
        first, last = window_loss(train[:k], channel), window_loss(train[-k:], channel)
        print(channel, first, last)
        assert first is not None and last is not None, channel
        assert last < 0.8 * first, (channel, first, last)
