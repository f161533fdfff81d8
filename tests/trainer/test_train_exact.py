"""Batch 8 x accumulation 1, batch 2 x accumulation 4 and 2 ranks x batch 4 (torchrun, gloo) give the same gradients."""

import pytest
import torch
from tiny_run import make_tiny_model_dir, pclue_messages, tiny_config, torchrun

from trainer.metrics import read_events
from trainer.train import run


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("exact")
    return make_tiny_model_dir(root / "model"), pclue_messages(root / "data.jsonl", 64)


def _grads(path):
    return torch.load(path, weights_only=True)


def _max_diff(a, b):
    assert a.keys() == b.keys() and a
    return max((a[k] - b[k]).abs().max().item() for k in a)


def _run(tmp, model, data, name, *, mode="token", steps=3, **train):
    d = tmp / name
    d.mkdir()
    cfg = tiny_config(d, model, data, **train)
    cfg.loss.normalisation = mode
    dump = str(d / "grads.pt")
    out = run(cfg, stop_after=steps, grad_dump=dump)
    return out["losses"], _grads(dump)


@pytest.mark.parametrize("mode", ["token", "sample", "task"])
def test_accumulation_split_gives_same_gradients(tmp_path, setup, mode):
    model, data = setup
    l8, g8 = _run(tmp_path, model, data, "b8", mode=mode, per_device_batch=8, grad_accum=1)
    l2, g2 = _run(tmp_path, model, data, "b2a4", mode=mode, per_device_batch=2, grad_accum=4)
    assert _max_diff(g8, g2) < 1e-5
    assert max(g.abs().max().item() for g in g8.values()) > 1e-3  # gradients are not trivially zero
    for s in l8:
        assert abs(l8[s] - l2[s]) < 1e-5, (s, l8[s], l2[s])


@pytest.mark.parametrize("mode", ["token", "task"])  # task: the count keys differ between ranks
def test_two_ranks_give_same_gradients(tmp_path, setup, mode):
    model, data = setup
    l8, g8 = _run(tmp_path, model, data, "b8", mode=mode, per_device_batch=8, grad_accum=1)
    d = tmp_path / "ranks"
    d.mkdir()
    cfg = tiny_config(d, model, data, per_device_batch=4, grad_accum=1)
    cfg.loss.normalisation = mode
    out = torchrun(cfg, d, nproc=2, stop_after=3, grad_dump=str(d / "grads.pt"))
    assert _max_diff(g8, _grads(d / "grads.pt")) < 1e-5
    for s, loss in out["losses"].items():
        assert abs(l8[int(s)] - loss) < 1e-5
    # the logged channels (per task_type level 1 and 2, special, overall) are all-reduced over both ranks
    one, two = (
        [e for e in read_events(p / "run" / "metrics.jsonl") if e["type"] == "train"]
        for p in (tmp_path / "b8", d)
    )
    assert [e["step"] for e in one] == [e["step"] for e in two] == [1, 2, 3]
    for a, b in zip(one, two, strict=True):
        assert a["channels"].keys() == b["channels"].keys() and len(a["channels"]) > 3
        for name, ch in a["channels"].items():
            assert ch["tokens"] == b["channels"][name]["tokens"], name
            assert abs(ch["loss"] - b["channels"][name]["loss"]) < 1e-5, name
        assert a["packing_efficiency"] == pytest.approx(b["packing_efficiency"])


def test_naive_per_microbatch_mean_differs(tmp_path, setup):
    """The check above can fail: averaging per micro-batch (the 2024 accumulation bug) breaks the equality."""
    import trainer.loss as loss_mod

    model, data = setup
    _, g8 = _run(tmp_path, model, data, "b8", per_device_batch=8, grad_accum=1, steps=1)
    orig = loss_mod.normalised_loss

    def naive(tl, batch, *, mode, global_counts, task_level=2):
        return tl.loss.mean() / 4  # mean over the micro-batch's own tokens, then mean over 4 micro-batches

    loss_mod.normalised_loss = naive
    try:
        _, g2 = _run(tmp_path, model, data, "naive", per_device_batch=2, grad_accum=4, steps=1)
    finally:
        loss_mod.normalised_loss = orig
    assert _max_diff(g8, g2) > 1e-4
