"""Fit time = k·tokens + b over a job's generations: b is about the time to first token (prefill and
queueing), k about the time per output token (decode). Per prompt-length band as well as overall,
since a long prompt raises b and, with a growing KV cache, k too; a single fit would blur that.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_BANDS = 3


def fit_line(tokens: np.ndarray, times: np.ndarray) -> dict[str, Any] | None:
    """Ordinary least squares of times on tokens: k, b, R² and n. None with fewer than two points or a
    single distinct token count, where the slope is not determined. R² is None when every time is the
    same (nothing to explain)."""
    n = len(tokens)
    if n < 2:
        return None
    x_mean = tokens.mean()
    y_mean = times.mean()
    dx = tokens - x_mean
    sxx = float(dx @ dx)
    if sxx == 0:
        return None
    k = float(dx @ (times - y_mean)) / sxx
    b = float(y_mean - k * x_mean)
    residual = times - (k * tokens + b)
    ss_tot = float(((times - y_mean) ** 2).sum())
    r2 = 1 - float(residual @ residual) / ss_tot if ss_tot > 0 else None
    return {"k": k, "b": b, "r2": r2, "n": n}


def latency_fit(generations: Sequence[Mapping[str, Any]], *, bands: int = DEFAULT_BANDS) -> dict[str, Any]:
    """The overall fit, one fit per prompt-length band, and output tokens per second over the job
    (keys: tokens, prompt_tokens, time_s; generations without a time are skipped).

    Bands split prompt_tokens at its quantiles (1/3 and 2/3 for three bands); each reports its
    [low, high] prompt tokens. Tied quantiles give fewer, non-empty bands rather than empty ones.
    """
    if bands < 1:
        raise ValueError(f"bands must be >= 1, got {bands}")
    rows = [g for g in generations if g.get("time_s") is not None and g.get("tokens") is not None]
    tokens = np.fromiter((g["tokens"] for g in rows), dtype=float, count=len(rows))
    times = np.fromiter((g["time_s"] for g in rows), dtype=float, count=len(rows))
    prompt = np.fromiter((g.get("prompt_tokens") or 0 for g in rows), dtype=float, count=len(rows))
    total_time = float(times.sum())
    out: dict[str, Any] = {
        "overall": fit_line(tokens, times),
        "tokens_per_s": float(tokens.sum()) / total_time if total_time > 0 else None,
        "bands": [],
    }
    if not rows:
        return out
    inner = np.unique(np.quantile(prompt, np.arange(1, bands) / bands))
    # side="right": a prompt length equal to an edge goes to the upper band, like np.digitize.
    band_of = np.searchsorted(inner, prompt, side="right")
    for band in range(len(inner) + 1):
        mask = band_of == band
        if not mask.any():
            continue
        out["bands"].append(
            {
                "prompt_tokens": (int(prompt[mask].min()), int(prompt[mask].max())),
                "fit": fit_line(tokens[mask], times[mask]),
            }
        )
    return out
