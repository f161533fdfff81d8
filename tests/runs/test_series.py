"""Chart series from stored events: channels, downsampling keeping every bucket's min/max, epochs, markers, cache."""

import math
import random

from sqlmodel import Session

from app.models import RunStatus
from app.runs import series
from tests.runs.fake_runs import add_events, make_run, synthetic_events, train_event


def test_downsample_keeps_each_buckets_extremes_against_a_direct_computation():
    rng = random.Random(0)
    n = 10_007
    x = list(range(1, n + 1))
    ys = [rng.gauss(0, 1) if rng.random() > 0.1 else None for _ in range(n)]
    ys[5000] = 99.0  # a spike must survive
    out_x, out = series.downsample(x, {"a": ys}, max_points=2000)
    assert len(out_x) == len(out["a"]) <= 2000
    assert out_x == sorted(out_x)
    buckets = 1000
    for b in range(buckets):
        lo, hi = n * b // buckets, n * (b + 1) // buckets
        raw = [v for v in ys[lo:hi] if v is not None]
        got = [v for v in out["a"][2 * b : 2 * b + 2] if v is not None]
        assert (out_x[2 * b], out_x[2 * b + 1]) == (x[lo], x[hi - 1])
        assert sorted(got) == ([min(raw), max(raw)] if raw else [])
    finite = [v for v in ys if v is not None]
    kept = [v for v in out["a"] if v is not None]
    assert max(kept) == max(finite) == 99.0 and min(kept) == min(finite)


def test_downsample_keeps_order_of_min_and_max_and_small_series_untouched():
    x, out = series.downsample([1, 2, 3, 4], {"a": [5.0, 9.0, 1.0, 2.0]}, max_points=2)
    assert x == [1, 4] and out["a"] == [9.0, 1.0]  # the max came first
    x, out = series.downsample([1, 2, 3], {"a": [1.0, None, 3.0]}, max_points=10)
    assert x == [1, 2, 3] and out["a"] == [1.0, None, 3.0]


def test_series_from_events_channels_eval_epochs_markers():
    events = synthetic_events(25, steps_per_epoch=10, eval_every=5, ckpt_every=10)
    s = series.build(list(enumerate(events)))
    train = [e for e in events if e["type"] == "train"]
    assert s.train.x == [e["step"] for e in train]
    for name in ("overall", "l1/逻辑推理", "l2/分类/", "special"):
        assert s.train.series[name] == [e["channels"][name]["loss"] for e in train]
    assert s.scalars.series["lr"] == [e["lr"] for e in train]
    assert s.eval.x == [5, 10, 15, 20, 25]
    assert s.eval.series["overall"] == [1.5 / k for k in s.eval.x]
    # floor(epoch) changes at steps 10 and 20 (epoch 1.0 and 2.0 are reached there)
    assert s.epochs == [{"step": 10, "epoch": 1}, {"step": 20, "epoch": 2}]
    assert [c["step"] for c in s.checkpoints] == [10, 20] and s.checkpoints[0]["name"] == "step-00000010"
    assert s.warnings == [{"step": 3, "kind": "step_drop", "message": "drop <b>here</b>"}]
    assert s.last_seq == len(events) - 1


def test_missing_channels_and_non_finite_values_become_null():
    a = train_event(1)
    b = train_event(2)
    del b["channels"]["l1/分类"]
    b["channels"]["overall"]["loss"] = "nan"
    c = train_event(3)
    c["channels"]["l1/new"] = {"loss": 1.0, "tokens": 1}
    s = series.build([(0, a), (1, b), (2, c)])
    assert s.train.series["l1/分类"] == [
        a["channels"]["l1/分类"]["loss"],
        None,
        c["channels"]["l1/分类"]["loss"],
    ]
    assert s.train.series["overall"][1] is None
    assert s.train.series["l1/new"] == [None, None, 1.0]
    assert all(len(v) == 3 for v in s.train.series.values())


def test_resumed_run_replaces_the_tail_it_logs_again():
    evs = [train_event(k) for k in (1, 2, 3, 4)] + [train_event(k, t0=5000) for k in (3, 4, 5)]
    s = series.build(list(enumerate(evs)))
    assert s.train.x == [1, 2, 3, 4, 5]
    assert s.scalars.series["tokens_per_s"][-1] == evs[-1]["tokens_per_s"]


