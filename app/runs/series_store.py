"""A run's parsed chart series kept on disk, so that a fresh process's first load reads columns
instead of parsing every stored event.

Why: a run that logged every step holds ~100,000 train events of ~11 channels; parsing their JSON
takes ~2 s, far over the 200 ms a run page may take, and app.runs.series' in-process cache is empty
after every restart and holds only a few runs. `series.bin` in the run directory holds all that a
RunSeries keeps (app.runs.curves): each curve's x (int64) and one float64 column per channel, NaN
where the channel has no point (a curve never holds NaN: `number()` makes it a gap), the markers,
and `last_seq`, the last chart event it has fed; plus the first-load payload drawn from them, so
that the first load of a run whose file is current reads ~0.5 MB instead of ~17 MB. A reader that
needs the curves loads the columns and feeds only the events stored after `last_seq`.

Exactly once and crash-safe because the file is a pure function of the stored events up to
`last_seq`: the tailer stores line k of metrics.jsonl as seq k and never rewrites a stored line, so
whoever writes the file (the worker's sink as it stores events, or a web process that had to parse a
long tail) writes the same content for the same seq. It is written beside and renamed into place,
so a reader sees a whole file or the one before it. A file past the stored events (written in a
tailer's transaction that then rolled back) is ignored until the events catch up; one that cannot
be read is treated as absent.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import orjson

from app.runs.curves import Curves, RunSeries

log = logging.getLogger(__name__)

FILE = "series.bin"
MAGIC = b"SFTLSER1"
_HEAD = struct.Struct("<8sQ")  # MAGIC, the header's length
# Chart events fed past the file before it is written again: bounds what a cold load parses (about
# 25 ms of parsing) while a 100,000-event run rewrites it only ~50 times.
REFRESH_EVERY = 2000
# Bump when RunSeries' meaning or the payload's shape (app.runs.series.MAX_POINTS) changes: older
# files are then ignored, and rewritten by the next reader or writer.
_FORMAT = 1
_PARTS = ("train", "scalars", "eval")


@dataclass
class Columns:
    """A Curves as arrays: x, and one float64 column per channel (NaN: no point)."""

    x: np.ndarray
    series: dict[str, np.ndarray]

    def to_curves(self) -> Curves:
        return Curves(self.x.tolist(), {k: _with_none(v) for k, v in self.series.items()})


@dataclass
class Stored:
    """A RunSeries as read from the file; the fields mirror RunSeries' so `series.payload` reads either."""

    last_seq: int
    train: Columns
    scalars: Columns
    eval: Columns
    epochs: list[dict] = field(default_factory=list)
    checkpoints: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    _last_epoch: float | None = None
    _first_epoch: float | None = None
    changed_seq: list[int] = field(default_factory=list)
    changed_step: list[int] = field(default_factory=list)

    def to_series(self) -> RunSeries:
        """The RunSeries that feeding the same events would have built, ready to be fed further."""
        return RunSeries(
            last_seq=self.last_seq,
            train=self.train.to_curves(),
            scalars=self.scalars.to_curves(),
            eval=self.eval.to_curves(),
            epochs=self.epochs,
            checkpoints=self.checkpoints,
            warnings=self.warnings,
            _last_epoch=self._last_epoch,
            _first_epoch=self._first_epoch,
            _changed_seq=self.changed_seq,
            _changed_step=self.changed_step,
        )


def _with_none(a: np.ndarray) -> list[float | None]:
    # tolist() then patching the gaps: ~4x faster than going through an object array, as most
    # channels have few gaps.
    out: list[float | None] = a.tolist()
    for i in np.flatnonzero(np.isnan(a)).tolist():
        out[i] = None
    return out


def path_of(run_dir: str | None) -> Path | None:
    """Where a run's file lives; None for a run without a directory (never started)."""
    return Path(run_dir) / FILE if run_dir else None


def key_of(run_id: int, created_at: object) -> list:
    """What names the run in its file: a run id can name another run in another database (a restored
    backup, a test), so its creation time comes too."""
    return [run_id, str(created_at)]


def columns(s: RunSeries) -> Stored:
    """`s` as columns; OverflowError for a step past int64, which no column holds."""
    parts = {}
    for part in _PARTS:
        curves: Curves = getattr(s, part)
        n = len(curves.x)
        parts[part] = Columns(
            np.array(curves.x, dtype=np.int64),
            # A channel's list may lag behind x while events are fed: the rest are gaps.
            {k: np.array(ys + [None] * (n - len(ys)), dtype=np.float64) for k, ys in curves.series.items()},
        )
    return Stored(
        last_seq=s.last_seq,
        train=parts["train"],
        scalars=parts["scalars"],
        eval=parts["eval"],
        epochs=list(s.epochs),
        checkpoints=list(s.checkpoints),
        warnings=list(s.warnings),
        _last_epoch=s._last_epoch,
        _first_epoch=s._first_epoch,
        changed_seq=list(s._changed_seq),
        changed_step=list(s._changed_step),
    )


