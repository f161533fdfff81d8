"""A run's directory, as the server knows it: where it is, the names of its files, its checkpoints.

Layout under settings.runs_dir / str(run.id): train.jsonl and eval.jsonl (dataset versions exported in
the trainer's messages format), run.json (the config the worker passes), train.log (trainer stdout and
stderr), and the trainer's own metrics.jsonl, config.json, data_samples.jsonl and checkpoints/. The
worker fills it (worker.kinds.train).

Checkpoints are listed through trainer.layout, the torch-free half of trainer.checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.core.config import Settings, get_settings
from app.datasets.export import iter_export
from app.models import Dataset, DatasetKind, Run
from trainer.layout import list_checkpoints

RUN_JSON = "run.json"
TRAIN_FILE = "train.jsonl"
EVAL_FILE = "eval.jsonl"
LOG_FILE = "train.log"
METRICS_FILE = "metrics.jsonl"

_RUN_REF = re.compile(r"^run:(\d+)/([^/\\]+)$")


def run_dir_for(run_id: int, settings: Settings | None = None) -> Path:
    return ((settings or get_settings()).runs_dir / str(run_id)).resolve()


def resolve_checkpoint(session: Session, ref: str) -> Path:
    """ "run:<id>/<checkpoint dir name>" -> that checkpoint's absolute path; ValueError saying what is wrong."""
    m = _RUN_REF.match(ref)
    if m is None:
        raise ValueError(f"{ref!r} is not of the form run:<id>/<checkpoint>")
    run = session.get(Run, int(m.group(1)))
    if run is None or not run.run_dir:
        raise ValueError(f"run {m.group(1)} does not exist")
    wanted = m.group(2)
    for path in list_checkpoints(run.run_dir):
        if path.name == wanted:
            return path.resolve()
    raise ValueError(f"run {run.id} has no complete checkpoint {wanted!r}")


def export_versions(engine: Engine, versions: list[tuple[int, int]]) -> Iterator[bytes]:
    """The versions as one messages JSONL, in the order chosen: a run's train.jsonl and eval.jsonl (and the
    estimate's). Each line carries its dataset, version and sample id, which the trainer's messages name.
    An eval set's samples end with their reference as the assistant turn; those without a reference are
    left out (the launch form and the dataset page count them)."""
    with Session(engine) as session:
        found = {d: session.get(Dataset, d) for d, _ in versions}
    for dataset_id, version in versions:
        ds = found[dataset_id]
        name = ds.name if ds is not None else f"dataset {dataset_id}"
        yield from iter_export(
            engine,
            dataset_id=dataset_id,
            version=version,
            reference_turn=ds is not None and ds.kind == DatasetKind.eval,
            source=f"{name} v{version}",
        )