def test_cached_series_grows_incrementally_and_matches_a_fresh_build(engine, make_user):
    owner = make_user()
    series.CACHE.clear()
    events = synthetic_events(30, done=False)
    with Session(engine) as session:
        run = make_run(session, owner.id, status=RunStatus.running, events=events[:10])
        first = series.series_payload(session, run)
        assert first["n_train"] == sum(e["type"] == "train" for e in events[:10])
        add_events(session, run, events[10:])
        again = series.series_payload(session, run)
        fresh = series.payload(series.build(list(enumerate(events))))
        assert again == fresh
        assert again["last_seq"] == len(events) - 1
        assert series.series_payload(session, run) is again  # same events_seq: served from the cache


def test_payload_of_a_long_run_is_downsampled_to_the_point_budget():
    events = [train_event(k) for k in range(1, 5001)]
    p = series.payload(series.build(list(enumerate(events))), max_points=2000)
    assert p["n_train"] == 5000
    assert len(p["train"]["x"]) <= 2000
    assert all(len(v) == len(p["train"]["x"]) for v in p["train"]["series"].values())
    raw = [e["channels"]["l1/分类"]["loss"] for e in events]
    assert max(p["train"]["series"]["l1/分类"]) == max(raw)
    assert min(p["train"]["series"]["l1/分类"]) == min(raw)
    assert math.isclose(p["train"]["x"][-1], 5000)


def test_a_broken_stored_row_is_skipped_and_the_rest_drawn(engine, make_user):
    from app.models import RunEvent

    series.CACHE.clear()
    events = synthetic_events(4, done=False)
    with Session(engine) as session:
        run = make_run(session, make_user().id, events=events)
        session.add(
            RunEvent(run_id=run.id, seq=run.job.events_seq, type="train", step=5, data='{"type": "tr')
        )
        run.job.events_seq += 1
        session.add(run)
        session.commit()
        p = series.series_payload(session, run)
    assert p["train"]["x"] == [1, 2, 3, 4] and p["last_seq"] == len(events) - 1


def _crash_and_resume() -> tuple[list[dict], list[dict]]:
    """A run with 10 steps an epoch that died at step 27 and resumed from its checkpoint at step 15."""
    first = synthetic_events(27, steps_per_epoch=10, eval_every=5, ckpt_every=15, done=False)
    first.append({"type": "warning", "step": 26, "kind": "step_drop", "message": "old attempt"})
    resumed = [
        {"type": "checkpoint", "step": 15, "path": "/runs/x/checkpoints/step-00000015", "resumed": True}
    ]
    for step in range(16, 31):
        resumed.append(train_event(step, t0=9000.0))
        if step % 15 == 0:
            resumed.append(
                {"type": "checkpoint", "step": step, "path": f"/runs/x/checkpoints/step-{step:08d}"}
            )
    return first, resumed


def test_a_resume_drops_the_crashed_attempts_curves_and_markers_past_its_step():
    first, resumed = _crash_and_resume()
    s = series.build(list(enumerate(first + resumed)))
    assert s.train.x == list(range(1, 31))
    assert s.train.series["overall"][15:] == [e["loss"] for e in resumed if e["type"] == "train"]
    assert s.eval.x == [5, 10, 15]  # the crashed attempt's evals at 20 and 25 are gone
    # each epoch boundary once, though the crashed attempt had crossed 20 already
    assert s.epochs == [{"step": 10, "epoch": 1}, {"step": 20, "epoch": 2}, {"step": 30, "epoch": 3}]
    assert [(c["step"], c["resumed"]) for c in s.checkpoints] == [(15, False), (15, True), (30, False)]
    assert [w["message"] for w in s.warnings] == ["drop <b>here</b>"]  # the one at step 3 stays


def test_a_resume_right_at_an_epoch_end_still_marks_the_next_boundary():
    first = [train_event(k, steps_per_epoch=10) for k in range(1, 14)]
    resumed = [{"type": "checkpoint", "step": 9, "path": "/c/step-00000009", "resumed": True}]
    resumed += [train_event(k, steps_per_epoch=10) for k in range(10, 16)]
    s = series.build(list(enumerate(first + resumed)))
    assert s.epochs == [{"step": 10, "epoch": 1}]


def test_cached_series_cut_by_a_resume_matches_a_fresh_build(engine, make_user):
    series.CACHE.clear()
    first, resumed = _crash_and_resume()
    with Session(engine) as session:
        run = make_run(session, make_user().id, status=RunStatus.running, events=first)
        series.series_payload(session, run)
        add_events(session, run, resumed[:4])
        series.series_payload(session, run)
        add_events(session, run, resumed[4:])
        cached = series.series_payload(session, run)
    assert cached == series.payload(series.build(list(enumerate(first + resumed))))
    assert cached["last_epoch"] == resumed[-2]["epoch"] and cached["first_epoch"] == 0.1
