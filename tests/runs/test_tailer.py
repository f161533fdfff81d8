"""The tailer stores each metrics.jsonl line once, for the task holding the run, with the step and loss the charts show."""

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from app.models import Role, Run, RunEvent, User
from tests.runs.fake_runs import insert_run, synthetic_events
from tests.tailing import race as race_tailers
from worker.kinds.train import run_tailer as Tailer
from worker.tailer import Superseded


def make_run(engine, owner_id: int, run_dir: Path) -> int:
    with Session(engine) as s:
        return insert_run(s, owner_id=owner_id, name="t", run_dir=str(run_dir)).id


@pytest.fixture
def run(engine, make_user, tmp_path) -> tuple[int, Path]:
    owner = make_user()
    return make_run(engine, owner.id, tmp_path), tmp_path / "metrics.jsonl"


N_EVENTS = 600


def event(kind: str, **fields) -> bytes:
    return json.dumps({"type": kind, "time": 1700000000.5, **fields}, ensure_ascii=False).encode() + b"\n"


def stored(engine, run_id: int) -> list[RunEvent]:
    with Session(engine) as s:
        return list(s.exec(select(RunEvent).where(RunEvent.run_id == run_id).order_by(RunEvent.seq)))


def test_a_partial_last_line_waits_for_its_newline(engine, run):
    run_id, path = run
    start = event("start", total_steps=5, config={})
    train = event("train", step=1, loss=2.5, channels={"l1/逻辑推理": {"loss": 2.0, "tokens": 3}})
    path.write_bytes(start + train[:20])
    t = Tailer(engine, run_id, path)
    assert t.poll() == 1
    assert t.poll() == 0
    with open(path, "ab") as fh:
        fh.write(train[20:] + event("train", step=2, loss=1.5))
    assert t.poll() == 2
    rows = stored(engine, run_id)
    assert [(r.seq, r.type, r.step) for r in rows] == [(0, "start", 0), (1, "train", 1), (2, "train", 2)]
    assert rows[1].data.encode() + b"\n" == train and rows[0].time == 1700000000.5
    with Session(engine) as s:
        r = s.get(Run, run_id)
        assert (r.job.events_seq, r.step, r.total_steps, r.final_loss) == (3, 2, 5, 1.5)


def test_a_restarted_tailer_stores_nothing_twice(engine, run):
    run_id, path = run
    path.write_bytes(b"".join(event("train", step=i, loss=1.0) for i in range(1, 4)))
    first = Tailer(engine, run_id, path)
    assert first.poll() == 3
    with open(path, "ab") as fh:
        fh.write(event("train", step=4, loss=0.5) + event("done", step=4))
    # The worker died after storing 3 lines; a new tailer (fresh memory) continues from the database.
    assert Tailer(engine, run_id, path).poll() == 2
    # The old one still believes it stands at line 3: it must not store lines 3-4 again.
    assert first.poll() == 0 and first.poll() == 0
    assert [r.seq for r in stored(engine, run_id)] == [0, 1, 2, 3, 4]
    with Session(engine) as s:
        assert s.get(Run, run_id).step == 4


def test_unparsable_lines_and_odd_values_keep_their_seq(engine, run):
    run_id, path = run
    odd = b'{"type": "train", "step": "7", "loss": "nan", "time": "soon"}\n'
    path.write_bytes(
        event("train", step=1, loss=1.0) + b"{not json\n" + b"[1, 2]\n" + odd + event("done", step=1)
    )
    assert Tailer(engine, run_id, path).poll() == 5
    rows = stored(engine, run_id)
    assert [(r.seq, r.type, r.step) for r in rows] == [
        (0, "train", 1),
        (1, "invalid", 0),
        (2, "invalid", 0),
        (3, "train", 0),
        (4, "done", 1),
    ]
    assert rows[1].data == "{not json" and rows[3].time == 0.0
    with Session(engine) as s:
        assert s.get(Run, run_id).final_loss == 1.0  # the "nan" loss did not replace it


def progress(engine, run_id: int) -> tuple[int, float | None]:
    with Session(engine) as s:
        r = s.get(Run, run_id)
        return r.step, r.final_loss


