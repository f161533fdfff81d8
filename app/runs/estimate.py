"""Before launch: estimated tokens, optimizer steps and packing efficiency, from the real data and tokenizer.

Why the trainer's own plan and not a formula: packing efficiency and the step count depend on every
sample's rendered length under the chosen model's chat template, the mix, the held-out split and the
seed. So the chosen versions are exported exactly as a run exports them, and trainer.plan.load_data +
build_plan run on them with the form's config: the numbers are the ones the run will print at start.

Why a subprocess (`python -m app.runs.estimate <spec.json>`): trainer.plan imports torch and the
tokenizer needs transformers; the web server must never load either (it starts in a second and stays
small). The child prints one JSON object; errors the trainer raises before training (a sample longer
than max_seq_len, an unknown mix key) come back as messages for the form.

Above `cap` samples the estimate runs on a seeded uniform sample of `cap` lines and scales tokens,
samples and bins by total/cap; the result says so (`sampled`), and the page shows it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.datasets.visibility import VISIBLE_SQL
from app.runs.rundir import export_versions

CAP = 50_000
TIMEOUT = 600.0
ROOT = Path(__file__).resolve().parents[2]
_CACHE: OrderedDict[str, Estimate] = OrderedDict()
# Routes run in a thread pool: move_to_end/popitem on a shared OrderedDict are not safe unguarded.
_CACHE_LOCK = threading.Lock()
# Each child imports torch (hundreds of MB): a burst of clicks queues here instead of filling memory.
_CHILDREN = threading.BoundedSemaphore(2)


class EstimateError(ValueError):
    """The trainer refused the data or config; `field` says where the form shows it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


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


def fingerprint(engine: Engine, datasets: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(samples, highest sample id) per version: its size, and a cache key that changes if its rows do."""
    sql = text(f"SELECT COUNT(*), COALESCE(MAX(s.id), 0) FROM sample s WHERE {VISIBLE_SQL}")
    with engine.connect() as conn:
        rows = [conn.execute(sql, {"dataset_id": d, "version": v}).one() for d, v in datasets]
    return [(int(n), int(top)) for n, top in rows]


def export_lines(engine: Engine, datasets: list[tuple[int, int]], out: Path, keep: set[int] | None) -> int:
    """Concatenate the versions as a run's train.jsonl; with `keep`, only those 0-based line numbers."""
    n = written = 0
    with open(out, "wb") as fh:
        for chunk in export_versions(engine, datasets):
            if keep is None:
                fh.write(chunk)
                written += chunk.count(b"\n")
                continue
            for line in chunk.splitlines(keepends=True):
                if n in keep:
                    fh.write(line)
                    written += 1
                n += 1
    return written


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
    cap: int = CAP,
    timeout: float = TIMEOUT,
) -> Estimate:
    """Plan the run on an export of the chosen versions (sampled above `cap`); EstimateError on refusal.

    `model_path` is the resolved model.path ("" = embedded, whose tokenizer lives in `tokenizer_dir`).
    Versions never change once written, so a result is cached by everything it depends on.
    """
    started = time.perf_counter()
    sizes = fingerprint(engine, datasets + ([eval_dataset] if eval_dataset else []))
    key = _key(
        str(engine.url), config, datasets, eval_dataset, sizes, model_path, str(tokenizer_dir), world, cap
    )
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    total = sum(n for n, _ in sizes[: len(datasets)])
    if total == 0:
        raise EstimateError("datasets", "the chosen versions hold no sample")
    keep = set(random.Random(f"estimate:{total}").sample(range(total), cap)) if total > cap else None
    with tempfile.TemporaryDirectory(prefix="sftlab-estimate-") as tmp:
        root = Path(tmp)
        used = export_lines(engine, datasets, root / "train.jsonl", keep)
        eval_file = ""
        if eval_dataset is not None:
            n_eval = sizes[-1][0]
            eval_keep = (
                set(random.Random("estimate:eval").sample(range(n_eval), cap)) if n_eval > cap else None
            )
            export_lines(engine, [eval_dataset], root / "eval.jsonl", eval_keep)
            eval_file = str(root / "eval.jsonl")
        cfg = json.loads(json.dumps(config))
        cfg["data"].update(train_file=str(root / "train.jsonl"), eval_file=eval_file)
        cfg["output_dir"] = str(root / "run")
        cfg["model"]["path"] = model_path
        spec = root / "spec.json"
        spec.write_text(
            json.dumps({"config": cfg, "world": world, "tokenizer_dir": str(tokenizer_dir)}), encoding="utf-8"
        )
        raw = _run_child(spec, timeout)
    if "error" in raw:
        raise EstimateError(raw.get("field", "estimate"), raw["error"])
    scale = total / used if used else 1.0
    bins = round(raw["bins"] * scale)
    result = Estimate(
        samples=total,
        used=used,
        sampled=keep is not None,
        train_samples=round(raw["train_samples"] * scale),
        eval_samples=round(raw["eval_samples"] * (scale if eval_dataset is None else 1.0)),
        tokens=round(raw["tokens"] * scale),
        supervised_tokens=round(raw["supervised_tokens"] * scale),
        bins=bins,
        steps=raw["steps"] if keep is None else math.ceil(bins / raw["bins_per_step"]),
        bins_per_step=raw["bins_per_step"],
        packing_efficiency=raw["packing_efficiency"],
        world=world,
        dropped=round(raw["dropped"] * scale),
        seconds=time.perf_counter() - started,
    )
    with _CACHE_LOCK:
        _CACHE[key] = result
        while len(_CACHE) > 64:
            _CACHE.popitem(last=False)
    return result


def _run_child(spec: Path, timeout: float) -> dict:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    try:
        with _CHILDREN:
            proc = subprocess.run(
                [sys.executable, "-m", "app.runs.estimate", str(spec)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
    except subprocess.TimeoutExpired:
        raise EstimateError("estimate", f"the estimate took longer than {timeout:.0f} s") from None
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise EstimateError("estimate", f"the estimate failed (exit {proc.returncode}): {tail}") from None


def _error_field(message: str) -> str:
    if "max_seq_len" in message:
        return "data.max_seq_len"
    if message.startswith("mix") or "the mix leaves" in message:
        return "mix"
    return "estimate"


def plan_numbers(spec: dict) -> dict:
    """In the child: the trainer's own data pipeline and bin plan on the exported files."""
    from trainer.config import RunConfig
    from trainer.embedded import ensure_tokenizer
    from trainer.model import load_tokenizer
    from trainer.plan import build_plan, load_data

    cfg = RunConfig.from_dict(spec["config"])
    model_dir = cfg.model.path or str(ensure_tokenizer(Path(spec["tokenizer_dir"])))
    tokenizer = load_tokenizer(cfg, model_dir)
    data = load_data(cfg, tokenizer)
    plan = build_plan(cfg, data, world=spec["world"])
    return {
        "train_samples": len(data.train),
        "eval_samples": len(data.eval),
        "tokens": sum(len(data.train[i]) for i in data.order),
        "supervised_tokens": sum(data.train[i].n_supervised for i in data.order),
        "bins": len(plan.bins),
        "steps": plan.total_steps,
        "bins_per_step": plan.G,
        "packing_efficiency": plan.packing_efficiency,
        "dropped": len(data.counts.get("dropped", [])),
    }


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        out = plan_numbers(spec)
    except (ValueError, OSError) as exc:  # DataError, ConfigError, RenderError are ValueErrors
        message = str(exc)
        out = {"error": message[:4000], "field": _error_field(message)}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
