"""A run's stored events turned into chart series: x = optimizer step, one y array per channel.

Which points an event makes is app.runs.curves' business; this module reads the stored events,
keeps their parsed curves per run, and answers the run page's JSON: every curve downsampled for the
first load (`series_payload`), then only the points changed since the seq the page holds
(`series_since`), so the page applies points and never reads an event itself.

Why two caches: a long run holds ~100,000 train events of ~11 channels, and parsing them all takes
~2 s where a run page may take 200 ms. Parsed curves are kept per run in this process and extended
with only the events stored since (seq > the last one parsed), and the downsampled payload is kept
per (run_id, events_seq), so a repeated request costs one small query. A process that has not parsed
the run yet (just started, or the run was evicted) starts from the run's series file
(app.runs.series_store, kept current by the worker as it stores events) and parses only the events
stored after it; when the file covers every stored chart event, the first payload is the one kept in
it, without reading its columns or building the Python lists at all.

Downsampling keeps every series' shape: the points are cut into buckets of consecutive steps and
each bucket keeps its minimum and its maximum (in the order they occurred) at the bucket's first
and last step, so spikes survive and all series still share one x array, as uPlot wants.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import orjson
from sqlmodel import Session, col, select

from app.models import Run, RunEvent
from app.runs import series_store
from app.runs.curves import CHART_TYPES, RunSeries
from app.runs.series_store import REFRESH_EVERY, Stored

log = logging.getLogger(__name__)

MAX_POINTS = 2000  # per series, after downsampling
_CACHED_RUNS = 16
T = TypeVar("T")


Points = Sequence[float | None] | np.ndarray  # a channel's values: None or NaN where it has no point


def downsample(
    x: Sequence[int] | np.ndarray, series: Mapping[str, Points], max_points: int = MAX_POINTS
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
        return [int(v) for v in x], {k: _listed(v) for k, v in series.items()}
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


def _listed(ys: Points) -> list[float | None]:
    if isinstance(ys, np.ndarray):
        return [None if v != v else v for v in ys.tolist()]
    return list(ys)


def payload(s: RunSeries | Stored, *, max_points: int = MAX_POINTS) -> dict:
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


def _read(session: Session, run: Run, read: Callable[[RunSeries], T]) -> T:
    """`read` of the run's parsed series, after feeding it only the events newer than what this
    process already parsed. `read` runs under the lock, so it must copy what it returns."""
    assert run.id is not None
    key = _key(run)
    while True:
        with CACHE.lock:
            cached = CACHE.runs.get(key)
        if cached is None or cached.last_seq >= run.job.events_seq > 0:
            built = _build(session, run)  # nobody else holds it yet: built outside the lock
            with CACHE.lock:
                _keep(key, built)
                return read(built)
        with _no_gc():
            fresh = _load_since(session, run.id, cached.last_seq)
        with CACHE.lock, _no_gc():
            current = CACHE.runs.get(key)
            if current is None or current.last_seq < cached.last_seq:
                continue  # evicted or rebuilt meanwhile: `fresh` may not start where it ends
            # Another request may have extended it meanwhile: feed only what it has not seen.
            for seq, event in fresh:
                if seq > current.last_seq:
                    current.feed(seq, event)
            _keep(key, current)
            return read(current)


def _keep(key: tuple, s: RunSeries) -> None:
    """Cache `s` as the run's series, evicting the least recently read runs (call under the lock)."""
    CACHE.runs[key] = s
    CACHE.runs.move_to_end(key)
    while len(CACHE.runs) > _CACHED_RUNS:
        old, _ = CACHE.runs.popitem(last=False)
        CACHE.payloads.pop(old, None)


def _build(session: Session, run: Run) -> RunSeries:
    assert run.id is not None
    return catch_up(
        session,
        run_id=run.id,
        key=series_store.key_of(run.id, run.created_at),
        run_dir=run.run_dir,
        events_seq=run.job.events_seq,
        save_after=REFRESH_EVERY,
    )


