"""The vectorised bootstrap equals a one-resample-at-a-time loop, covers the true mean, and groups by task_type."""

import math

import numpy as np
import pytest

from app.rating_stats import intervals
from app.rating_stats.intervals import (
    bootstrap_mean,
    group_by_task,
    mean_by_task,
    task_level1,
    task_level2,
    win_tie_loss,
)


def _percentile(sorted_values: list[float], p: float) -> float:
    # Linear interpolation between closest ranks (numpy's default), written out.
    pos = p / 100 * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (pos - lo) * (sorted_values[hi] - sorted_values[lo])


def slow_bootstrap(
    values: list[float], resamples: int, seed: int, level: float = 0.95
) -> tuple[float, float, float, int]:
    rng = np.random.default_rng(seed)
    n = len(values)
    means = []
    for _ in range(resamples):
        idx = rng.integers(0, n, size=n)
        means.append(sum(values[i] for i in idx) / n)
    means.sort()
    tail = (1 - level) / 2 * 100
    return sum(values) / n, _percentile(means, tail), _percentile(means, 100 - tail), n


@pytest.mark.parametrize(("n", "seed"), [(1, 0), (2, 1), (7, 2), (51, 3), (400, 4)])
def test_matches_the_slow_loop(n: int, seed: int) -> None:
    values = np.random.default_rng(100 + seed).integers(1, 6, size=n).astype(float).tolist()
    got = bootstrap_mean(values, resamples=500, seed=seed)
    assert got is not None
    assert (got.mean, got.low, got.high, got.n) == pytest.approx(slow_bootstrap(values, 500, seed), abs=1e-12)
    other = bootstrap_mean(values, resamples=500, seed=seed, level=0.8)
    assert other is not None
    assert (other.low, other.high) == pytest.approx(slow_bootstrap(values, 500, seed, 0.8)[1:3], abs=1e-12)


def test_blocks_of_resamples_do_not_change_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.random.default_rng(9).random(37).tolist()
    whole = bootstrap_mean(values, resamples=300, seed=5)
    monkeypatch.setattr(intervals, "_BLOCK_ITEMS", 37 * 7)  # 7 resamples per block, odd n
    assert bootstrap_mean(values, resamples=300, seed=5) == whole
    assert whole is not None
    assert (whole.mean, whole.low, whole.high) == pytest.approx(slow_bootstrap(values, 300, 5)[:3], abs=1e-12)


def test_coverage() -> None:
    # 200 datasets of 60 scores from a known 1-5 distribution: the 95% interval holds the true mean in
    # at least 90% of them (a percentile bootstrap at n = 60 runs a little under its nominal 95%).
    probs = np.array([0.05, 0.1, 0.2, 0.4, 0.25])
    true_mean = float(probs @ np.arange(1, 6))
    rng = np.random.default_rng(2026)
    covered = 0
    for k in range(200):
        values = rng.choice(np.arange(1, 6), size=60, p=probs).astype(float).tolist()
        got = bootstrap_mean(values, seed=k)
        assert got is not None and got.low <= got.mean <= got.high
        covered += got.low <= true_mean <= got.high
    assert covered >= 180


def test_none_is_left_out_and_nothing_is_none() -> None:
    got = bootstrap_mean([0.5, None, 1.0, None], resamples=100)
    assert got is not None and got.n == 2 and got.mean == 0.75
    assert bootstrap_mean([], resamples=100) is None
    assert bootstrap_mean([None], resamples=100) is None
    single = bootstrap_mean([0.4])
    assert single is not None and (single.low, single.high, single.n) == (0.4, 0.4, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": [1.0, float("nan")]}, "finite"),
        ({"values": [1.0], "resamples": 0}, "resamples"),
        ({"values": [1.0], "level": 1.0}, "level"),
        ({"values": [], "level": 0}, "level"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_mean(**kwargs)


def test_win_tie_loss_hand_computed() -> None:
    verdicts = [["win"], ["tie"], ["loss", "win"], ["win", "win", "tie"], []]
    got = win_tie_loss(verdicts, resamples=1000, seed=3)
    assert got is not None
    assert got["win"].mean == pytest.approx((1 + 0 + 0.5 + 2 / 3) / 4)
    assert got["tie"].mean == pytest.approx((0 + 1 + 0 + 1 / 3) / 4)
    assert got["loss"].mean == pytest.approx(0.5 / 4)
    assert got["win_rate"].mean == pytest.approx(got["win"].mean + got["tie"].mean / 2)
    assert {g.n for g in got.values()} == {4}
    # Every share is the bootstrap mean of its per-case shares over the same resampled cases.
    win = bootstrap_mean([1, 0, 0.5, 2 / 3], resamples=1000, seed=3)
    assert win is not None and (got["win"].low, got["win"].high) == pytest.approx(
        (win.low, win.high), abs=1e-12
    )
    assert win_tie_loss([[], []]) is None


def test_win_tie_loss_bad_input() -> None:
    with pytest.raises(ValueError, match="case 1: 'draw' is not one of win, tie, loss"):
        win_tie_loss([["win"], ["draw"]])
    with pytest.raises(ValueError, match="a list per case"):
        win_tie_loss(["win", "tie"])


def test_task_levels_with_cjk_names() -> None:
    assert task_level1("逻辑推理/常识推理") == "逻辑推理"
    assert task_level1("逻辑推理") == "逻辑推理"
    assert task_level2("逻辑推理/常识推理") == "逻辑推理/常识推理"
    assert task_level1("代码/python/3.11") == "代码"  # level 1 ends at the first "/"
    types = ["逻辑推理/常识推理", "写作/诗歌", "逻辑推理/数学推理", "写作", "逻辑推理/常识推理"]
    assert group_by_task(types, level=1) == {"逻辑推理": [0, 2, 4], "写作": [1, 3]}
    assert group_by_task(types, level=2) == {
        "逻辑推理/常识推理": [0, 4],
        "写作/诗歌": [1],
        "逻辑推理/数学推理": [2],
        "写作": [3],
    }
    with pytest.raises(ValueError, match="level must be 1 or 2"):
        group_by_task(types, level=3)


def test_mean_by_task() -> None:
    types = ["逻辑推理/常识推理", "写作", "逻辑推理/数学推理", "写作"]
    got = mean_by_task([1.0, 0.2, 0.5, None], types, level=1, resamples=200)
    assert list(got) == ["逻辑推理", "写作"]
    assert got["逻辑推理"] is not None and got["逻辑推理"].mean == 0.75 and got["逻辑推理"].n == 2
    assert got["写作"] is not None and got["写作"].n == 1
    only_none = mean_by_task([None], ["写作"], level=2)
    assert only_none == {"写作": None}
    with pytest.raises(ValueError, match="2 values for 1 task types"):
        mean_by_task([1.0, 2.0], ["写作"], level=1)
