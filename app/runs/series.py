"""A run's stored events turned into chart series: x = optimizer step, one y array per channel.

Why a cache: a long run holds ~10,000 train events of ~10 channels each, and parsing them all on
every page poll would cost more than the 200 ms a run page may take. Parsed arrays are kept per run
and extended with only the events stored since (seq > the last one parsed), and the downsampled
payload is kept per (run_id, events_seq), so a repeated request costs one small query.

Downsampling keeps every series' shape: the points are cut into buckets of consecutive steps and
each bucket keeps its minimum and its maximum (in the order they occurred) at the bucket's first
and last step, so spikes survive and all series still share one x array, as uPlot wants.
"""

from __future__ import annotations

import gc
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from sqlmodel import Session, col, select

from app.models import Run, RunEvent

MAX_POINTS = 2000  # per series, after downsampling
SCALARS = ("loss", "lr", "grad_norm", "tokens_per_s", "supervised_tokens_per_s", "mfu", "step_time")
CHART_TYPES = ("train", "eval", "checkpoint", "warning")
_CACHED_RUNS = 16


def number(value: Any) -> float | None:
    """A JSON value as a finite float, else None (the trainer writes NaN/inf as strings)."""
    kind = type(value)  # exact types first: this runs for every number of every event
    if kind is float:
        return value if value - value == 0.0 else None  # NaN and ±inf give NaN
    if kind is int:
        return float(value)
    return None


@dataclass
class Curves:
    """Points sharing one x array; a channel absent at a step holds None there.

    While events are fed, a channel's list may lag behind x (it is padded when the channel next
    appears, or by `copy`): padding every channel on every event cost more than parsing them.
    """

    x: list[int] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)

    def add(self, step: int, values: dict[str, float | None]) -> None:
        n = self.start(step)
        for name, v in values.items():
            self.put(n, name, v)

    def start(self, step: int) -> int:
        """Open the point at `step`; returns its index for `put`."""
        if self.x and step <= self.x[-1]:
            self._cut(step)
        self.x.append(step)
        return len(self.x) - 1

    def put(self, n: int, name: str, v: float | None) -> None:
        ys = self.series.get(name)
        if ys is None:
            ys = self.series[name] = [None] * n
        elif len(ys) < n:
            ys.extend([None] * (n - len(ys)))
        ys.append(v)

    def copy(self) -> Curves:
        """A copy with every channel padded to the length of x."""
        n = len(self.x)
        return Curves(list(self.x), {k: v + [None] * (n - len(v)) for k, v in self.series.items()})

    def _cut(self, step: int) -> None:
        # A resumed run logs again from its checkpoint's step: the newer points replace the older tail.
        keep = next((i for i, s in enumerate(self.x) if s >= step), len(self.x))
        del self.x[keep:]
        for ys in self.series.values():
            del ys[keep:]

    def cut_after(self, step: int) -> None:
        """Drop the points past `step`."""
        if self.x and self.x[-1] > step:
            self._cut(step + 1)