def save(path: Path, key: list, s: Stored, *, payload: bytes) -> bool:
    """Write `s` and its first-load `payload` (JSON) as the run's file, beside and then renamed into
    place; False if it could not be written.

    Layout: MAGIC, the header's length, the header (JSON: key, last_seq, markers, where each array
    lies), the payload, then the arrays' raw bytes, so that a reader needing only the payload never
    reads the columns, and one that needs the columns reads them in one go (no zip, no copies).
    """
    arrays = {f"{part}.x": getattr(s, part).x for part in _PARTS}
    names = {part: list(getattr(s, part).series) for part in _PARTS}
    for part in _PARTS:
        arrays.update({f"{part}.{i}": a for i, a in enumerate(getattr(s, part).series.values())})
    table, offset = {}, 0
    for name, a in arrays.items():
        table[name] = [a.dtype.str, offset, a.size]
        offset += a.nbytes
    meta = {
        "format": _FORMAT,
        "key": key,
        "last_seq": s.last_seq,
        "names": names,
        "arrays": table,
        "payload": len(payload),
        "epochs": s.epochs,
        "checkpoints": s.checkpoints,
        "warnings": s.warnings,
        "last_epoch": s._last_epoch,
        "first_epoch": s._first_epoch,
        "changed_seq": s.changed_seq,
        "changed_step": s.changed_step,
    }
    try:
        head = orjson.dumps(meta)
    except TypeError as exc:  # orjson's encode error: an int past 64 bits in a marker
        log.info("series of run %s not kept: %s", key[0], exc)
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(_HEAD.pack(MAGIC, len(head)))
            fh.write(head)
            fh.write(payload)
            for a in arrays.values():
                fh.write(np.ascontiguousarray(a).tobytes())
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("series of run %s not written to %s: %s", key[0], path, exc)
        tmp.unlink(missing_ok=True)
        return False
    return True


def _header(fh: BinaryIO, key: list, before: int) -> dict | None:
    magic, size = _HEAD.unpack(fh.read(_HEAD.size))
    if magic != MAGIC:
        raise ValueError("not a series file")
    meta = orjson.loads(fh.read(size))
    if meta["format"] != _FORMAT or meta["key"] != key or meta["last_seq"] >= before:
        return None
    return meta


def load_payload(path: Path, key: list, *, before: int) -> tuple[int, bytes] | None:
    """(last_seq, the first-load payload's JSON) of the run's file, reading none of its columns;
    None where `load` would give None."""
    try:
        with open(path, "rb") as fh:
            meta = _header(fh, key, before)
            if meta is None:
                return None
            data = fh.read(meta["payload"])
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - a cache that cannot be read is no cache: parse instead
        log.warning("series file %s unreadable, ignored: %s", path, exc)
        return None
    return int(meta["last_seq"]), data


def load(path: Path, key: list, *, before: int) -> Stored | None:
    """The run's file if it is this run's and covers only stored events (those with seq < `before`,
    the job's events_seq); None otherwise (also when it cannot be read: then the events are parsed)."""
    try:
        with open(path, "rb") as fh:
            meta = _header(fh, key, before)
            if meta is None:
                return None
            fh.seek(meta["payload"], os.SEEK_CUR)
            raw = fh.read()
        arrays = {
            name: np.frombuffer(raw, dtype=np.dtype(dtype), count=count, offset=offset)
            for name, (dtype, offset, count) in meta["arrays"].items()
        }
        parts = {
            part: Columns(
                arrays[f"{part}.x"],
                {name: arrays[f"{part}.{i}"] for i, name in enumerate(meta["names"][part])},
            )
            for part in _PARTS
        }
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - a cache that cannot be read is no cache: parse instead
        log.warning("series file %s unreadable, ignored: %s", path, exc)
        return None
    return Stored(
        last_seq=int(meta["last_seq"]),
        train=parts["train"],
        scalars=parts["scalars"],
        eval=parts["eval"],
        epochs=meta["epochs"],
        checkpoints=meta["checkpoints"],
        warnings=meta["warnings"],
        _last_epoch=meta["last_epoch"],
        _first_epoch=meta["first_epoch"],
        changed_seq=meta["changed_seq"],
        changed_step=meta["changed_step"],
    )
