"""Copies a job's growing events file (JSON lines) into the database, every line exactly once.

A line's seq is its 0-based index in the file. Each poll stores the complete lines after the last stored
one (a partial last line waits for its newline) and moves Job.events_seq in the same transaction, guarded
by `WHERE events_seq = <what we read>`; with a unique (owner, seq) on the events table that makes a second
tailer, or one restarted after a crash, unable to store a line twice: it rolls back and resynchronises
from the database.

Where the lines go is the job kind's Sink: a run's go to RunEvent and move its step and final loss; other
kinds' to JobEvent. The executor's tailer also names its task: the UPDATE is fenced on `task_id`, so a
stale worker (its job taken over by a resumed attempt) stores nothing and learns it through `Superseded`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.models import Job, JobEvent

log = logging.getLogger("sftlab.jobs")

READ_LIMIT = 8 * 1024 * 1024  # bytes per poll, unless one line is longer: a backlog takes several polls


class Line:
    """One complete line of the events file: its seq, text, and the JSON object (None if it is not one)."""

    __slots__ = ("seq", "text", "event")

    def __init__(self, seq: int, raw: bytes):
        self.seq = seq
        self.text = raw.decode("utf-8", errors="replace")
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            event = None
        self.event: dict[str, Any] | None = event if isinstance(event, dict) else None

    @property
    def type(self) -> str:
        return "invalid" if self.event is None else str(self.event.get("type", ""))[:20]


class Sink(Protocol):
    """Where a job kind's events go; both methods run inside the tailer's transaction."""

    def sync(self, conn: Connection) -> None:
        """Reload whatever state `store` carries between polls (after a crash or a lost race)."""

    def store(self, conn: Connection, lines: list[Line]) -> None:
        """Insert the lines (a duplicate seq must raise IntegrityError) and update what they change."""


class JobEventSink:
    """Lines into JobEvent; an event `{"type": "progress", "done": d, "total": t}` moves the job's progress."""

    def __init__(self, job_id: int):
        self.job_id = job_id

    def sync(self, conn: Connection) -> None:
        return None

    def store(self, conn: Connection, lines: list[Line]) -> None:
        rows = [{"job_id": self.job_id, "seq": ln.seq, "type": ln.type, "data": ln.text} for ln in lines]
        conn.execute(insert(JobEvent), rows)
        progress = [ln.event for ln in lines if ln.event is not None and ln.type == "progress"]
        if progress:
            values = self.progress_values(progress[-1])
            conn.execute(update(Job).where(col(Job.id) == self.job_id).values(**values))

    def progress_values(self, last: dict) -> dict[str, float]:
        """The job's progress columns from the latest progress event (a subclass counts in other units)."""
        values = {"progress_done": as_float(last.get("done"))}
        if "total" in last:
            values["progress_total"] = as_float(last.get("total"))
        return values


class Tailer:
    """One job's events file -> its sink; `poll()` stores what is new and returns how many lines."""

    def __init__(
        self, engine: Engine, job_id: int, path: str | Path, sink: Sink, *, task_id: str | None = None
    ):
        self.engine = engine
        self.job_id = job_id
        self.path = Path(path)
        self.sink = sink
        self.task_id = task_id  # None: store whoever holds the job
        self.offset: int | None = None  # byte offset after the last stored line; None: resync first
        self.seq = 0

    def _sync(self) -> None:
        """Read where the database stands and find that line's byte offset in the file."""
        with self.engine.connect() as conn:
            seq, holder = conn.execute(
                select(col(Job.events_seq), col(Job.task_id)).where(col(Job.id) == self.job_id)
            ).one()
            if self.task_id is not None and holder != self.task_id:
                raise Superseded(f"job {self.job_id} is now held by task {holder!r}, not {self.task_id!r}")
            self.sink.sync(conn)
        self.seq = seq
        self.offset = offset_after_lines(self.path, self.seq)

    def _read(self) -> bytes:
        """From the offset: READ_LIMIT bytes, or up to the end of a first line longer than that."""
        assert self.offset is not None
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(READ_LIMIT)
            if b"\n" not in chunk:
                # Stopping here would leave this line, and every line after it, unstored for good.
                while more := fh.read(READ_LIMIT):
                    chunk += more
                    if b"\n" in more:
                        break
            return chunk

    def pending(self) -> bool:
        """Whether complete lines wait to be stored (always True before a resync has placed the tailer)."""
        if self.offset is None:
            return True
        try:
            return b"\n" in self._read()
        except FileNotFoundError:
            return False

    def poll(self) -> int:
        """Store the complete lines written since the last poll; returns how many were stored."""
        if self.offset is None:
            self._sync()
        assert self.offset is not None
        try:
            chunk = self._read()
        except FileNotFoundError:
            return 0
        end = chunk.rfind(b"\n")
        if end < 0:
            return 0  # nothing, or only the start of a line still being written
        lines = [Line(self.seq + i, raw) for i, raw in enumerate(chunk[: end + 1].split(b"\n")[:-1])]
        fence = [col(Job.events_seq) == self.seq]
        if self.task_id is not None:
            fence.append(col(Job.task_id) == self.task_id)
        try:
            with self.engine.begin() as conn:
                moved = conn.execute(
                    update(Job)
                    .where(col(Job.id) == self.job_id, *fence)
                    .values(events_seq=self.seq + len(lines))
                )
                if moved.rowcount != 1:
                    raise _Moved
                self.sink.store(conn, lines)
        except (_Moved, IntegrityError):
            # Someone else stored these lines (another tailer, or ours before a crash), or another task
            # holds the job now: start over from the DB, whose resync says which.
            log.info("job %s: events moved under the tailer; resynchronising", self.job_id)
            self.offset = None
            return 0
        self.offset += end + 1
        self.seq += len(lines)
        return len(lines)


class _Moved(Exception):
    """Job.events_seq was not what this tailer last stored."""


class Superseded(Exception):
    """The job is held by another task (a resumed attempt): this tailer's task may store nothing more."""


def as_float(value: Any, default: float = 0.0) -> float:
    """A JSON number as a finite float; anything else (a string, NaN written as "nan", 1e999) is `default`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return float(value)


def offset_after_lines(path: Path, n: int) -> int:
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
