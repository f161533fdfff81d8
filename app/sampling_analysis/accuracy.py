"""Accuracy per task_type with a Wilson interval, and pass@k for n > 1 samples per prompt.

A sampling run is often a few hundred prompts per task type, where 70% vs 75% is noise; the interval
is what lets a reader see that. Wilson rather than the normal approximation because it stays inside
[0, 1] and behaves at k = 0 and k = n, which small task types hit all the time.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval for k successes in n trials; None for n = 0 (nothing to estimate)."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not z > 0:
        raise ValueError(f"z must be > 0, got {z}")
    if n == 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At k = 0 and k = n the bound is 0 or 1 exactly; the formula leaves rounding dust (0.9999999999999999).
    low = 0.0 if k == 0 else centre - half
    high = 1.0 if k == n else centre + half
    return low, high


def accuracy_by_task(task_types: Sequence[str], outcomes: Sequence[bool | None]) -> dict[str, dict[str, Any]]:
    """Per task_type: n scored, correct, unscored (outcome None), accuracy and its 95% Wilson interval.

    Unscored generations (a reference the scorer cannot use) are counted apart, not as wrong.
    """
    if len(task_types) != len(outcomes):
        raise ValueError(f"{len(task_types)} task types for {len(outcomes)} outcomes")
    table: dict[str, dict[str, Any]] = {}
    for task_type, outcome in zip(task_types, outcomes, strict=True):
        row = table.setdefault(task_type, {"n": 0, "correct": 0, "unscored": 0})
        if outcome is None:
            row["unscored"] += 1
        else:
            row["n"] += 1
            row["correct"] += bool(outcome)
    for row in table.values():
        row["accuracy"] = row["correct"] / row["n"] if row["n"] else None
        row["ci95"] = wilson(row["correct"], row["n"])
    return table


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. (2021)'s unbiased pass@k, 1 - C(n-c, k) / C(n, k): the chance that k of the n
    samples, drawn without replacement, include a correct one. Computed as a product, not with
    factorials, so n in the hundreds does not overflow."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1 - k / i
    return 1.0 - miss


def pass_at_k_by_task(
    generations: Iterable[Mapping[str, Any]], outcomes: Iterable[bool | None], k: int
) -> dict[str, dict[str, Any]]:
    """Mean pass@k over the prompts of each task_type (keys: task_type, prompt_id). A prompt with fewer
    than k scored samples is left out and counted in `skipped`, since pass@k is undefined for it."""
    per_prompt: dict[tuple[str, Any], list[int]] = {}
    for g, outcome in zip(generations, outcomes, strict=True):
        if outcome is not None:
            n_c = per_prompt.setdefault((g["task_type"], g["prompt_id"]), [0, 0])
            n_c[0] += 1
            n_c[1] += bool(outcome)
    table: dict[str, dict[str, Any]] = {}
    for (task_type, _), (n, c) in per_prompt.items():
        row = table.setdefault(task_type, {"prompts": 0, "skipped": 0, "total": 0.0})
        if n < k:
            row["skipped"] += 1
            continue
        row["prompts"] += 1
        row["total"] += pass_at_k(n, c, k)
    return {
        t: {
            "prompts": r["prompts"],
            "skipped": r["skipped"],
            "pass_at_k": r["total"] / r["prompts"] if r["prompts"] else None,
        }
        for t, r in table.items()
    }
