"""A run's directory: the exported data, the trainer config, the log, and what the trainer writes.

Layout under settings.runs_dir / str(run.id): train.jsonl and eval.jsonl (dataset versions exported in
the trainer's messages format), run.json (the config the worker passes), train.log (trainer stdout and
stderr), and the trainer's own metrics.jsonl, config.json, data_samples.jsonl and checkpoints/.

Checkpoints are listed through trainer.layout, the torch-free half of trainer.checkpoint.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.core.config import Settings, get_settings
from app.datasets.export import iter_export
from app.models import Run
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
    """The versions as one messages JSONL, in the order chosen: a run's train.jsonl (and the estimate's)."""
    for dataset_id, version in versions:
        yield from iter_export(engine, dataset_id=dataset_id, version=version)


def _export(engine: Engine, versions: list[tuple[int, int]], out: Path, tick: Callable[[], None]) -> None:
    # Written beside and renamed into place: a worker killed mid-export never leaves a file that a
    # resumed run would take for complete data.
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        for chunk in export_versions(engine, versions):
            fh.write(chunk)
            tick()
    os.replace(tmp, out)


def prepare(
    run: Run,
    *,
    engine: Engine,
    train: list[tuple[int, int]],
    eval_version: tuple[int, int] | None,
    tick: Callable[[], None] = lambda: None,
) -> Path:
    """Create the run directory, export the data (once: a resumed run must see the same bytes), write run.json.

    `tick` is called between export batches so the caller can keep heartbeating through a long export.
    """
    root = Path(run.run_dir)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / TRAIN_FILE).is_file():
        _export(engine, train, root / TRAIN_FILE, tick)
    if eval_version is not None and not (root / EVAL_FILE).is_file():
        _export(engine, [eval_version], root / EVAL_FILE, tick)
    (root / RUN_JSON).write_text(run.config_json, encoding="utf-8")
    repair_metrics(root / METRICS_FILE)
    return root


def repair_metrics(path: Path) -> None:
    """Cut a partial last line left by a killed trainer, so a resumed trainer's first event starts a new line.

    The tailer never stores a line without its newline, so nothing stored is lost.
    """
    if not path.is_file():
        return
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        pos = size
        while pos > 0:
            step = min(65536, pos)
            fh.seek(pos - step)
            block = fh.read(step)
            nl = block.rfind(b"\n")
            if nl >= 0:
                fh.truncate(pos - step + nl + 1)
                return
            pos -= step
        fh.truncate(0)


def log_tail(path: str | Path, lines: int = 100, max_bytes: int = 256 * 1024) -> str:
    """The last `lines` lines of a log (reading at most max_bytes from its end)."""
    p = Path(path)
    if not p.is_file():
        return ""
    with open(p, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - max_bytes))
        data = fh.read()
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])
