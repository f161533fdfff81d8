"""The runs list: rows with datasets and key hyperparameters, filters, and sorts (in SQL, before the limit) with empty values last."""

from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import Session

from app.models import Role, RunStatus, User, utcnow
from app.runs.listing import RunFilter, list_runs
from tests.runs.fake_runs import make_run, synthetic_events


def test_rows_filters_and_sorts(engine, make_user, pclue_dataset):
    alice = make_user(username="alice")
    bob = make_user(username="bob")
    ds = pclue_dataset.dataset_id
    with Session(engine) as session:
        a = make_run(
            session,
            alice.id,
            name="lr small",
            events=synthetic_events(5),
            datasets=[(ds, 1, "train")],
            train={"lr": 1e-5, "epochs": 2.0},
        )
        b = make_run(
            session,
            bob.id,
            name="lr big",
            status=RunStatus.failed,
            events=synthetic_events(8),
            train={"lr": 1e-3},
        )
        c = make_run(session, bob.id, name="queued one", status=RunStatus.queued)
        c.job.started_at = None
        a.job.started_at, a.job.finished_at = utcnow() - timedelta(seconds=50), utcnow()
        b.job.started_at, b.job.finished_at = utcnow() - timedelta(seconds=10), utcnow()
        session.add_all([a, b, c])
        session.commit()
        rows = list_runs(session)
        by_name = {r["name"]: r for r in rows}
        assert by_name["lr small"]["datasets"] == [
            {"dataset_id": ds, "version": 1, "role": "train", "name": "pclue"}
        ]
        assert by_name["lr small"]["params"]["lr"] == 1e-5 and by_name["lr small"]["params"]["epochs"] == 2.0
        assert by_name["lr big"]["owner"] == "bob" and by_name["lr big"]["final_loss"] is not None
        assert [r["name"] for r in rows] == ["queued one", "lr big", "lr small"]  # newest first

        def names(**kw):
            return [r["name"] for r in list_runs(session, flt=RunFilter(**kw))]

        assert names(status="failed") == ["lr big"]
        assert names(owner="bob") == ["queued one", "lr big"]
        assert names(dataset=ds) == ["lr small"]
        assert names(q="LR") == ["lr big", "lr small"]
        assert names(sort="duration", desc=True) == ["lr small", "lr big", "queued one"]  # not started: last
        assert names(sort="duration", desc=False) == ["lr big", "lr small", "queued one"]
        losses = {r["name"]: r["final_loss"] for r in rows}
        by_loss = sorted((n for n in losses if losses[n] is not None), key=lambda n: losses[n])
        assert names(sort="final_loss", desc=False) == by_loss + ["queued one"]


def test_sorts_pick_from_all_runs_not_only_the_newest(engine, make_user):
    """With more runs than the limit, the best loss / highest step / first name comes from all of them."""
    owner = make_user().id
    with Session(engine) as session:
        runs = []
        for i in range(6):
            run = make_run(session, owner, name=f"run {'zyxwvu'[i]}")
            run.final_loss, run.job.progress_done = 1.0 + i, 10 * i
            run.job.created_at = utcnow() + timedelta(seconds=i)  # run 0 is the oldest
            run.job.started_at, run.job.finished_at = utcnow(), utcnow() + timedelta(seconds=100 - i)
            runs.append(run)
        runs[1].final_loss = None  # no loss yet: last in both directions
        session.add_all(runs)
        session.commit()

        def names(limit=3, **kw):
            return [r["name"] for r in list_runs(session, flt=RunFilter(**kw), limit=limit)]

        assert names() == ["run u", "run v", "run w"]  # newest first
        assert names(sort="final_loss", desc=False) == [
            "run z",
            "run x",
            "run w",
        ]  # the oldest has the best loss
        assert names(sort="final_loss", desc=True, limit=6)[-1] == "run y"
        assert names(sort="step", desc=False) == ["run z", "run y", "run x"]
        assert names(sort="name", desc=True) == ["run z", "run y", "run x"]
        assert names(sort="duration", desc=True) == ["run z", "run y", "run x"]
        assert names(sort="duration", desc=False) == ["run u", "run v", "run w"]
        assert names(sort="nonsense") == names()  # an unknown key falls back to created


def test_rows_do_not_read_the_long_text_columns(engine, make_user):
    owner = make_user().id
    statements: list[str] = []
    with Session(engine) as session:
        make_run(session, owner, name="one")
        listen = lambda conn, cursor, sql, *a: statements.append(sql)  # noqa: E731
        event.listen(engine, "before_cursor_execute", listen)
        try:
            assert [r["name"] for r in list_runs(session)] == ["one"]
        finally:
            event.remove(engine, "before_cursor_execute", listen)
    runs_query = next(s for s in statements if "FROM run" in s)
    for column in ("log_tail", "form_json", "error"):
        assert f"run.{column}" not in runs_query, column


@pytest.mark.postgres
def test_duration_sort_on_postgresql(pg):
    engine, _ = pg
    with Session(engine) as session:
        owner = User(username="pg", password_hash="x", role=Role.researcher)
        session.add(owner)
        session.commit()
        for name, seconds in (("short", 5), ("long", 500), ("mid", 50)):
            run = make_run(session, owner.id, name=name)
            run.job.started_at, run.job.finished_at = utcnow(), utcnow() + timedelta(seconds=seconds)
            session.add(run)
        make_run(session, owner.id, name="waiting", status=RunStatus.queued).job.started_at = None
        session.commit()
        rows = list_runs(session, flt=RunFilter(sort="duration", desc=True))
    assert [r["name"] for r in rows] == ["long", "mid", "short", "waiting"]
    assert round(rows[0]["duration_s"]) == 500