def test_a_run_resumed_from_an_earlier_checkpoint_shows_the_step_it_is_at(engine, run):
    run_id, path = run
    # The first attempt got to step 7 and saved at step 4; the resumed one restarts from step 4.
    path.write_bytes(
        b"".join(event("train", step=i, loss=1.0) for i in range(1, 8))
        + event("checkpoint", step=4, path="/c/step-4", resumed=True)
    )
    t = Tailer(engine, run_id, path)
    assert t.poll() == 8
    assert progress(engine, run_id)[0] == 4
    with open(path, "ab") as fh:
        fh.write(event("train", step=5, loss=0.9) + event("eval", step=5, loss=1.2))
    assert t.poll() == 2
    assert progress(engine, run_id)[0] == 5
    # An ordinary checkpoint, an eval or done never move it back.
    with open(path, "ab") as fh:
        fh.write(event("checkpoint", step=3, path="/c/step-3") + event("done", step=5))
    assert t.poll() == 2
    assert progress(engine, run_id)[0] == 5


def test_final_loss_is_the_overall_curve_of_the_charts(engine, run):
    run_id, path = run
    events = synthetic_events(12)
    for e in events:
        if e["type"] == "train":  # the plain mean of the logging window, unlike the token-weighted channel
            e["loss"] = e["channels"]["overall"]["loss"] + 0.5
    path.write_bytes(b"".join(json.dumps(e).encode() + b"\n" for e in events))
    assert Tailer(engine, run_id, path).poll() == len(events)
    last = [e for e in events if e["type"] == "train"][-1]
    assert progress(engine, run_id)[1] == pytest.approx(last["channels"]["overall"]["loss"])
    # An event without channels (an older trainer) still gives its loss.
    with open(path, "ab") as fh:
        fh.write(event("train", step=13, loss=0.25))
    assert Tailer(engine, run_id, path).poll() == 1
    assert progress(engine, run_id) == (13, 0.25)


def test_a_tailer_of_a_task_that_no_longer_holds_the_run_stores_nothing(engine, run):
    run_id, path = run
    with Session(engine) as s:
        r = s.get(Run, run_id)
        r.job.task_id = "resumed"
        s.add(r)
        s.commit()
    path.write_bytes(event("train", step=1, loss=1.0))
    assert Tailer(engine, run_id, path, task_id="resumed").poll() == 1
    stale = Tailer(engine, run_id, path, task_id="first")
    with pytest.raises(Superseded, match="held by task 'resumed'"):
        stale.poll()
    # Placed before the takeover, it learns at its next write.
    ours = Tailer(engine, run_id, path, task_id="resumed")
    assert ours.poll() == 0
    ours.task_id = "first"
    with open(path, "ab") as fh:
        fh.write(event("train", step=2, loss=0.5))
    assert ours.poll() == 0
    with pytest.raises(Superseded):
        ours.poll()
    assert [r.seq for r in stored(engine, run_id)] == [0]


def race(engine, run_id: int, path: Path) -> None:
    """A writer splitting lines at random bytes, and two tailers that crash and restart at random."""
    lines = [
        event("train", step=i + 1, loss=1.0, channels={"overall": {"loss": 1.0 / (i + 1)}})
        for i in range(N_EVENTS)
    ]
    race_tailers(path, lines, lambda: Tailer(engine, run_id, path), seed=7)
    check_exactly_once(engine, run_id, path, N_EVENTS)


def check_exactly_once(engine, run_id: int, path: Path, n_events: int) -> None:
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == n_events  # counted from the file itself
    rows = stored(engine, run_id)
    assert [r.seq for r in rows] == list(range(n_events))
    assert [r.data.encode() for r in rows] == lines[:-1]
    with Session(engine) as s:
        r = s.get(Run, run_id)
        assert r.job.events_seq == n_events and r.step == n_events
        assert r.final_loss == pytest.approx(1.0 / n_events)


def test_exactly_once_under_a_writer_and_crashing_racing_tailers(engine, run):
    race(engine, *run)


@pytest.mark.postgres
def test_exactly_once_on_postgresql(pg, tmp_path):
    """Same race under PostgreSQL's READ COMMITTED: the losing tailer's guarded UPDATE matches no row."""
    engine, _ = pg
    with Session(engine) as s:
        owner = User(username="owner", role=Role.researcher, password_hash="x")
        s.add(owner)
        s.commit()
        owner_id = owner.id
    run_id = make_run(engine, owner_id, tmp_path)
    race(engine, run_id, tmp_path / "metrics.jsonl")
