"""How trainer metrics events (the lines of metrics.jsonl) become the points of a run's curves.

The one place that reads an event for the charts and for the run's progress numbers:

- a `train` event is a point at its step on the train curves (each channel's loss, see `losses`)
  and on the scalar curves (`SCALARS`, see `scalars`);
- an `eval` event is a point on the eval curves;
- a `checkpoint` event with `resumed: true` starts a resumed attempt, which logs again from that
  step: every point and marker past it belongs to the attempt that crashed and is dropped. A train
  event at or below the last train point does the same (older trainers wrote no resume marker);
- `checkpoint` and `warning` events are markers; an epoch boundary is marked where floor(epoch) of
  the train events grows.

Run.step and Run.final_loss follow the same events through `next_step` and `final_loss`, so the
numbers in the runs list are the last points of the run's charts. The browser gets points already
shaped (app.runs.series), so none of these rules has a copy in static/runs.js.

Values are read defensively: the trainer writes NaN and inf as strings, and a missing or non-numeric
value is a gap (None) in its curve, never an error.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any

# The numbers of a train event drawn as curves besides the channel losses. `loss` is the plain mean
# of the logging window's per-step losses; the token-weighted one is the "overall" channel.
SCALARS = ("loss", "lr", "grad_norm", "tokens_per_s", "supervised_tokens_per_s", "mfu", "step_time")
CHART_TYPES = ("train", "eval", "checkpoint", "warning")  # the event types that change a chart


def number(value: Any) -> float | None:
    """A JSON value as a finite float, else None (the trainer writes NaN/inf as strings).

    >>> number(2), number(0.5), number("nan"), number(True), number(None)
    (2.0, 0.5, None, None, None)
    """
    kind = type(value)  # exact types first: this runs for every number of every event
    if kind is float:
        return value if value - value == 0.0 else None  # NaN and ±inf give NaN
    if kind is int:
        return float(value)
    return None


def step_of(event: dict) -> int:
    """The event's step; 0 when it has none or it is not a finite number."""
    step = event.get("step")
    return step if type(step) is int else int(number(step) or 0)


def is_resume(event: dict) -> bool:
    """Whether the event marks a resumed attempt (which logs again from the checkpoint's step)."""
    return event.get("type") == "checkpoint" and event.get("resumed") is True


def losses(event: dict) -> dict[str, float | None]:
    """A train or eval event's loss per channel ("overall", "l1/<task>", "l2/<task>/<sub>", "special").

    "overall" is always there: the token-weighted overall channel, or the event's `loss` when it has
    no such channel (an older trainer, or an event without channels).

    >>> losses({"loss": 2.0, "channels": {"overall": {"loss": 1.5, "tokens": 9}, "l1/a": {"loss": "nan"}}})
    {'overall': 1.5, 'l1/a': None}
    >>> losses({"loss": 2.0})
    {'overall': 2.0}
    """
    raw = event.get("channels")
    out: dict[str, float | None] = {}
    if type(raw) is dict:
        for name, v in raw.items():
            out[name] = number(v.get("loss")) if type(v) is dict else None
    if "overall" not in out:
        out["overall"] = number(event.get("loss"))
    return out


def scalars(event: dict) -> dict[str, float | None]:
    """A train event's point on each scalar curve (None where it lacks the value)."""
    return {k: number(event.get(k)) for k in SCALARS}


def final_loss(event: dict) -> float | None:
    """The loss a train event reports as the run's latest (Run.final_loss): its point on the overall
    train curve. None for other events, and when that point is missing or not finite (keep the last).
    """
    return losses(event)["overall"] if event.get("type") == "train" else None


def next_step(step: int, event: dict) -> int:
    """The run's step (Run.step, the progress bar) after `event`, from `step` before it.

    A train event or a resume marker sets it, also backwards: a run resumed from an earlier
    checkpoint is back at that step, below where the crashed attempt had got to. Eval, done and
    other checkpoint events only move it forward; the rest leave it.
    """
    kind = event.get("type")
    if kind == "train" or is_resume(event):
        return step_of(event)
    if kind in ("eval", "done", "checkpoint"):
        return max(step, step_of(event))
    return step


