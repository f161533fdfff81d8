"""95% intervals by a percentile bootstrap over cases, for per-task_type results.

Cases are the unit of sampling (a task_type's score is an average over its cases, and its raters'
scores of one case are not independent), so the bootstrap resamples cases, with replacement, and
recomputes the mean. It makes no assumption about the shape of a 1-5 score distribution, which is
lumpy and bounded. Resamples are drawn as blocks of case indexes and averaged with one numpy operation
per block, never a Python loop per resample: a results table has an interval per task_type and
dimension, mostly over tens to hundreds of cases, where a loop's per-resample overhead would dominate.
The seed makes a results page show the same interval on every reload.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000
VERDICTS = ("win", "tie", "loss")
# Indexes per block of resamples: 1 MB of int32, small enough to stay in cache while it is gathered and
# averaged (larger blocks measured slower); a task_type of up to ~130 cases is one block at 2,000 resamples.
_BLOCK_ITEMS = 1 << 18


@dataclass(frozen=True)
class Interval:
    """A mean over `n` cases and its bootstrap interval [low, high]."""

    mean: float
    low: float
    high: float
    n: int


def bootstrap_mean(
    values: Sequence[float | None], *, resamples: int = DEFAULT_RESAMPLES, level: float = 0.95, seed: int = 0
) -> Interval | None:
    """The mean of the per-case values and its percentile-bootstrap interval; None cases are left out
    (a case with no usability has nothing to average), and no case at all gives None."""
    _check(resamples, level)
    column = _finite(values)
    if column is None:
        return None
    means = _resampled_means(column[:, None], resamples, np.random.default_rng(seed))[:, 0]
    return _interval(float(column.mean()), means, level, column.size)


def win_tie_loss(
    verdicts: Sequence[Sequence[str]],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval] | None:
    """Shares of "win", "tie", "loss" and the win rate (win + tie / 2), each with a bootstrap interval.

    `verdicts` holds each case's verdicts (one per rater who judged it, from the first model's side). A
    case counts once: its verdicts become shares of that case, so a case seen by three raters does not
    weigh three times. All four statistics come from the same resampled cases, so their intervals are
    consistent with one another. Cases with no verdict are left out; none at all gives None.
    """
    _check(resamples, level)
    rows = []
    for i, case in enumerate(verdicts):
        if isinstance(case, str):
            raise ValueError(f"case {i}: verdicts must be a list per case, got the string {case!r}")
        if not case:
            continue
        unknown = [v for v in case if v not in VERDICTS]
        if unknown:
            raise ValueError(f"case {i}: {unknown[0]!r} is not one of {', '.join(VERDICTS)}")
        shares = [case.count(v) / len(case) for v in VERDICTS]
        rows.append([*shares, shares[0] + shares[1] / 2])
    if not rows:
        return None
    table = np.array(rows)
    means = _resampled_means(table, resamples, np.random.default_rng(seed))
    names = (*VERDICTS, "win_rate")
    return {
        name: _interval(float(table[:, k].mean()), means[:, k], level, len(rows))
        for k, name in enumerate(names)
    }


def task_level1(task_type: str) -> str:
    """Level 1 of an "l1/l2" task_type ("逻辑推理/常识推理" -> "逻辑推理"); level 1 never holds "/"."""
    return task_type.split("/", 1)[0]


def task_level2(task_type: str) -> str:
    """The full "l1/l2" task_type; a type with no level 2 is its own level-2 group ("逻辑推理")."""
    return task_type


def group_by_task(task_types: Sequence[str], *, level: int) -> dict[str, list[int]]:
    """Case indexes per task_type group at level 1 or 2, in first-seen order, for slicing per-case values."""
    if level not in (1, 2):
        raise ValueError(f"task_type level must be 1 or 2, got {level!r}")
    key = task_level1 if level == 1 else task_level2
    groups: dict[str, list[int]] = {}
    for i, task_type in enumerate(task_types):
        groups.setdefault(key(task_type), []).append(i)
    return groups


def mean_by_task(
    values: Sequence[float | None],
    task_types: Sequence[str],
    *,
    level: int,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Interval | None]:
    """`bootstrap_mean` of the cases of each task_type group (level 1 or 2)."""
    if len(values) != len(task_types):
        raise ValueError(f"{len(values)} values for {len(task_types)} task types")
    return {
        group: bootstrap_mean([values[i] for i in idx], resamples=resamples, seed=seed)
        for group, idx in group_by_task(task_types, level=level).items()
    }


def _finite(values: Sequence[float | None]) -> np.ndarray | None:
    kept = [v for v in values if v is not None]
    if not kept:
        return None
    column = np.array(kept, dtype=float)
    if not np.isfinite(column).all():
        raise ValueError("values must be finite numbers or None")
    return column


def _resampled_means(table: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Column means of `resamples` resamples of the rows of `table`, shape (resamples, columns).

    The indexes are drawn in blocks of whole resamples; numpy's Generator yields the same stream for one
    (rows, n) draw as for that many draws of n, and the same for int32 as for int64 indexes, so the result
    equals a loop drawing one resample at a time. Columns are gathered from the transposed table so each
    mean runs over contiguous memory.
    """
    n = table.shape[0]
    block = max(1, _BLOCK_ITEMS // n)
    columns = np.ascontiguousarray(table.T)
    out = np.empty((resamples, table.shape[1]))
    for start in range(0, resamples, block):
        rows = min(block, resamples - start)
        idx = rng.integers(0, n, size=(rows, n), dtype=np.int32)
        out[start : start + rows] = columns[:, idx].mean(axis=-1).T
    return out


def _check(resamples: int, level: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")


def _interval(mean: float, means: np.ndarray, level: float, n: int) -> Interval:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(mean=mean, low=float(low), high=float(high), n=n)
