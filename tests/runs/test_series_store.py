"""The run's series file gives exactly the curves that parsing every stored event gives, kept by the tailer's sink."""

import json
from pathlib import Path

import orjson
import pytest
from sqlmodel import Session

from app.models import Role, Run, User
from app.runs import series, series_store
from app.runs.curves import RunSeries
from tests.runs.fake_runs import add_events, insert_run, synthetic_events, train_event
from tests.tailing import race as race_tailers
from worker.kinds.train import run_tailer


def realistic_events() -> list[dict]:
    """A run with what the file must keep exactly: channels that appear mid-run and skip steps, NaN and
    inf losses (written as strings, as the trainer does), evals, epochs, warnings, a resume from an
    earlier checkpoint, then steps that go back without a marker (an older trainer restarting)."""
    events = synthetic_events(12, steps_per_epoch=4, eval_every=3, ckpt_every=4, done=False)
    for step in range(13, 31):
        e = train_event(step, steps_per_epoch=4)
        if step % 3 == 0:
            del e["channels"]["l1/分类"]  # a gap in one channel
        if step >= 20:
            e["channels"]["l1/新任务"] = {"loss": 0.1 * step, "tokens": 5}  # a channel from step 20 on
        if step == 17:
            e["loss"], e["channels"]["overall"]["loss"], e["grad_norm"] = "nan", "inf", "-inf"
        events.append(e)
        if step % 5 == 0:
            events.append({"type": "eval", "step": step, "loss": 1.0 / step})
    events.append({"type": "warning", "step": 25, "kind": "loss_spike", "message": "spike"})
    events.append({"type": "checkpoint", "step": 16, "path": "/r/checkpoints/step-00000016", "resumed": True})
    for step in range(17, 26):
        events.append(train_event(step, steps_per_epoch=4, t0=5000.0))
    events.append({"type": "eval", "step": 20, "loss": 0.5})
    for step in range(22, 28):
        e = train_event(step, steps_per_epoch=4, t0=9000.0)
        if step >= 24:
            e["channels"]["l2/新任务/"] = {"loss": 0.2 * step, "tokens": 5}  # mid-run, and kept
        if step == 26:
            e["loss"], e["channels"]["overall"]["loss"], e["grad_norm"] = "nan", "inf", "-inf"
        events.append(e)
    events.append({"type": "done", "step": 27})
    return events


def parsed(events: list[dict]) -> list[tuple[int, dict]]:
    """(seq, event) as the web reads them back: the chart events, through JSON."""
    return [(i, orjson.loads(json.dumps(e))) for i, e in enumerate(events) if e["type"] in series.CHART_TYPES]


KEY = [1, "2026-01-01 00:00:00"]