def catch_up(
    session: Session, *, run_id: int, key: list, run_dir: str | None, events_seq: int, save_after: int
) -> RunSeries:
    """The run's series from its file and the chart events stored after it; the file is rewritten
    when at least `save_after` (and at least one) of those events were fed.

    The worker's sink calls this as it stores events (save_after=1 every REFRESH_EVERY events); a
    web process that had to parse a long tail (the file of a run stored by a crashed worker lags)
    writes it too, so the next fresh process does not.
    """
    path = series_store.path_of(run_dir)
    stored = series_store.load(path, key, before=events_seq) if path else None
    s = stored.to_series() if stored else RunSeries()
    with _no_gc():
        fresh = _load_since(session, run_id, s.last_seq)
        for seq, event in fresh:
            s.feed(seq, event)
    if path and fresh and len(fresh) >= save_after:
        keep_file(path, key, s)
    return s


def keep_file(path: Path, key: list, s: RunSeries) -> None:
    """The run's file from `s`, with the first-load payload drawn from its columns (~30 ms, where
    drawing it from the lists takes ~200 ms)."""
    try:
        stored = series_store.columns(s)
        first = orjson.dumps(payload(stored))
    except (OverflowError, TypeError) as exc:  # a step past int64; orjson: an int past 64 bits
        log.info("series of run %s not kept: %s", key[0], exc)
        return
    series_store.save(path, key, stored, payload=first)


def _first_from_file(session: Session, run: Run) -> dict | None:
    """The first-load payload kept in the run's file when it covers every stored chart event, else None."""
    assert run.id is not None
    path = series_store.path_of(run.run_dir)
    kept = path and series_store.load_payload(
        path, series_store.key_of(run.id, run.created_at), before=run.job.events_seq
    )
    if not kept:
        return None
    last_seq, data = kept
    newer = session.exec(
        select(RunEvent.seq)
        .where(RunEvent.run_id == run.id, RunEvent.seq > last_seq, col(RunEvent.type).in_(CHART_TYPES))
        .limit(1)
    ).first()
    return orjson.loads(data) if newer is None else None


def run_series(session: Session, run: Run) -> RunSeries:
    """The run's parsed series, reading only events newer than what this process already parsed.

    Returns a snapshot (copied under the lock), so a caller can read it while another request
    extends the cached one.
    """
    return _read(session, run, RunSeries.snapshot)


def series_since(session: Session, run: Run, *, after: int, max_points: int = MAX_POINTS) -> dict:
    """What the run page's poll applies to the curves it holds, which it drew from events up to seq `after`.

    `from_step`: the lowest step at which the events stored since changed a point (None: none did).
    The reader drops its points from that step on and appends the ones here, which are every point
    from that step on (downsampled like the first load's). Markers come whole: they are few.
    """
    step, part = _read(session, run, lambda s: s.since(after))
    # Every event below the job's events_seq was stored before the series was read, so the next poll may
    # start past the non-chart ones too (a start event is then reported once).
    last_seq = max(part.last_seq, run.job.events_seq - 1)
    return {**payload(part, max_points=max_points), "last_seq": last_seq, "from_step": step}


def series_payload(session: Session, run: Run) -> dict:
    """The charts' JSON for a run, recomputed only when new events were stored (events_seq moved)."""
    key = _key(run)
    with CACHE.lock:
        hit = CACHE.payloads.get(key)
    if hit is not None and hit[0] == run.job.events_seq:
        return hit[1]
    with CACHE.lock:
        parsed = key in CACHE.runs
    # Not parsed in this process yet: a current file holds this very payload, where building the
    # lists from its columns would take ~100 ms (a later poll builds them, once).
    data = None if parsed else _first_from_file(session, run)
    if data is None:
        data = payload(run_series(session, run))
    with CACHE.lock:
        CACHE.payloads[key] = (run.job.events_seq, data)
    return data