@dataclass
class RunSeries:
    """Everything the charts draw, parsed from events with seq <= last_seq."""

    last_seq: int = -1
    train: Curves = field(default_factory=Curves)  # channel losses ("overall", "l1/..", "l2/..", "special")
    scalars: Curves = field(default_factory=Curves)  # lr, grad_norm, tokens/s, ... on the train steps
    eval: Curves = field(default_factory=Curves)
    epochs: list[dict] = field(default_factory=list)  # {"step", "epoch"}: where floor(epoch) changed
    checkpoints: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    _last_epoch: float | None = None
    _first_epoch: float | None = None  # what floor(epoch) was before the first boundary

    def snapshot(self) -> RunSeries:
        return RunSeries(
            last_seq=self.last_seq,
            train=self.train.copy(),
            scalars=self.scalars.copy(),
            eval=self.eval.copy(),
            epochs=list(self.epochs),
            checkpoints=list(self.checkpoints),
            warnings=list(self.warnings),
            _last_epoch=self._last_epoch,
            _first_epoch=self._first_epoch,
        )

    def rewind(self, step: int) -> None:
        """Forget everything past `step`: a resumed attempt logs those steps again.

        Curves, epoch boundaries, checkpoint and warning markers of the attempt that crashed would
        otherwise be drawn beside (or twice with) the new attempt's.
        """
        for curves in (self.train, self.scalars, self.eval):
            curves.cut_after(step)
        self.epochs = [e for e in self.epochs if e["step"] <= step]
        self.checkpoints = [c for c in self.checkpoints if c["step"] <= step]
        self.warnings = [w for w in self.warnings if w["step"] <= step]
        # floor(epoch) at the last point kept: its latest boundary, else where the run began.
        if not self.train.x:
            self._last_epoch = self._first_epoch = None
        elif self.epochs:
            self._last_epoch = float(self.epochs[-1]["epoch"])
        else:
            self._last_epoch = self._first_epoch

    def feed(self, seq: int, event: dict) -> None:
        kind = event.get("type")
        step = event.get("step")
        step = step if type(step) is int else int(number(step) or 0)
        if kind == "train":
            if self.train.x and step <= self.train.x[-1]:
                self.rewind(step - 1)  # steps went back without a resume marker (older trainers)
            # The hot path of a cold load (every train event): values go straight into the lists.
            n = self.train.start(step)
            put = self.train.put
            raw = event.get("channels")
            if type(raw) is dict:
                for name, v in raw.items():
                    put(n, name, number(v.get("loss")) if type(v) is dict else None)
            if type(raw) is not dict or "overall" not in raw:
                put(n, "overall", number(event.get("loss")))
            n = self.scalars.start(step)
            put = self.scalars.put
            for k in SCALARS:
                put(n, k, number(event.get(k)))
            epoch = number(event.get("epoch"))
            if epoch is not None:
                if self._first_epoch is None:
                    self._first_epoch = epoch
                last = self._last_epoch
                if last is not None and math.floor(epoch) > math.floor(last):
                    self.epochs.append({"step": step, "epoch": math.floor(epoch)})
                self._last_epoch = epoch
        elif kind == "eval":
            values = _channels(event)
            values.setdefault("overall", number(event.get("loss")))
            self.eval.add(step, values)
        elif kind == "checkpoint":
            if event.get("resumed") is True:
                self.rewind(step)
            path = str(event.get("path") or "")
            self.checkpoints.append(
                {
                    "step": step,
                    "name": path.rstrip("/").rsplit("/", 1)[-1],
                    "resumed": bool(event.get("resumed")),
                }
            )
        elif kind == "warning":
            self.warnings.append(
                {
                    "step": step,
                    "kind": str(event.get("kind") or ""),
                    "message": str(event.get("message") or ""),
                }
            )
        self.last_seq = max(self.last_seq, seq)


def _channels(event: dict) -> dict[str, float | None]:
    raw = event.get("channels")
    out: dict[str, float | None] = {}
    if isinstance(raw, dict):
        for name, v in raw.items():
            out[name] = number(v.get("loss")) if type(v) is dict else None
    if "overall" not in out and "loss" in event:
        out["overall"] = number(event.get("loss"))
    return out


