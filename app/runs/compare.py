"""Comparing runs: several runs' curves of one channel on one chart, and the config diff of two runs.

The overlay joins the runs' steps into one x array (uPlot draws series over a shared x; a run that
has no point at a step holds null there and the line spans the gap), then downsamples the joined
table with the same min/max buckets as the run page.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlmodel import Session

from app.models import Run
from app.runs.curves import RunSeries
from app.runs.series import downsample
from app.runs.views import run_config, run_datasets

# Paths inside the run's own directory: different for every run by construction, so never a difference.
RUN_DIR_KEYS = frozenset({"output_dir", "data.train_file", "data.eval_file"})


def channels_of(parsed: list[RunSeries]) -> tuple[list[str], list[str]]:
    """Channels present in every run, and in any run (train or eval), sorted with overall first."""
    sets = [set(s.train.series) | set(s.eval.series) for s in parsed]
    every = set.intersection(*sets) if sets else set()
    anywhere = set.union(*sets) if sets else set()
    return _ordered(every), _ordered(anywhere)


def _ordered(names: set[str]) -> list[str]:
    rank = {"overall": 0, "special": 1}
    return sorted(names, key=lambda n: (rank.get(n, 2), n))


def overlay(runs: list[tuple[Run, RunSeries]], channel: str, *, max_points: int = 2000) -> dict:
    """One chart's data: x = the union of the runs' steps; per run a train and an eval series.

    Takes each run with its parsed series (app.runs.series.run_series), which the caller also
    needs for channels_of: parsing is the costly part, so it is done once per run.
    """
    columns: list[tuple[str, dict[int, float | None]]] = []
    meta = []
    for run, s in runs:
        for part, curves in (("train", s.train), ("eval", s.eval)):
            ys = curves.series.get(channel)
            if ys is None:
                continue
            columns.append((f"{run.id}:{part}", dict(zip(curves.x, ys, strict=True))))
            meta.append({"run_id": run.id, "name": run.name, "part": part})
    steps = sorted({step for _, col in columns for step in col})
    table = {key: [col.get(step) for step in steps] for key, col in columns}
    x, series = downsample(steps, table, max_points)
    return {
        "channel": channel,
        "x": x,
        "series": [{**m, "y": series[k]} for m, (k, _) in zip(meta, columns, strict=True)],
    }


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1e-5}} -> {"train.lr": 1e-5}; lists and scalars are leaves."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return str(value)


def comparable(session: Session, run: Run) -> dict[str, str]:
    """A run as flat key -> text: its config plus datasets, base model and resources."""
    assert run.id is not None
    flat = {k: _text(v) for k, v in flatten(run_config(run)).items() if k not in RUN_DIR_KEYS}
    ds = run_datasets(session, run.id)
    for role in ("train", "eval"):
        flat[f"datasets.{role}"] = ", ".join(f"{d['name']} v{d['version']}" for d in ds if d["role"] == role)
    flat["run.base_model"] = run.base_model or "(embedded)"
    flat["resources.queue"] = run.queue
    flat["resources.n_gpus"] = str(run.n_gpus)
    flat["resources.n_procs"] = str(run.n_procs)
    return flat


def config_diff(session: Session, a: Run, b: Run) -> list[dict]:
    """Rows {key, a, b, same}: every key of either run, run/dataset/resource rows first."""
    fa, fb = comparable(session, a), comparable(session, b)
    first = ("run.", "datasets.", "resources.")
    keys = sorted(set(fa) | set(fb), key=lambda k: (not k.startswith(first), k))
    return [{"key": k, "a": fa.get(k, ""), "b": fb.get(k, ""), "same": fa.get(k) == fb.get(k)} for k in keys]
