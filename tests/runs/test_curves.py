"""Events -> curve points, run step and final loss agree with direct readings of the events, and polled points rebuild the full curves."""

import random

import pytest
from sqlmodel import Session

from app.models import RunStatus
from app.runs import curves, series
from tests.runs.fake_runs import add_events, make_run, synthetic_events, train_event

STEP_SETTERS = ("eval", "done", "checkpoint")


def _resumed_run() -> list[dict]:
    """Crashed at step 17 after a checkpoint at 10, resumed from it; then steps went back once more
    without a marker (an older trainer restarted at step 20)."""
    first = synthetic_events(17, steps_per_epoch=10, eval_every=5, ckpt_every=10, done=False)
    first.append({"type": "warning", "step": 16, "kind": "step_drop", "message": "old attempt"})
    again = [{"type": "checkpoint", "step": 10, "path": "/runs/x/checkpoints/step-00000010", "resumed": True}]
    for step in range(11, 26):
        again.append(train_event(step, t0=9000.0))
        if step % 5 == 0:
            again.append({"type": "eval", "step": step, "loss": 3.0 / step})
    older = [train_event(step, t0=20000.0) for step in range(20, 31)]
    older.append({"type": "done", "step": 30})
    return first + again + older


def _kept(events: list[dict], kind: str) -> list[dict]:
    """The `kind` events a chart keeps: those that no later event logs again or takes back.

    A later train event at a step <= s logs s again (and drops every curve past it); a later eval
    at a step <= s replaces the evals from there; a later resume marker at a step < s drops s.
    """
    kept = []
    for i, e in enumerate(events):
        if e["type"] != kind:
            continue
        s = e["step"]
        later = events[i + 1 :]
        if any(x["type"] == "train" and x["step"] <= s for x in later):
            continue
        if kind == "eval" and any(x["type"] == "eval" and x["step"] <= s for x in later):
            continue
        if any(x["type"] == "checkpoint" and x.get("resumed") and x["step"] < s for x in later):
            continue
        kept.append(e)
    return kept


@pytest.mark.parametrize("events", [synthetic_events(25), _resumed_run()], ids=["plain", "resumed"])
def test_curves_hold_the_kept_events_values(events):
    s = series.build(list(enumerate(events)))
    train, evals = _kept(events, "train"), _kept(events, "eval")
    assert s.train.x == s.scalars.x == [e["step"] for e in train]
    for name in {n for e in train for n in e["channels"]}:
        assert s.train.series[name] == [e["channels"][name]["loss"] for e in train]
    for key in curves.SCALARS:
        assert s.scalars.series[key] == [e[key] for e in train]
    assert s.eval.x == [e["step"] for e in evals]
    assert s.eval.series["overall"] == [e["loss"] for e in evals]


def test_losses_take_the_overall_channel_and_loss_only_without_it():
    event = train_event(3)
    event["loss"] += 0.5  # the plain window mean differs from the token-weighted channel
    assert curves.losses(event) == {k: v["loss"] for k, v in event["channels"].items()}
    assert curves.final_loss(event) == event["channels"]["overall"]["loss"]
    no_channels = {"type": "train", "step": 1, "loss": 0.25}
    assert curves.losses(no_channels) == {"overall": 0.25} and curves.final_loss(no_channels) == 0.25
    broken = train_event(4)
    broken["channels"]["overall"]["loss"] = "nan"
    broken["channels"]["special"] = "not a channel"
    assert curves.losses(broken)["overall"] is None and curves.losses(broken)["special"] is None
    assert curves.final_loss(broken) is None  # a non-finite loss keeps the last one
    assert curves.final_loss({"type": "eval", "step": 5, "loss": 1.0}) is None
    assert curves.scalars({"lr": 1e-4, "mfu": "inf", "grad_norm": True}) == {
        "loss": None,
        "lr": 1e-4,
        "grad_norm": None,
        "tokens_per_s": None,
        "supervised_tokens_per_s": None,
        "mfu": None,
        "step_time": None,
    }


