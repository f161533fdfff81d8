"""Rating-statistics benchmark: Krippendorff's alpha and the case bootstrap at 20 raters x 5,000 cases.

    .venv/bin/python bench/rating_stats.py                          # 20 raters x 5,000 cases, overlap 3
    .venv/bin/python bench/rating_stats.py --overlap 20 --repeats 1  # every rater on every case
    .venv/bin/python bench/rating_stats.py --cases 1000 --repeats 1  # a quick run

The results page computes alpha per dimension and per task_type, and a bootstrap interval for every
cell of its table, on each load, so each must take milliseconds. Each is timed against the plain
implementation one would write first, measured in the same run on the same data: alpha from a Python
loop over units and rater pairs, the bootstrap as a Python loop drawing one resample at a time. The
ratio (plain / ours) is the figure that carries across machines; the two results are checked equal.
The bootstrap is timed twice: once over all cases (one interval: drawing and gathering 10 million
indexes dominates both ways, so about 1x is expected) and once per task_type, the cases split into
groups of 50 as on the results table, where the per-resample overhead of a loop is what vectorising
removes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.rating_stats.agreement import krippendorff_alpha  # noqa: E402
from app.rating_stats.intervals import bootstrap_mean, mean_by_task  # noqa: E402
from app.rating_stats.scales import Scale  # noqa: E402


def synthetic(raters: int, cases: int, overlap: int, seed: int = 0) -> np.ndarray:
    """1-5 scores, raters noisy around a true score per case; each case scored by `overlap` raters."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, size=cases)
    m = np.clip(np.rint(truth + rng.normal(0, 0.8, size=(raters, cases))), 1, 5)
    keep = np.argsort(rng.random((raters, cases)), axis=0) < overlap
    return np.where(keep, m, np.nan)


def plain_alpha(m: np.ndarray, domain: tuple[int, ...]) -> float:
    """Ordinal alpha the textbook way: coincidences from every ordered pair of raters within each unit."""
    o: dict[tuple[float, float], float] = defaultdict(float)
    for unit in m.T.tolist():
        values = [v for v in unit if v == v]
        if len(values) < 2:
            continue
        for i, a in enumerate(values):
            for j, b in enumerate(values):
                if i != j:
                    o[(a, b)] += 1 / (len(values) - 1)
    n_v = {c: sum(o[(c, k)] for k in domain) for c in domain}
    n = sum(n_v.values())

    def delta(c: float, k: float) -> float:
        lo, hi = min(c, k), max(c, k)
        return (sum(n_v[g] for g in domain if lo <= g <= hi) - (n_v[c] + n_v[k]) / 2) ** 2

    observed = sum(o[(c, k)] * delta(c, k) for c in domain for k in domain)
    expected = sum(n_v[c] * (n_v[k] - (c == k)) * delta(c, k) for c in domain for k in domain) / (n - 1)
    return 1 - observed / expected


def plain_bootstrap(values: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """One resample per loop turn: the same draws as `bootstrap_mean`, so the bounds must agree."""
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, values.size, size=values.size)].mean() for _ in range(resamples)]
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """The best of `repeats` runs (the machine is shared; the minimum is the least disturbed) and a result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--overlap", type=int, default=3, help="raters per case")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs per figure")
    args = parser.parse_args()
    m = synthetic(args.raters, args.cases, args.overlap)
    domain = Scale.one_to_five.values
    print(
        f"{args.raters} raters x {args.cases:,} cases, {args.overlap} raters per case, "
        f"{args.resamples} resamples, best of {args.repeats}"
    )

    t_ours, ours = timed(lambda: krippendorff_alpha(m, level="ordinal", domain=domain).value, args.repeats)
    t_plain, plain = timed(lambda: plain_alpha(m, domain), args.repeats)
    assert isinstance(ours, float) and isinstance(plain, float) and abs(ours - plain) < 1e-9, (ours, plain)
    print(
        f"ordinal alpha   {t_ours * 1000:8.1f} ms; plain loop {t_plain * 1000:8.1f} ms; "
        f"{t_plain / t_ours:6.1f}x faster (alpha {ours:.4f} both)"
    )

    values = (np.nanmean(m, axis=0) - 1) / 4  # per-case mean score on [0, 1], as usability would be
    t_ours, got = timed(
        lambda: bootstrap_mean(values.tolist(), resamples=args.resamples, seed=1), args.repeats
    )
    t_plain, bounds = timed(lambda: plain_bootstrap(values, args.resamples, 1), args.repeats)
    assert got is not None and np.allclose((got.low, got.high), bounds, atol=1e-12), (got, bounds)  # type: ignore[attr-defined]
    print(
        f"bootstrap x1    {t_ours * 1000:8.1f} ms; plain loop {t_plain * 1000:8.1f} ms; "
        f"{t_plain / t_ours:6.1f}x faster (interval equal)"
    )

    task_types = [f"任务{i // 50:03d}" for i in range(values.size)]
    groups = {t: values[i : i + 50] for i, t in zip(range(0, values.size, 50), task_types[::50], strict=True)}
    run = lambda: mean_by_task(values.tolist(), task_types, level=1, resamples=args.resamples, seed=1)  # noqa: E731
    t_ours, table = timed(run, args.repeats)
    t_plain, plain_table = timed(
        lambda: {t: plain_bootstrap(v, args.resamples, 1) for t, v in groups.items()}, args.repeats
    )
    for t, (low, high) in plain_table.items():  # type: ignore[attr-defined]
        cell = table[t]  # type: ignore[index]
        assert cell is not None and np.allclose((cell.low, cell.high), (low, high), atol=1e-12)
    print(
        f"bootstrap x{len(groups):<4d} {t_ours * 1000:8.1f} ms; plain loop {t_plain * 1000:8.1f} ms; "
        f"{t_plain / t_ours:6.1f}x faster ({len(groups)} task_types of 50 cases, intervals equal)"
    )


if __name__ == "__main__":
    main()
