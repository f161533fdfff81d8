"""The runs list: rows with datasets and key hyperparameters, filters, and sorts with empty values last."""

from datetime import timedelta

from sqlmodel import Session

from app.models import RunStatus, utcnow
from app.runs.listing import RunFilter, list_runs, sort_rows
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
        c.started_at = None
        a.started_at, a.finished_at = utcnow() - timedelta(seconds=50), utcnow()
        b.started_at, b.finished_at = utcnow() - timedelta(seconds=10), utcnow()
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


def test_sort_rows_falls_back_to_created_on_unknown_keys():
    rows = [{"id": 1, "created": "2026-01-01"}, {"id": 2, "created": "2026-02-01"}]
    assert [r["id"] for r in sort_rows(rows, "nonsense", desc=True)] == [2, 1]