@dataclass
class Curves:
    """Points sharing one x array; a channel absent at a step holds None there.

    While events are fed, a channel's list may lag behind x (it is padded when the channel next
    appears, or by `copy`): padding every channel on every event cost more than parsing them.
    """

    x: list[int] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)

    def add(self, step: int, values: dict[str, float | None]) -> None:
        """The point at `step`: a value per channel named in `values`, None for the others."""
        if self.x and step <= self.x[-1]:
            self._cut(step)
        n = len(self.x)
        self.x.append(step)
        series = self.series
        for name, v in values.items():  # the hot path of a cold load: once per channel per event
            ys = series.get(name)
            if ys is None:
                ys = series[name] = [None] * n
            elif len(ys) < n:
                ys.extend([None] * (n - len(ys)))
            ys.append(v)

    def copy(self) -> Curves:
        """A copy with every channel padded to the length of x."""
        return self.tail(None)

    def tail(self, step: int | None) -> Curves:
        """A copy of the points at x >= `step` (all of them for None), every channel padded."""
        n = len(self.x)
        i = 0 if step is None else bisect_left(self.x, step)  # x is sorted: add() cuts what a step repeats
        return Curves(self.x[i:], {k: v[i:] + [None] * (n - max(len(v), i)) for k, v in self.series.items()})

    def _cut(self, step: int) -> None:
        # A resumed run logs again from its checkpoint's step: the newer points replace the older tail.
        keep = bisect_left(self.x, step)
        del self.x[keep:]
        for ys in self.series.values():
            del ys[keep:]

    def cut_after(self, step: int) -> None:
        """Drop the points past `step`."""
        if self.x and self.x[-1] > step:
            self._cut(step + 1)


@dataclass
class RunSeries:
    """Everything the charts draw, from the events with seq <= last_seq fed in seq order."""

    last_seq: int = -1
    train: Curves = field(default_factory=Curves)  # channel losses ("overall", "l1/..", "l2/..", "special")
    scalars: Curves = field(default_factory=Curves)  # SCALARS on the train steps
    eval: Curves = field(default_factory=Curves)
    epochs: list[dict] = field(default_factory=list)  # {"step", "epoch"}: where floor(epoch) changed
    checkpoints: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    _last_epoch: float | None = None
    _first_epoch: float | None = None  # what floor(epoch) was before the first boundary
    # (seq, step) of the events that changed points, each step below all later ones: the lowest step
    # changed after any seq is the first entry past it (see changed_since).
    _changed_seq: list[int] = field(default_factory=list)
    _changed_step: list[int] = field(default_factory=list)

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
            _changed_seq=list(self._changed_seq),
            _changed_step=list(self._changed_step),
        )

    def _changed(self, seq: int, step: int) -> None:
        """Event `seq` added, replaced or removed points from `step` on."""
        steps = self._changed_step
        while steps and steps[-1] >= step:
            steps.pop()
            self._changed_seq.pop()
        steps.append(step)
        self._changed_seq.append(seq)

    def changed_since(self, after: int) -> int | None:
        """The lowest step at which the events after seq `after` changed points; None if none did.

        Every point below it is as it was when event `after` had been fed, so a reader holding the
        curves of then needs only the points from this step on (see `since`).
        """
        i = bisect_right(self._changed_seq, after)
        return self._changed_step[i] if i < len(self._changed_step) else None

    def since(self, after: int) -> tuple[int | None, RunSeries]:
        """`changed_since(after)` and a copy holding only the points from that step on (and every marker)."""
        step = self.changed_since(after)
        part = RunSeries(
            last_seq=self.last_seq,
            epochs=list(self.epochs),
            checkpoints=list(self.checkpoints),
            warnings=list(self.warnings),
            _last_epoch=self._last_epoch,
            _first_epoch=self._first_epoch,
        )
        if step is not None:
            part.train, part.scalars, part.eval = (
                self.train.tail(step),
                self.scalars.tail(step),
                self.eval.tail(step),
            )
        return step, part

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
        step = step_of(event)
        if kind == "train":
            self._changed(seq, step)
            if self.train.x and step <= self.train.x[-1]:
                self.rewind(step - 1)  # steps went back without a resume marker (older trainers)
            self.train.add(step, losses(event))
            self.scalars.add(step, scalars(event))
            epoch = number(event.get("epoch"))
            if epoch is not None:
                if self._first_epoch is None:
                    self._first_epoch = epoch
                last = self._last_epoch
                if last is not None and math.floor(epoch) > math.floor(last):
                    self.epochs.append({"step": step, "epoch": math.floor(epoch)})
                self._last_epoch = epoch
        elif kind == "eval":
            self._changed(seq, step)  # replaces the eval points from its step on, if any
            self.eval.add(step, losses(event))
        elif kind == "checkpoint":
            resumed = is_resume(event)
            if resumed:
                self._changed(seq, step + 1)
                self.rewind(step)
            path = str(event.get("path") or "")
            self.checkpoints.append(
                {"step": step, "name": path.rstrip("/").rsplit("/", 1)[-1], "resumed": resumed}
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
