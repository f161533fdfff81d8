"""Before launch: estimated tokens, optimizer steps and packing efficiency, from the real data and tokenizer.

Why the trainer's own plan and not a formula: packing efficiency and the step count depend on every
sample's rendered length under the chosen model's chat template, the mix, the held-out split and the
seed. So the chosen versions are exported exactly as a run exports them, and trainer.plan.load_data +
build_plan run on them with the form's config: the numbers are the ones the run will print at start.

Why a job (kind `estimate`, worker.kinds.estimate, running `python -m trainer.estimate`): trainer.plan
imports torch and the tokenizer needs transformers; the web server must never load either (it starts in a
second and stays small). The request waits for the job's result (app.jobs.interactive); errors the
trainer raises before training (a sample longer than max_seq_len, an unknown mix key) come back as
messages for the form.

Above `cap` samples the estimate runs on a seeded uniform sample of `cap` lines and scales tokens,
samples and bins by total/cap; the result says so (`sampled`), and the page shows it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.datasets.visibility import VISIBLE_SQL
from app.jobs import interactive
from app.models import JobKind, JobStatus

CAP = 50_000
TIMEOUT = 600.0
_CACHE: OrderedDict[str, Estimate] = OrderedDict()
# Routes run in a thread pool: move_to_end/popitem on a shared OrderedDict are not safe unguarded.
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Fix:
    """One click that sets a form field to a value that removes the problem."""

    name: str  # the form field, e.g. "data.over_length"
    value: str
    label: str


class EstimateError(ValueError):
    """The trainer refused the data or config; `field` says where the form shows it, `fixes` the ways out.

    `problems`: how many problem samples the estimate job `job_id` recorded in its directory (the message
    names the first 20; app.runs.problems serves them all)."""

    def __init__(
        self,
        field: str,
        message: str,
        fixes: tuple[Fix, ...] = (),
        *,
        problems: int = 0,
        job_id: int | None = None,
    ):
        super().__init__(message)
        self.field = field
        self.message = message
        self.fixes = fixes
        self.problems = problems
        self.job_id = job_id


def fixes_for(field: str, longest: int | None) -> tuple[Fix, ...]:
    """Samples over max_seq_len: raise it to fit the longest (rounded up to 256), truncate, or drop them."""
    if field != "data.max_seq_len" or not longest:
        return ()
    fit = -(-longest // 256) * 256
    return (
        Fix("data.max_seq_len", str(fit), f"max_seq_len = {fit:,}"),
        Fix("data.over_length", "truncate", "over_length = truncate"),
        Fix("data.over_length", "drop", "over_length = drop"),
    )


# Fields a refusal can concern that have a place on the launch form: the estimate's answer shows the
# problem there too (an HTMX out-of-band swap), and empties the others.
FIELD_SLOTS = ("data.max_seq_len", "mix", "datasets")

# The refusals seen, by the same key as results: launching that very config is refused at once.
_PROBLEMS: OrderedDict[str, EstimateError] = OrderedDict()


@dataclass
class Estimate:
    samples: int  # training samples in the chosen versions
    used: int  # samples the plan was computed on (== samples unless sampled)
    sampled: bool
    train_samples: int  # per epoch, after held-out split and mix
    eval_samples: int
    tokens: int  # real (non-padding) tokens the run trains on, all epochs
    supervised_tokens: int  # of which carry loss
    bins: int
    steps: int  # optimizer steps
    bins_per_step: int
    packing_efficiency: float
    world: int
    dropped: int  # samples left without a supervised token after truncation
    seconds: float

    def to_json(self) -> dict:
        return asdict(self)


def known_problem(engine: Engine, **spec: Any) -> EstimateError | None:
    """The refusal an estimate of exactly this launch (estimate()'s keywords) already met, or None: the form
    blocks launching it."""
    key, _ = _cache_key(engine, **{"cap": CAP, **spec})
    with _CACHE_LOCK:
        return _PROBLEMS.get(key)


def _cache_key(
    engine: Engine,
    *,
    config: dict,
    datasets: list[tuple[int, int]],
    eval_dataset: tuple[int, int] | None,
    model_path: str,
    tokenizer_dir: Path,
    world: int,
    cap: int,
) -> tuple[str, list[tuple[int, int]]]:
    """Everything an estimate depends on, hashed; and the versions' sizes."""
    sizes = fingerprint(engine, datasets + ([eval_dataset] if eval_dataset else []))
    key = _key(
        str(engine.url), config, datasets, eval_dataset, sizes, model_path, str(tokenizer_dir), world, cap
    )
    return key, sizes


def fingerprint(engine: Engine, datasets: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(samples, highest sample id) per version: its size, and a cache key that changes if its rows do."""
    sql = text(f"SELECT COUNT(*), COALESCE(MAX(s.id), 0) FROM sample s WHERE {VISIBLE_SQL}")
    with engine.connect() as conn:
        rows = [conn.execute(sql, {"dataset_id": d, "version": v}).one() for d, v in datasets]
    return [(int(n), int(top)) for n, top in rows]


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def estimate(
    engine: Engine,
    *,
    config: dict,
    datasets: list[tuple[int, int]],
    eval_dataset: tuple[int, int] | None,
    model_path: str,
    tokenizer_dir: Path,
    world: int,
    owner_id: int | None = None,
    cap: int = CAP,
    timeout: float = TIMEOUT,
) -> Estimate:
    """Plan the run on an export of the chosen versions (sampled above `cap`); EstimateError on refusal.

    `model_path` is the resolved model.path ("" = embedded, whose tokenizer lives in `tokenizer_dir`).
    Versions never change once written, so a result is cached by everything it depends on. Raises
    interactive.Busy when too many short jobs wait already.
    """
    started = time.perf_counter()
    key, sizes = _cache_key(
        engine,
        config=config,
        datasets=datasets,
        eval_dataset=eval_dataset,
        model_path=model_path,
        tokenizer_dir=tokenizer_dir,
        world=world,
        cap=cap,
    )
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        if key in _PROBLEMS:
            raise _PROBLEMS[key]
    total = sum(n for n, _ in sizes[: len(datasets)])
    if total == 0:
        raise EstimateError("datasets", "the chosen versions hold no sample")
    params = {
        "config": config,
        "datasets": datasets,
        "eval_dataset": eval_dataset,
        "eval_total": sizes[-1][0] if eval_dataset else 0,
        "total": total,
        "cap": cap,
        "model_path": model_path,
        "tokenizer_dir": str(tokenizer_dir),
        "world": world,
    }
    try:
        result = Estimate(**_plan(engine, params, owner_id, timeout), seconds=time.perf_counter() - started)
    except EstimateError as exc:
        if exc.field != "estimate":  # the data or config refused, not a worker that was busy or gone
            with _CACHE_LOCK:
                _PROBLEMS[key] = exc
                while len(_PROBLEMS) > 64:
                    _PROBLEMS.popitem(last=False)
        raise
    with _CACHE_LOCK:
        _CACHE[key] = result
        while len(_CACHE) > 64:
            _CACHE.popitem(last=False)
    return result


def _plan(engine: Engine, params: dict[str, Any], owner_id: int | None, timeout: float) -> dict[str, Any]:
    """The estimate job's result (Estimate's fields but `seconds`); EstimateError when it failed."""
    title = f"estimate of {params['total']:,} samples"
    try:
        job = interactive.run(
            engine, kind=JobKind.estimate, owner_id=owner_id, params=params, title=title, timeout=timeout
        )
    except interactive.Unavailable as exc:
        raise EstimateError("estimate", str(exc)) from None
    out = interactive.result_of(job)
    if job.status != JobStatus.succeeded:
        if "error" in out:
            field = out.get("field", "estimate")
            raise EstimateError(
                field,
                out["error"],
                fixes_for(field, out.get("longest")),
                problems=int(out.get("problems") or 0),
                job_id=job.id,
            )
        raise EstimateError("estimate", f"the estimate {job.status.value}: {job.error}")
    return out
