"""Copies a growing metrics.jsonl into RunEvent, every line exactly once.

A line's seq is its 0-based index in the file. Each poll stores the complete lines after the last stored
one (a partial last line waits for its newline) and moves Run.events_seq in the same transaction, guarded
by `WHERE events_seq = <what we read>`; with the unique (run_id, seq) that makes a second tailer, or one
restarted after a crash, unable to store a line twice: it rolls back and resynchronises from the database.

The executor's tailer also names its task: the UPDATE is fenced on `task_id`, so a stale worker (its run
taken over by a resumed attempt) stores nothing and learns it through `Superseded`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.models import Run, RunEvent

log = logging.getLogger("sftlab.runs")

READ_LIMIT = 8 * 1024 * 1024  # bytes per poll: a huge backlog is stored in several transactions


class Tailer:
    """One run's metrics.jsonl -> RunEvent; `poll()` stores what is new and returns how many lines."""

    def __init__(self, engine: Engine, run_id: int, path: str | Path, *, task_id: str | None = None):
        self.engine = engine
        self.run_id = run_id
        self.path = Path(path)
        self.task_id = task_id  # None: store whoever holds the run
        self.offset: int | None = None  # byte offset after the last stored line; None: resync first
        self.seq = 0
        self.step = 0
        self.total_steps = 0
        self.final_loss: float | None = None

    def _sync(self) -> None:
        """Read where the database stands and find that line's byte offset in the file."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    col(Run.events_seq),
                    col(Run.step),
                    col(Run.total_steps),
                    col(Run.final_loss),
                    col(Run.task_id),
                ).where(col(Run.id) == self.run_id)
            ).one()
        if self.task_id is not None and row.task_id != self.task_id:
            raise Superseded(f"run {self.run_id} is now held by task {row.task_id!r}, not {self.task_id!r}")
        self.seq, self.step, self.total_steps, self.final_loss = row[:4]
        self.offset = _offset_after_lines(self.path, self.seq)

    def pending(self) -> bool:
        """Whether complete lines wait to be stored (always True before a resync has placed the tailer)."""
        if self.offset is None:
            return True
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                return b"\n" in fh.read(READ_LIMIT)
        except FileNotFoundError:
            return False

    def poll(self) -> int:
        """Store the complete lines written since the last poll; returns how many were stored."""
        if self.offset is None:
            self._sync()
        assert self.offset is not None
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read(READ_LIMIT)
        except FileNotFoundError:
            return 0
        end = chunk.rfind(b"\n")
        if end < 0:
            return 0  # nothing, or only the start of a line still being written
        lines = chunk[: end + 1].split(b"\n")[:-1]
        rows, values = self._rows(lines)
        fence = [col(Run.events_seq) == self.seq]
        if self.task_id is not None:
            fence.append(col(Run.task_id) == self.task_id)
        try:
            with self.engine.begin() as conn:
                moved = conn.execute(
                    update(Run)
                    .where(col(Run.id) == self.run_id, *fence)
                    .values(events_seq=self.seq + len(rows), **values)
                )
                if moved.rowcount != 1:
                    raise _Moved
                conn.execute(insert(RunEvent), rows)
        except (_Moved, IntegrityError):
            # Someone else stored these lines (another tailer, or ours before a crash), or another task
            # holds the run now: start over from the DB, whose resync says which.
            log.info("run %s: events moved under the tailer; resynchronising", self.run_id)
            self.offset = None
            return 0
        self.offset += end + 1
        self.seq += len(rows)
        self.step = values["step"]
        self.total_steps = values["total_steps"]
        self.final_loss = values["final_loss"]
        return len(rows)

    def _rows(self, lines: list[bytes]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        rows = []
        step, total, final = self.step, self.total_steps, self.final_loss
        for i, raw in enumerate(lines):
            text = raw.decode("utf-8", errors="replace")
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError:
                event = None
            if not isinstance(event, dict):
                # Kept with its seq so line indexes stay aligned with the file.
                rows.append(_row(self.run_id, self.seq + i, "invalid", 0, 0.0, text))
                continue
            kind = str(event.get("type", ""))[:20]
            ev_step = _int(event.get("step"))
            rows.append(_row(self.run_id, self.seq + i, kind, ev_step, _float(event.get("time")), text))
            if kind == "start":
                total = _int(event.get("total_steps")) or total
            if kind == "train" or (kind == "checkpoint" and event.get("resumed")):
                # Not max(): a run resumed from an earlier checkpoint goes back to that step, below
                # where the crashed attempt had got to.
                step = ev_step
            elif kind in ("eval", "done", "checkpoint"):
                step = max(step, ev_step)
            if kind == "train":
                loss = _train_loss(event)
                if math.isfinite(loss):
                    final = loss
        return rows, {"step": step, "total_steps": total, "final_loss": final}


class _Moved(Exception):
    """Run.events_seq was not what this tailer last stored."""


class Superseded(Exception):
    """The run is held by another task (a resumed attempt): this tailer's task may store nothing more."""


def _train_loss(event: dict[str, Any]) -> float:
    """The token-weighted overall loss that the charts draw (channels.overall.loss); `loss`, the plain mean
    of the logging window's per-step losses, only when an event has no channels."""
    channels = event.get("channels")
    overall = channels.get("overall") if isinstance(channels, dict) else None
    if isinstance(overall, dict) and "loss" in overall:
        return _float(overall["loss"], default=math.nan)
    return _float(event.get("loss"), default=math.nan)


def _row(run_id: int, seq: int, kind: str, step: int, time: float, data: str) -> dict[str, Any]:
    return {"run_id": run_id, "seq": seq, "type": kind, "step": step, "time": time, "data": data}


def _float(value: Any, default: float = 0.0) -> float:
    """A JSON number as a finite float; anything else (a string, NaN written as "nan", 1e999) is `default`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return float(value)


def _int(value: Any) -> int:
    return int(_float(value))


def _offset_after_lines(path: Path, n: int) -> int:
    """Byte offset just after the n-th newline (the file's size if it has fewer lines)."""
    if n == 0 or not path.is_file():
        return 0
    with open(path, "rb") as fh:
        seen = pos = 0
        while True:
            block = fh.read(1 << 20)
            if not block:
                log.warning("%s has fewer than %d lines; tailing from its end", path, n)
                return pos
            count = block.count(b"\n")
            if seen + count >= n:
                idx = -1
                for _ in range(n - seen):
                    idx = block.index(b"\n", idx + 1)
                return pos + idx + 1
            seen += count
            pos += len(block)
