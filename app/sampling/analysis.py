"""What a sampling job's answers say as a whole: accuracy, lengths, cuts, repeats, identity claims, latency.

`analyse` reads the job's generations once, a keyset batch at a time and only the columns the analysis
needs (never the prompt text, the biggest one), joins each with its sample's reference, and hands plain
dicts to the pure functions of `app.sampling_analysis`. The result is cached per (job, generation
count): a finished job's count no longer changes, so reloading its page costs one COUNT, while a
running job's analysis is recomputed as answers arrive.

It is CPU work (scoring and regexes over every answer): callers are sync routes, which FastAPI runs in
its thread pool, never the event loop.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models import Generation, SamplingJob
from app.sampling.prompts import references
from app.sampling_analysis.accuracy import accuracy_by_task
from app.sampling_analysis.flags import identity_flags, identity_summary
from app.sampling_analysis.latency import latency_fit
from app.sampling_analysis.scorers import infer_task_spec, score_generations
from app.sampling_analysis.stats import cut_share, length_distribution, repeated_answers

BATCH = 2000
CACHED_JOBS = 16  # analyses kept in memory, least recently used dropped first
TOP_REPEATS = 20
EXAMPLE_PROMPTS = 5
LISTED_HITS = 100
PLOT_POINTS = 400  # latency points sent for the scatter plot; the fits use every generation

# Every column but prompt_text, the largest, which no analysis reads.
_FIELDS = (
    "id",
    "sample_id",
    "prompt_id",
    "task_type",
    "text",
    "tokens",
    "prompt_tokens",
    "finish_reason",
    "time_s",
)
_cache: OrderedDict[tuple[int, int], dict[str, Any]] = OrderedDict()
_lock = threading.Lock()


def generation_count(session: Session, sampling_id: int) -> int:
    return int(
        session.exec(
            select(func.count()).select_from(Generation).where(col(Generation.sampling_job_id) == sampling_id)
        ).one()
    )


def load_generations(session: Session, sampling_id: int) -> list[dict[str, Any]]:
    """The job's generations as the dicts `app.sampling_analysis` reads (plus `id` and `sample_id`), by id,
    each with its sample's reference (None where the sample has none)."""
    out: list[dict[str, Any]] = []
    refs: dict[int, str] = {}
    last = 0
    while True:
        rows = session.exec(
            select(*(col(getattr(Generation, name)) for name in _FIELDS))
            .where(col(Generation.sampling_job_id) == sampling_id, col(Generation.id) > last)
            .order_by(col(Generation.id))
            .limit(BATCH)
        ).all()
        if not rows:
            return out
        batch = [dict(zip(_FIELDS, row, strict=True)) for row in rows]
        refs.update(references(session, sorted({g["sample_id"] for g in batch} - refs.keys())))
        for g in batch:
            g["reference"] = refs.get(g["sample_id"]) or None
        out.extend(batch)
        last = batch[-1]["id"]


def _accuracy(gens: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_task: dict[str, list[str | None]] = {}
    for g in gens:
        by_task.setdefault(g["task_type"], []).append(g["reference"])
    specs = {t: infer_task_spec(refs) for t, refs in by_task.items()}
    table = accuracy_by_task([g["task_type"] for g in gens], score_generations(gens, specs))
    for task_type, row in table.items():
        row["scorer"] = specs[task_type]
    return table


def _repeats(gens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups = repeated_answers(gens)[:TOP_REPEATS]
    return [{**gr, "prompt_ids": gr["prompt_ids"][:EXAMPLE_PROMPTS]} for gr in groups]


def _identity(gens: list[dict[str, Any]]) -> dict[str, Any]:
    summary = identity_summary(g["text"] for g in gens)
    hits = []
    for i in summary["self"]["indices"][:LISTED_HITS]:
        g = gens[i]
        names = sorted({h["name"] for h in identity_flags(g["text"])["self"]})
        hits.append({"id": g["id"], "sample_id": g["sample_id"], "prompt_id": g["prompt_id"], "names": names})
    return {
        "self": {"answers": summary["self"]["answers"], "names": summary["self"]["names"], "hits": hits},
        "mentions": {"answers": summary["mentions"]["answers"], "names": summary["mentions"]["names"]},
    }


def _latency(gens: list[dict[str, Any]]) -> dict[str, Any]:
    fit = latency_fit(gens)
    for band in fit["bands"]:
        k = (band["fit"] or {}).get("k")
        band["tokens_per_s"] = 1 / k if k else None
        band["prompt_tokens"] = list(band["prompt_tokens"])
    step = max(1, -(-len(gens) // PLOT_POINTS))  # ceiling division: at most PLOT_POINTS
    points = []
    for g in gens[::step]:
        band = next(
            (
                i
                for i, b in enumerate(fit["bands"])
                if b["prompt_tokens"][0] <= g["prompt_tokens"] <= b["prompt_tokens"][1]
            ),
            0,
        )
        points.append([g["tokens"], g["time_s"], band])
    fit["points"] = points
    return fit


def compute(gens: list[dict[str, Any]]) -> dict[str, Any]:
    """The analysis of a list of generation dicts (see `load_generations`), as JSON-ready data."""
    return {
        "generations": len(gens),
        "accuracy": _accuracy(gens),
        "lengths": length_distribution(gens),
        "cut": cut_share(gens),
        "repeated": _repeats(gens),
        "identity": _identity(gens),
        "latency": _latency(gens),
    }


def analyse(session: Session, sampling_job: SamplingJob) -> dict[str, Any]:
    """The job's analysis, from the cache while its generation count is unchanged."""
    sampling_id = sampling_job.id or 0
    key = (sampling_id, generation_count(session, sampling_id))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    result = compute(load_generations(session, sampling_id))
    with _lock:
        _cache[key] = result
        while len(_cache) > CACHED_JOBS:
            _cache.popitem(last=False)
    return result
