"""Length, truncation, repetition and diversity of sampled answers, per task_type.

These are the first things to look at after a sampling run: answers cut by max_new_tokens are not the
model's answers, one canned answer to many prompts means collapse or a leaked template, and n > 1
samples that are all the same mean the temperature did nothing.
"""

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.sampling_analysis.accuracy import wilson
from app.sampling_analysis.normalize import normalize_answer

DEFAULT_BINS = 20


def _by_task(generations: Sequence[Mapping[str, Any]], key: str) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for g in generations:
        groups.setdefault(g["task_type"], []).append(g[key])
    return groups


def length_distribution(
    generations: Sequence[Mapping[str, Any]], *, bins: int | Sequence[int] = DEFAULT_BINS
) -> dict[str, Any]:
    """Histogram of output tokens per task_type (keys: task_type, tokens) with p50, p90 and max.

    `bins` is a count of equal-width bins over 0..max tokens of the whole job, or explicit edges. The
    edges are shared by every task_type so their histograms can be drawn on one axis. Quantiles are
    numpy's default (linear interpolation between order statistics).
    """
    groups = _by_task(generations, "tokens")
    if not groups:
        return {"edges": [], "tasks": {}}
    if isinstance(bins, int):
        if bins < 1:
            raise ValueError(f"bins must be >= 1, got {bins}")
        top = max(max(v) for v in groups.values())
        edges = np.linspace(0, max(top, 1), bins + 1)
    else:
        edges = np.asarray(bins, dtype=float)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("bin edges must be at least two strictly increasing numbers")
    tasks = {}
    for task_type, values in groups.items():
        arr = np.asarray(values, dtype=float)
        counts, _ = np.histogram(arr, bins=edges)
        p50, p90 = np.quantile(arr, [0.5, 0.9])
        tasks[task_type] = {
            "n": len(arr),
            "counts": counts.tolist(),
            "p50": float(p50),
            "p90": float(p90),
            "max": int(arr.max()),
        }
    return {"edges": edges.tolist(), "tasks": tasks}


def cut_share(generations: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per task_type, how many answers stopped at max_new_tokens (finish_reason == "length"), their
    share and its 95% Wilson interval."""
    table = {}
    for task_type, reasons in _by_task(generations, "finish_reason").items():
        cut = sum(1 for r in reasons if r == "length")
        table[task_type] = {
            "n": len(reasons),
            "cut": cut,
            "share": cut / len(reasons),
            "ci95": wilson(cut, len(reasons)),
        }
    return table


def repeated_answers(
    generations: Sequence[Mapping[str, Any]], *, min_count: int = 3, min_share: float = 0.02
) -> list[dict[str, Any]]:
    """Answers that are the same after `normalize_answer` for many different prompts (keys: prompt_id,
    text), most widespread first.

    A group is reported when it spans at least `min_count` prompts and at least `min_share` of all
    prompts: the share keeps a large job from listing every common short answer ("是的"), the count
    keeps a tiny one from flagging a pair. Each group gives the normalised text, the first raw text seen
    and the prompt ids in the order met. Empty answers (nothing but punctuation or spaces) group under
    "" like any other: many of them is itself a finding.
    """
    prompts_seen = {g["prompt_id"] for g in generations}
    floor = max(min_count, math.ceil(min_share * len(prompts_seen)))
    groups: dict[str, dict[str, Any]] = {}
    for g in generations:
        norm = normalize_answer(g["text"])
        group = groups.setdefault(norm, {"text": norm, "example": g["text"], "prompt_ids": {}})
        group["prompt_ids"].setdefault(g["prompt_id"], None)  # a dict: ordered and de-duplicated
    found = [
        {
            "text": gr["text"],
            "example": gr["example"],
            "prompts": len(gr["prompt_ids"]),
            "prompt_ids": list(gr["prompt_ids"]),
        }
        for gr in groups.values()
        if len(gr["prompt_ids"]) >= floor
    ]
    return sorted(found, key=lambda gr: -gr["prompts"])


def distinct_answers(generations: Sequence[Mapping[str, Any]]) -> dict[Any, dict[str, int]]:
    """Per prompt_id: samples and distinct normalised answers among them (keys: prompt_id, text)."""
    samples: Counter[Any] = Counter()
    texts: dict[Any, set[str]] = {}
    for g in generations:
        samples[g["prompt_id"]] += 1
        texts.setdefault(g["prompt_id"], set()).add(normalize_answer(g["text"]))
    return {pid: {"samples": samples[pid], "distinct": len(t)} for pid, t in texts.items()}