def _expected_step(events: list[dict]) -> int:
    """Run.step after these events: the latest train event or resume marker sets it, and the eval,
    done and checkpoint events after that raise it."""
    setters = [i for i, e in enumerate(events) if e["type"] == "train" or e.get("resumed") is True]
    start = setters[-1] if setters else -1
    base = events[start]["step"] if setters else 0
    return max([base] + [e["step"] for e in events[start + 1 :] if e["type"] in STEP_SETTERS])


def _expected_final_loss(events: list[dict]) -> float | None:
    losses = [e["channels"]["overall"]["loss"] for e in events if e["type"] == "train"]
    return losses[-1] if losses else None


@pytest.mark.parametrize("events", [synthetic_events(25), _resumed_run()], ids=["plain", "resumed"])
def test_run_step_and_final_loss_folded_over_events_match_a_direct_reading(events):
    step, final = 0, None
    for i, event in enumerate(events):
        step = curves.next_step(step, event)
        final = loss if (loss := curves.final_loss(event)) is not None else final
        assert step == _expected_step(events[: i + 1]), (i, event)
        assert final == _expected_final_loss(events[: i + 1])
    assert final == series.build(list(enumerate(events))).train.series["overall"][-1]


def _apply(held: dict, answer: dict) -> dict:
    """What static/runs.js does with a poll's answer: splice each curve at from_step, take the markers."""
    out = {"last_seq": answer["last_seq"]}
    for part in ("train", "scalars", "eval"):
        x, ys = list(held[part]["x"]), {k: list(v) for k, v in held[part]["series"].items()}
        if answer["from_step"] is not None:
            keep = next((i for i, s in enumerate(x) if s >= answer["from_step"]), len(x))
            new = answer[part]
            x = x[:keep] + new["x"]
            names = set(ys) | set(new["series"])
            ys = {
                k: (ys.get(k, [None] * keep)[:keep] + new["series"].get(k, [None] * len(new["x"])))
                for k in names
            }
        out[part] = {"x": x, "series": ys}
    for marker in ("epochs", "checkpoints", "warnings"):
        out[marker] = answer[marker]
    return out


def _drawn(p: dict) -> dict:
    return {k: p[k] for k in ("last_seq", "train", "scalars", "eval", "epochs", "checkpoints", "warnings")}


@pytest.mark.parametrize("events", [synthetic_events(25), _resumed_run()], ids=["plain", "resumed"])
def test_polled_points_turn_the_curves_held_at_any_seq_into_those_of_any_later_one(events):
    rng = random.Random(1)
    for b in range(len(events)):
        now = series.build(list(enumerate(events[: b + 1])))
        for a in {b - 1, rng.randrange(-1, b)}:
            held = series.payload(series.build(list(enumerate(events[: a + 1]))))
            step, part = now.since(a)
            assert step == now.changed_since(a)
            got = _apply(held, {**series.payload(part), "from_step": step})
            assert _drawn(got) == _drawn(series.payload(now)), (a, b)


def test_changed_since_is_the_lowest_step_the_later_events_touch():
    events = _resumed_run()
    s = series.build(list(enumerate(events)))
    for after in range(-1, len(events)):
        touched = [
            e["step"] + 1 if e.get("resumed") is True else e["step"]
            for e in events[after + 1 :]
            if e["type"] in ("train", "eval") or e.get("resumed") is True
        ]
        assert s.changed_since(after) == (min(touched) if touched else None), after


def test_series_since_on_the_cached_run_matches_a_fresh_build(engine, make_user):
    series.CACHE.clear()
    events = _resumed_run()
    with Session(engine) as session:
        run = make_run(session, make_user().id, status=RunStatus.running, events=events[:20])
        held = series.series_payload(session, run)
        for upto in (30, 45, len(events)):
            add_events(session, run, events[run.job.events_seq : upto])
            answer = series.series_since(session, run, after=held["last_seq"])
            assert answer["last_seq"] == upto - 1  # also past non-chart events (the final done)
            held = _apply(held, answer)
    fresh = series.payload(series.build(list(enumerate(events))))
    assert {**_drawn(held), "last_seq": None} == {**_drawn(fresh), "last_seq": None}