def test_a_file_written_at_any_seq_then_fed_the_rest_equals_parsing_every_event(tmp_path):
    events = parsed(realistic_events())
    whole = series.build(events)
    # The case is real: a channel only the crashed attempt had (all gaps now), one from step 24 on.
    assert set(whole.train.series["l1/新任务"]) == {None} and whole.train.series["l2/新任务/"][-1] == 0.2 * 27
    assert whole.train.x == list(range(1, 28)) and whole.eval.x == [3, 6, 9, 12, 15, 20]
    assert whole.train.series["overall"][25] is None and whole.scalars.series["grad_norm"][25] is None
    path = tmp_path / series_store.FILE
    for cut in range(len(events) + 1):
        series.keep_file(path, KEY, series.build(events[:cut]))
        stored = series_store.load(path, KEY, before=len(realistic_events()))
        assert stored is not None
        first = series.payload(series.build(events[:cut]))
        assert series.payload(stored) == first, cut
        assert series_store.load_payload(path, KEY, before=len(realistic_events())) == (
            stored.last_seq,
            orjson.dumps(first),
        )
        s = stored.to_series()
        for seq, event in events[cut:]:
            s.feed(seq, event)
        assert s.snapshot() == whole, cut
        assert series.payload(s.snapshot()) == series.payload(whole)
        for after in (-1, cut - 1, len(events) // 2):
            assert s.since(after)[0] == whole.since(after)[0]


def test_the_columns_payload_equals_the_lists_payload_when_downsampled(tmp_path):
    events = [(i, train_event(i + 1)) for i in range(5000)]
    for _, event in events[::7]:
        event["channels"]["special"] = {"loss": "nan"}  # gaps the downsampling must see as gaps
    whole = series.build(events)
    path = tmp_path / series_store.FILE
    series.keep_file(path, KEY, whole)
    stored = series_store.load(path, KEY, before=len(events))
    assert stored is not None
    assert series.payload(stored, max_points=500) == series.payload(whole, max_points=500)


def test_a_file_of_another_run_past_the_stored_events_or_unreadable_is_ignored(tmp_path):
    s = series.build(parsed(realistic_events()))
    path = tmp_path / series_store.FILE
    series.keep_file(path, KEY, s)
    assert series_store.load(path, KEY, before=s.last_seq + 1) is not None
    assert series_store.load(path, KEY, before=s.last_seq) is None  # a rolled-back transaction wrote it
    assert series_store.load(path, [1, "another time"], before=10**6) is None
    assert series_store.load_payload(path, [1, "another time"], before=10**6) is None
    path.write_bytes(path.read_bytes()[:-8])  # cut short
    assert series_store.load(path, KEY, before=10**6) is None
    path.write_bytes(b"not a series file at all")
    assert series_store.load(path, KEY, before=10**6) is None
    assert series_store.load_payload(path, KEY, before=10**6) is None
    assert series_store.load(tmp_path / "none.npz", KEY, before=10**6) is None


def test_a_step_past_int64_keeps_no_file_instead_of_failing(tmp_path):
    s = series.build([(0, {"type": "train", "step": 1e30, "loss": 1.0})])
    series.keep_file(tmp_path / series_store.FILE, KEY, s)
    assert not (tmp_path / series_store.FILE).exists()


def write(path: Path, events: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for e in events:
            fh.write(json.dumps(e, ensure_ascii=False) + "\n")


def expected(events: list[dict]) -> dict:
    return series.payload(series.build(parsed(events)))


@pytest.fixture
def small_refresh(monkeypatch) -> int:
    """Files rewritten every 10 chart events, so a short run exercises what a long one does."""
    monkeypatch.setattr("worker.kinds.train.REFRESH_EVERY", 10)
    monkeypatch.setattr("app.runs.series.REFRESH_EVERY", 10)
    return 10


def test_the_tailers_sink_keeps_the_file_through_a_crash_so_a_cold_process_parses_nothing(
    engine, make_user, tmp_path, small_refresh, monkeypatch
):
    events = realistic_events()
    with Session(engine) as s:
        run_id = insert_run(s, owner_id=make_user().id, run_dir=str(tmp_path)).id
    metrics = tmp_path / "metrics.jsonl"
    write(metrics, events[:40])
    t = run_tailer(engine, run_id, metrics)
    t.poll()
    write(metrics, events[40:])
    run_tailer(engine, run_id, metrics).poll()  # the first tailer "crashed"; a new one resyncs
    with Session(engine) as s:
        run = s.get_one(Run, run_id)
        assert run.job.events_seq == len(events)
        stored = series_store.load(
            tmp_path / series_store.FILE, series_store.key_of(run_id, run.created_at), before=len(events)
        )
        assert stored is not None and stored.last_seq == len(events) - 2  # the last chart event
        want = expected(events)
        series.CACHE.clear()
        monkeypatch.setattr(RunSeries, "feed", _no_feed)
        assert series.series_payload(s, run) == want


def _no_feed(self, seq, event):  # noqa: ANN001
    raise AssertionError(f"event {seq} parsed although the file covers it")


def test_a_cold_process_feeds_only_the_events_after_the_file_and_writes_a_long_tail_back(
    engine, make_user, tmp_path, small_refresh, monkeypatch
):
    events = realistic_events()
    with Session(engine) as s:
        run = insert_run(s, owner_id=make_user().id, run_dir=str(tmp_path))
        add_events(s, run, events[:20])  # stored by something that kept no file (an older worker)
        series.CACHE.clear()
        assert series.series_payload(s, run) == expected(events[:20])
        path = tmp_path / series_store.FILE
        assert path.exists()  # the web process wrote what it had to parse
        add_events(s, run, events[20:25])
        before = path.stat().st_mtime_ns
        want = expected(events[:25])
        fed: list[int] = []
        feed = RunSeries.feed
        monkeypatch.setattr(RunSeries, "feed", lambda self, seq, e: (fed.append(seq), feed(self, seq, e)))
        series.CACHE.clear()
        assert series.series_payload(s, run) == want
        assert fed == [i for i in range(20, 25) if events[i]["type"] in series.CHART_TYPES]
        assert path.stat().st_mtime_ns == before  # 5 events past the file: not worth a rewrite
        held = series.series_payload(s, run)["last_seq"]
        add_events(s, run, events[25:])
        series.CACHE.clear()
        part = series.series_since(s, run, after=held)
    whole = series.build(parsed(events))
    step, want = whole.since(held)
    assert part["from_step"] == step
    assert part["train"] == series.payload(want)["train"] and part["eval"] == series.payload(want)["eval"]


def test_a_file_ahead_of_the_stored_events_gives_the_stored_events_curves(engine, make_user, tmp_path):
    events = realistic_events()
    with Session(engine) as s:
        run = insert_run(s, owner_id=make_user().id, run_dir=str(tmp_path))
        key = series_store.key_of(run.id, run.created_at)
        series.keep_file(tmp_path / series_store.FILE, key, series.build(parsed(events)))
        add_events(s, run, events[:30])
        series.CACHE.clear()
        assert series.series_payload(s, run) == expected(events[:30])


def race_and_check(engine, run_id: int, run_dir: Path, monkeypatch) -> None:  # noqa: ANN001
    """Two tailers that crash at random store a run written line by line; then a cold process's first
    load is the file's payload (no event parsed) and equals parsing every stored event."""
    events = realistic_events() + [train_event(step, steps_per_epoch=4) for step in range(28, 60)]
    events.append(events.pop(len(realistic_events()) - 1))  # the done event last
    metrics = run_dir / "metrics.jsonl"
    lines = [json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in events]
    race_tailers(metrics, lines, lambda: run_tailer(engine, run_id, metrics), seed=3)
    want = expected(events)
    with Session(engine) as s:
        run = s.get_one(Run, run_id)
        assert run.job.events_seq == len(events)
        series.CACHE.clear()
        monkeypatch.setattr(RunSeries, "feed", _no_feed)
        assert series.series_payload(s, run) == want


def test_racing_crashing_tailers_keep_the_file_exact(engine, make_user, tmp_path, small_refresh, monkeypatch):
    with Session(engine) as s:
        run_id = insert_run(s, owner_id=make_user().id, run_dir=str(tmp_path)).id
    race_and_check(engine, run_id, tmp_path, monkeypatch)


@pytest.mark.postgres
def test_racing_crashing_tailers_keep_the_file_exact_on_postgresql(pg, tmp_path, small_refresh, monkeypatch):
    engine, _ = pg
    with Session(engine) as s:
        owner = User(username="owner", role=Role.researcher, password_hash="x")
        s.add(owner)
        s.commit()
        run_id = insert_run(s, owner_id=owner.id, run_dir=str(tmp_path)).id
    race_and_check(engine, run_id, tmp_path, monkeypatch)


def test_a_series_file_that_cannot_be_kept_never_stops_events_being_stored(
    engine, make_user, tmp_path, monkeypatch
):
    def broken(*args, **kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("app.runs.series.catch_up", broken)
    with Session(engine) as s:
        run_id = insert_run(s, owner_id=make_user().id, run_dir=str(tmp_path)).id
    events = realistic_events()
    write(tmp_path / "metrics.jsonl", events)
    assert run_tailer(engine, run_id, tmp_path / "metrics.jsonl").poll() == len(events)
    with Session(engine) as s:
        run = s.get_one(Run, run_id)
        assert run.job.events_seq == len(events)
        series.CACHE.clear()
        monkeypatch.undo()
        assert series.series_payload(s, run) == expected(events)