def downsample(
    x: list[int], series: dict[str, list[float | None]], max_points: int = MAX_POINTS
) -> tuple[list[int], dict[str, list[float | None]]]:
    """Min/max per bucket: at most `max_points` points per series, sharing one x array.

    Each bucket of consecutive points becomes two points, at its first and its last step; a series
    takes its bucket minimum and maximum there, in the order they occurred, so the extremes of every
    bucket (and hence of the whole series) are kept exactly.

    >>> downsample([1, 2, 3, 4], {"a": [5.0, 1.0, 9.0, 2.0]}, max_points=2)
    ([1, 4], {'a': [1.0, 9.0]})
    """
    n = len(x)
    if n <= max_points:
        return list(x), {k: list(v) for k, v in series.items()}
    buckets = max(1, max_points // 2)
    starts = np.arange(buckets, dtype=np.int64) * n // buckets  # every bucket holds >= 2 points
    ends = np.append(starts[1:], n) - 1
    xs = np.asarray(x, dtype=np.int64)
    out_x = np.empty(2 * buckets, dtype=np.int64)
    out_x[0::2], out_x[1::2] = xs[starts], xs[ends]
    bucket_of = np.repeat(np.arange(buckets), np.diff(np.append(starts, n)))
    index = np.arange(n)
    out: dict[str, list[float | None]] = {}
    for name, ys in series.items():
        a = np.array(ys, dtype=np.float64)  # None -> NaN
        missing = np.isnan(a)
        lows = np.minimum.reduceat(np.where(missing, np.inf, a), starts)
        highs = np.maximum.reduceat(np.where(missing, -np.inf, a), starts)
        # Where in its bucket each extreme first occurs decides which of the two comes first.
        at_low = np.minimum.reduceat(np.where(a == lows[bucket_of], index, n), starts)
        at_high = np.minimum.reduceat(np.where(a == highs[bucket_of], index, n), starts)
        low_first = at_low <= at_high
        pts = np.empty(2 * buckets, dtype=np.float64)
        pts[0::2] = np.where(low_first, lows, highs)
        pts[1::2] = np.where(low_first, highs, lows)
        pts[np.repeat(np.isinf(lows), 2)] = np.nan  # a bucket without any value
        out[name] = [None if v != v else v for v in pts.tolist()]
    return out_x.tolist(), out


def payload(s: RunSeries, *, max_points: int = MAX_POINTS) -> dict:
    """The JSON the run page draws from (train, scalars and eval downsampled separately)."""
    tx, ts = downsample(s.train.x, s.train.series, max_points)
    sx, ss = downsample(s.scalars.x, s.scalars.series, max_points)
    ex, es = downsample(s.eval.x, s.eval.series, max_points)
    return {
        "last_seq": s.last_seq,
        "n_train": len(s.train.x),
        "n_eval": len(s.eval.x),
        "train": {"x": tx, "series": ts},
        "scalars": {"x": sx, "series": ss},
        "eval": {"x": ex, "series": es},
        "epochs": s.epochs,
        "last_epoch": s._last_epoch,
        "first_epoch": s._first_epoch,
        "checkpoints": s.checkpoints,
        "warnings": s.warnings,
    }


def build(events: list[tuple[int, dict]]) -> RunSeries:
    """RunSeries from (seq, event) pairs in seq order: what tests compare the cached path with."""
    s = RunSeries()
    for seq, event in events:
        s.feed(seq, event)
    return s.snapshot()


class _Cache:
    """Parsed series per run (extended incrementally) and the last payload per (run_id, events_seq)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: OrderedDict[tuple, RunSeries] = OrderedDict()
        self.payloads: dict[tuple, tuple[int, dict]] = {}

    def clear(self) -> None:
        with self.lock:
            self.runs.clear()
            self.payloads.clear()


CACHE = _Cache()


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small containers.

    Parsing 10,000 events creates ~300,000 dicts and lists, each allocation counting towards a
    collection that then walks them all again: measured to double the parse time. None of them
    forms a cycle, so nothing is lost by collecting later.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _load_since(session: Session, run_id: int, after: int) -> list[tuple[int, dict]]:
    rows = session.exec(
        select(RunEvent.seq, RunEvent.data)  # type: ignore[call-overload]
        .where(RunEvent.run_id == run_id, RunEvent.seq > after, col(RunEvent.type).in_(CHART_TYPES))
        .order_by(col(RunEvent.seq))
    ).all()
    try:
        # One parse of all rows joined into an array: measured faster than a loads() per row.
        events = orjson.loads("[" + ",".join(data for _, data in rows) + "]")
    except orjson.JSONDecodeError:
        events = [_loads_or_none(data) for _, data in rows]  # some row is broken: skip only that one
    return [(seq, ev) for (seq, _), ev in zip(rows, events, strict=True) if isinstance(ev, dict)]


def _loads_or_none(data: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _key(run: Run) -> tuple:
    # created_at too: a run id can name another run in another database (tests, a restored backup).
    return (run.id, str(run.created_at))


def run_series(session: Session, run: Run) -> RunSeries:
    """The run's parsed series, reading only events newer than what this process already parsed.

    Returns a snapshot (copied under the lock), so a caller can read it while another request
    extends the cached one.
    """
    assert run.id is not None
    key = _key(run)
    with CACHE.lock:
        cached = CACHE.runs.get(key)
    reset = cached is None or cached.last_seq >= run.job.events_seq > 0
    after = -1 if reset or cached is None else cached.last_seq
    with _no_gc():
        fresh = _load_since(session, run.id, after)
    with CACHE.lock, _no_gc():
        current = CACHE.runs.get(key)
        if reset or current is None:
            current = RunSeries()
        # Another request may have extended it meanwhile: feed only what it has not seen.
        for seq, event in fresh:
            if seq > current.last_seq:
                current.feed(seq, event)
        CACHE.runs[key] = current
        CACHE.runs.move_to_end(key)
        while len(CACHE.runs) > _CACHED_RUNS:
            old, _ = CACHE.runs.popitem(last=False)
            CACHE.payloads.pop(old, None)
        return current.snapshot()


def series_payload(session: Session, run: Run) -> dict:
    """The charts' JSON for a run, recomputed only when new events were stored (events_seq moved)."""
    key = _key(run)
    with CACHE.lock:
        hit = CACHE.payloads.get(key)
    if hit is not None and hit[0] == run.job.events_seq:
        return hit[1]
    data = payload(run_series(session, run))
    with CACHE.lock:
        CACHE.payloads[key] = (run.job.events_seq, data)
    return data
