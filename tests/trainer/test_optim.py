"""Learning-rate schedules (warmup steps or ratio, then cosine / linear / constant) and AdamW groups."""

import math

import pytest
import torch

from trainer.config import TrainConfig
from trainer.optim import LRSchedule, build_optimizer, param_groups, warmup_steps


def test_warmup_steps_take_precedence_over_ratio():
    assert warmup_steps(TrainConfig(warmup_ratio=0.1), 20) == 2
    assert warmup_steps(TrainConfig(warmup_ratio=0.1, warmup_steps=5), 20) == 5
    assert warmup_steps(TrainConfig(warmup_steps=50), 20) == 20


@pytest.mark.parametrize("kind", ["cosine", "linear", "constant"])
def test_schedule_shapes(kind):
    s = LRSchedule(TrainConfig(lr=1.0, scheduler=kind, warmup_steps=4, min_lr_ratio=0.1), total_steps=24)
    lrs = [s.lr_at(k) for k in range(24)]
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # linear warmup reaches the peak
    assert lrs[4] == pytest.approx(1.0)
    after = lrs[4:]
    if kind == "constant":
        assert after == pytest.approx([1.0] * 20)
        return
    assert all(a >= b for a, b in zip(after, after[1:], strict=False)) and after[-1] > 0.1
    mid = s.lr_at(14)  # halfway through the 20 decay steps
    expected = 0.5 * (1 + math.cos(math.pi * 0.5)) if kind == "cosine" else 0.5
    assert mid == pytest.approx(0.1 + 0.9 * expected)
    assert s.lr_at(24) == pytest.approx(0.1)  # decays to min_lr_ratio * lr


def test_no_weight_decay_on_biases_and_norms():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and [p.ndim for p in decay["params"]] == [2]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3
    opt = build_optimizer(model, TrainConfig(lr=1e-3, weight_decay=0.1))
    LRSchedule(TrainConfig(lr=1e-3, scheduler="constant"), 10).apply(opt, 0)
    assert all(g["lr"] == 1e-3 for g in opt.param_groups)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(model, TrainConfig())


def test_adamw_is_fused_only_when_every_parameter_is_on_cuda():
    """The fused kernel exists for CUDA tensors only; CPU parameters keep torch's default implementation."""
    import torch

    from trainer.config import TrainConfig
    from trainer.optim import build_optimizer

    opt = build_optimizer(torch.nn.Linear(4, 4), TrainConfig())
    assert not opt.defaults.get("fused")
