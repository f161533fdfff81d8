"""metrics.jsonl events and the warning detectors.

One JSON object a line, written and flushed (and fsynced) per event by rank 0 only, so the worker and the
web page can tail the file safely and nothing is lost when the process dies. Event types:
start, train, eval, checkpoint, warning, error, done (see TRAINER_CONTRACT.md).

The detectors are plain classes fed with numbers, unit-tested on synthetic series:
- RisingEvalLoss: eval loss rising across K consecutive evals. In SFT that points to a bug in the training
  code or the data rather than to "hard data".
- StepDropDetector: a step-shaped drop of the train loss right after an epoch boundary, the sign that the
  model memorised the first epoch.
- non-finite loss: `check_finite` raises NonFiniteLoss; the loop writes an error event and stops.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

EVENT_TYPES = ("start", "train", "eval", "checkpoint", "warning", "error", "done")


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite: training stops with an error event."""


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf: write them as strings so a reader never chokes on a line.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class MetricsWriter:
    """Appends events to run_dir/metrics.jsonl; a no-op on ranks other than 0."""

    def __init__(self, run_dir: str | Path, *, rank: int = 0, echo: bool = False):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.rank = rank
        self.echo = echo
        self._fh = None
        if rank == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run

    def write(self, type: str, **fields: Any) -> dict | None:
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}")
        if self._fh is None:
            return None
        event = {"type": type, **_clean(fields)}
        event.setdefault("time", time.time())
        line = json.dumps(event, ensure_ascii=False, allow_nan=False)
        self._fh.write(line + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        if self.echo:
            print(_short(event), flush=True)
        return event

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _short(event: dict) -> str:
    t = event["type"]
    if t == "train":
        return (
            f"step {event['step']} epoch {event['epoch']:.3f} loss {event['loss']:.4f} lr {event['lr']:.3g} "
            f"gnorm {event['grad_norm']:.3f} tok/s {event['tokens_per_s']:.0f} "
            f"sup tok/s {event['supervised_tokens_per_s']:.0f} pack {event['packing_efficiency']:.3f}"
            + (f" mfu {event['mfu']:.4f}" if event.get("mfu") is not None else "")
        )
    if t == "eval":
        return f"eval step {event['step']} loss {event['loss']:.4f}"
    if t == "start":
        return f"start: {event.get('total_steps')} steps, counts {event.get('counts_per_task')}"
    return json.dumps({k: v for k, v in event.items() if k != "config"}, ensure_ascii=False)


def read_events(path: str | Path) -> list[dict]:
    """Parse a metrics.jsonl; a trailing partial line (writer killed mid-line) is ignored."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def check_finite(loss: float, step: int) -> None:
    if not math.isfinite(loss):
        raise NonFiniteLoss(f"non-finite loss {loss} at step {step}")


class RisingEvalLoss:
    """Warn when the eval loss rose at each of the last K evals; once per rising streak."""

    def __init__(self, k: int = 3):
        self.k = k
        self.history: list[float] = []
        self.streak = 0

    def observe(self, loss: float) -> str | None:
        if self.history and loss > self.history[-1]:
            self.streak += 1
        else:
            self.streak = 0
        self.history.append(loss)
        if self.streak == self.k:
            tail = self.history[-(self.k + 1) :]
            return (
                f"eval loss rose across {self.k} consecutive evals: "
                + " -> ".join(f"{x:.4f}" for x in tail)
                + "; in SFT this points to a bug in code or data"
            )
        return None


class StepDropDetector:
    """Flag a step-shaped drop of the train loss at an epoch boundary.

    Compares the mean loss of the `window` steps just before a boundary with the `window` steps just after.
    A drop counts when it is larger than `ratio` of the loss before it AND clearly larger (3x) than the
    decrease over the previous window, so that an ordinary falling curve does not trigger it.
    """

    def __init__(self, window: int = 5, ratio: float = 0.15):
        self.window = window
        self.ratio = ratio
        self.losses: list[tuple[int, float, float]] = []  # (step, epoch, loss)
        self.boundaries: list[int] = []  # index into losses of the first step of a new epoch
        self._checked: set[int] = set()

    def observe(self, step: int, epoch: float, loss: float) -> str | None:
        if self.losses and math.floor(epoch - 1e-9) > math.floor(self.losses[-1][1] - 1e-9):
            self.boundaries.append(len(self.losses))
        self.losses.append((step, epoch, loss))
        w = self.window
        for b in self.boundaries:
            if b in self._checked or len(self.losses) < b + w:
                continue
            self._checked.add(b)
            if b < 2 * w:
                continue
            vals = [x[2] for x in self.losses]
            prev = sum(vals[b - 2 * w : b - w]) / w
            before = sum(vals[b - w : b]) / w
            after = sum(vals[b : b + w]) / w
            drop = before - after
            trend = max(prev - before, 0.0)
            if drop > self.ratio * abs(before) and drop > 3 * trend:
                return (
                    f"step-shaped loss drop at the epoch boundary (step {self.losses[b][0]}): "
                    f"{before:.4f} -> {after:.4f} over {w} steps, against {trend:.4f} in the {w} steps "
                    "before; the model is memorising the first epoch"
                )
        return None
