"""Overlay of several runs on one channel (joined steps, train and eval) and the two-run config diff."""

from sqlmodel import Session

from app.runs import compare, series
from tests.runs.fake_runs import make_run, synthetic_events


def test_overlay_joins_steps_and_keeps_each_runs_values(engine, make_user):
    series.CACHE.clear()
    owner = make_user().id
    with Session(engine) as session:
        a = make_run(session, owner, name="v1", events=synthetic_events(10, eval_every=5))
        b = make_run(session, owner, name="v2", events=synthetic_events(4, eval_every=0))
        parsed = [series.run_series(session, a), series.run_series(session, b)]
        every, anywhere = compare.channels_of(parsed)
        assert "l1/逻辑推理" in every and every[0] == "overall"
        data = compare.overlay([(a, parsed[0]), (b, parsed[1])], "l1/逻辑推理")
    assert data["x"] == list(range(1, 11))
    parts = {(s["run_id"], s["part"]): s["y"] for s in data["series"]}
    assert set(parts) == {(a.id, "train"), (a.id, "eval"), (b.id, "train")}
    raw_a = {
        e["step"]: e["channels"]["l1/逻辑推理"]["loss"] for e in synthetic_events(10) if e["type"] == "train"
    }
    assert parts[(a.id, "train")] == [raw_a[s] for s in data["x"]]
    assert parts[(b.id, "train")][4:] == [None] * 6  # v2 stopped at step 4
    assert parts[(a.id, "eval")] == [None, None, None, None, 1.7 / 5, None, None, None, None, 1.7 / 10]


def test_flatten_and_config_diff(engine, make_user, pclue_dataset):
    assert compare.flatten({"a": {"b": 1, "c": [1, 2]}, "d": {}}) == {"a.b": 1, "a.c": [1, 2], "d": {}}
    owner = make_user().id
    with Session(engine) as session:
        a = make_run(session, owner, datasets=[(pclue_dataset.dataset_id, 1, "train")], train={"lr": 1e-4})
        b = make_run(session, owner, train={"lr": 2e-4}, data={"mix": {"分类": 2.0}})
        rows = compare.config_diff(session, a, b)
    diff = {r["key"]: (r["a"], r["b"]) for r in rows if not r["same"]}
    assert diff["train.lr"] == ("0.0001", "0.0002")
    assert diff["datasets.train"] == ("pclue v1", "")
    assert diff["data.mix.分类"] == ("", "2.0")  # one row per mix weight
    assert "output_dir" not in {r["key"] for r in rows}  # a per-run path is never a difference
    assert rows[0]["key"].startswith(("run.", "datasets.", "resources."))
    assert any(r["key"] == "train.epochs" and r["same"] for r in rows)
