"""A sweep expands its grid into one run per point with the right epochs, lr and task share, needs validation data, is all or nothing, and tabulates each run's last eval losses in a constant number of queries, ranking only finished runs."""

import json
from collections import Counter

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from app.models import Role, Run, RunEvent, RunStatus, Sweep
from app.runs import launch as launching
from app.runs.form import FormError, LaunchForm, to_request
from app.runs.launch import LaunchError
from app.runs.sweeps import Grid, create_sweep, list_sweeps, parse_grid, sweep_table
from trainer.data import mix_samples, read_samples


@pytest.fixture
def sent(sent_runs) -> list[int]:
    return sent_runs


def base_request(ds, **values):
    form = LaunchForm(
        name="sw",
        values={"data.eval_fraction": "0.1", "data.max_seq_len": "256", **values},
        train=[[ds.dataset_id, ds.version]],
        mix={"classify": "0.5", "nli": "2"},
        queue="cpu",
    )
    return to_request(form, owner_id=ds.owner_id, queues=["cpu"])


def test_parse_grid_and_its_errors():
    grid, errors = parse_grid(
        {"grid.epochs": "1, 2", "grid.lr": "1e-5 3e-5", "grid.task": "nli", "grid.shares": "100%, 50%, 0.25"},
        default_epochs=1,
        default_lr=1e-5,
    )
    assert errors == {}
    assert grid == Grid([1.0, 2.0], [1e-5, 3e-5], "nli", [1.0, 0.5, 0.25])
    points = grid.points()
    assert len(points) == 12 and points[0] == (1.0, 1e-5, 1.0) and points[-1] == (2.0, 3e-5, 0.25)
    assert len(set(points)) == 12
    grid, errors = parse_grid({}, default_epochs=3, default_lr=2e-5)
    assert errors == {} and grid.points() == [(3, 2e-5, 1.0)]
    _, errors = parse_grid(
        {"grid.epochs": "1, x", "grid.lr": "-1", "grid.task": "nli", "grid.shares": "2"},
        default_epochs=1,
        default_lr=1,
    )
    assert set(errors) == {"grid.epochs", "grid.lr", "grid.shares"}
    _, errors = parse_grid(
        {"grid.epochs": " ".join(str(i) for i in range(1, 9)), "grid.lr": "1 2 3 4 5 6 7 8 9"},
        default_epochs=1,
        default_lr=1,
    )
    assert "at most 64" in errors["grid.epochs"]


def test_a_sweep_needs_validation_data(engine, pclue_dataset, sent):
    req = base_request(pclue_dataset, **{"data.eval_fraction": "0"})
    with Session(engine) as s, pytest.raises(FormError) as err:
        create_sweep(s, name="x", owner_id=req.owner_id, base=req, grid=Grid([1.0], [1e-5], "", [1.0]))
    assert list(err.value.errors) == ["data.eval_fraction"]
    with Session(engine) as s:
        assert s.exec(select(Sweep)).all() == [] and sent == []


def test_one_run_per_grid_point_with_the_tasks_share(engine, pclue_dataset, sent, settings, tmp_path):
    from app.core.db import get_engine
    from app.datasets.export import iter_export

    req = base_request(pclue_dataset)
    grid = Grid([1.0, 2.0], [1e-5, 3e-5], "nli", [1.0, 0.5, 0.25])
    with Session(engine) as s:
        sweep = create_sweep(s, name="nli threshold", owner_id=req.owner_id, base=req, grid=grid)
        runs = s.exec(select(Run).where(Run.sweep_id == sweep.id).order_by(Run.id)).all()
        assert len(runs) == 12 and sent == [r.id for r in runs]
        spec = json.loads(sweep.spec_json)
    path = tmp_path / "train.jsonl"
    path.write_bytes(
        b"".join(iter_export(get_engine(settings), dataset_id=pclue_dataset.dataset_id, version=1))
    )
    samples = read_samples(path)
    n = Counter(x.task_l1 for x in samples)
    for run, (epochs, lr, share), point in zip(runs, grid.points(), spec["points"], strict=True):
        config = json.loads(run.config_json)
        assert (config["train"]["epochs"], config["train"]["lr"]) == (epochs, lr)
        assert point == {"run_id": run.id, "epochs": epochs, "lr": lr, "share": share}
        assert config["data"]["eval_fraction"] == 0.1 and run.sweep_id == sweep.id
        # Independent: the trainer's own mix of the export with this run's weights.
        mixed = Counter(x.task_l1 for x in mix_samples(samples, config["data"]["mix"], seed=0))
        assert mixed["nli"] == round(2 * share * n["nli"]) and mixed["classify"] == round(0.5 * n["classify"])
        assert mixed["mrc"] == n["mrc"]
        form = json.loads(run.form_json)  # a grid point clones into the form with its own values
        assert form["values"]["train.lr"] == str(lr) and float(form["mix"]["nli"]) == 2 * share


def test_a_refused_point_leaves_no_half_sweep(engine, pclue_dataset, sent, monkeypatch):
    real = launching.create_run
    calls = []

    def third_fails(session, req):
        calls.append(req.name)
        if len(calls) == 3:
            raise LaunchError("train.lr", "refused")
        return real(session, req)

    monkeypatch.setattr("app.runs.launch.create_run", third_fails)
    req = base_request(pclue_dataset)
    with Session(engine) as s, pytest.raises(FormError) as err:
        create_sweep(
            s, name="x", owner_id=req.owner_id, base=req, grid=Grid([1.0], [1e-5, 2e-5, 3e-5], "", [1.0])
        )
    assert err.value.errors == {"train.lr": "refused"}
    with Session(engine) as s:
        assert s.exec(select(Sweep)).all() == [] and s.exec(select(Run)).all() == [] and sent == []


def add_eval(s: Session, run_id: int, seq: int, step: int, losses: dict[str, float]) -> None:
    channels = {"overall": {"loss": losses["overall"], "tokens": 100}}
    for task, loss in losses.items():
        if task != "overall":
            channels[f"l1/{task}"] = {"loss": loss, "tokens": 10}
            channels[f"l2/{task}/"] = {"loss": loss + 0.5, "tokens": 10}
    event = {"type": "eval", "step": step, "loss": losses["overall"], "channels": channels, "time": 1.0}
    s.add(RunEvent(run_id=run_id, seq=seq, type="eval", step=step, time=1.0, data=json.dumps(event)))


LOSSES = [
    {"overall": 1.5, "nli": 1.2, "classify": 2.0},
    {"overall": 1.1, "nli": 1.4, "classify": 1.9},
    {"overall": 1.3, "nli": 0.9},  # no classify sample evaluated
]


def make_sweep_with_events(engine, ds, sent, statuses=(RunStatus.succeeded,) * 3) -> int:
    req = base_request(ds)
    with Session(engine) as s:
        sweep = create_sweep(
            s, name="tab", owner_id=req.owner_id, base=req, grid=Grid([1.0], [1e-5, 2e-5, 3e-5], "", [1.0])
        )
        runs = s.exec(select(Run).where(Run.sweep_id == sweep.id).order_by(Run.id)).all()
        for run, final, status in zip(runs, LOSSES, statuses, strict=True):
            add_eval(s, run.id, 3, 5, {k: v + 1 for k, v in final.items()})  # an earlier eval: never shown
            s.add(RunEvent(run_id=run.id, seq=4, type="train", step=6, data='{"type": "train", "loss": 0.1}'))
            add_eval(s, run.id, 7, 10, final)
            s.add(RunEvent(run_id=run.id, seq=8, type="train", step=11, data='{"type": "train"}'))
            run.job.status = status
            s.add(run)
        s.commit()
        return sweep.id


class Statements:
    """The SQL an engine runs inside the block."""

    def __init__(self, engine):
        self.engine, self.seen = engine, []

    def _record(self, conn, cursor, statement, *args):
        self.seen.append(" ".join(statement.split()))

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self.seen

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._record)


def test_sweep_table_reads_the_last_eval_event_and_marks_the_best(engine, pclue_dataset, sent):
    sweep_id = make_sweep_with_events(engine, pclue_dataset, sent)
    with Session(engine) as s:
        table = sweep_table(s, s.get(Sweep, sweep_id), level=1)
        table2 = sweep_table(s, s.get(Sweep, sweep_id), level=2)
    assert table["columns"] == ["overall", "classify", "nli"]
    assert [r["losses"] for r in table["rows"]] == LOSSES
    assert [r["lr"] for r in table["rows"]] == [1e-5, 2e-5, 3e-5]
    ids = [r["run_id"] for r in table["rows"]]
    for column in table["columns"]:  # independent argmin over the rows that have the column
        values = [(final[column], i) for i, final in enumerate(LOSSES) if column in final]
        assert table["best"][column] == ids[min(values)[1]]
    assert table2["columns"] == ["overall", "classify", "nli"]  # level 2 of "nli" with no level 2 is "nli"
    assert table2["rows"][0]["losses"]["nli"] == pytest.approx(1.7)


@pytest.mark.parametrize(
    ("statuses", "best_rows"),
    [
        # Run 2's 1.1 is the lowest overall loss, but it is still training: its last eval is early.
        (("succeeded", "running", "succeeded"), {"overall": 2, "nli": 2, "classify": 0}),
        (("succeeded", "failed", "lost"), {"overall": 0, "nli": 0, "classify": 0}),
        (("running", "queued", "cancelled"), {}),
    ],
)
def test_only_succeeded_runs_are_ranked(engine, pclue_dataset, sent, statuses, best_rows):
    sweep_id = make_sweep_with_events(engine, pclue_dataset, sent, [RunStatus(x) for x in statuses])
    with Session(engine) as s:
        table = sweep_table(s, s.get(Sweep, sweep_id), level=1)
    assert [r["losses"] for r in table["rows"]] == LOSSES  # every run is shown
    assert [r["status"] for r in table["rows"]] == list(statuses)
    ids = [r["run_id"] for r in table["rows"]]
    assert table["best"] == {column: ids[i] for column, i in best_rows.items()}


def test_the_table_and_the_list_read_in_a_few_queries(engine, pclue_dataset, sent):
    sweep_id = make_sweep_with_events(engine, pclue_dataset, sent)
    with Session(engine) as s:
        sweep = s.get(Sweep, sweep_id)
        with Statements(engine) as seen:
            table = sweep_table(s, sweep, level=1)
            listed = list_sweeps(s)
    assert [r["losses"] for r in table["rows"]] == LOSSES
    # The table re-polls every 5 s for up to 64 runs: one query for every run's last eval, not one each.
    assert len([q for q in seen if "FROM runevent" in q]) == 1, seen
    # The list counts statuses in the database, and loads no run's config, form or log.
    assert not [q for q in seen if "config_json" in q or "log_tail" in q or "spec_json" in q], seen
    assert listed == [
        {
            "id": sweep_id,
            "name": "tab",
            "owner": "data_owner",
            "created": table["created"],
            "runs": 3,
            "statuses": {"succeeded": 3},
        }
    ]


def test_sweep_pages_and_api(researcher, engine, pclue_dataset, sent, client_as):
    sweep_id = make_sweep_with_events(engine, pclue_dataset, sent)
    page = researcher.get(f"/sweeps/{sweep_id}")
    assert page.status_code == 200
    assert 'class="num best">0.9000<' in page.text and 'class="num best">1.1000<' in page.text
    assert page.text.count('class="num best"') == 3  # one per column
    level2 = researcher.get(f"/sweeps/{sweep_id}?level=2", headers={"HX-Request": "true"})
    assert 'id="sweep-table"' in level2.text and "<html" not in level2.text
    assert ">1.4000<" in level2.text  # 0.9 + 0.5 on the level-2 channel
    listing = researcher.get("/sweeps")
    assert f'href="/sweeps/{sweep_id}"' in listing.text
    api = researcher.get(f"/api/sweeps/{sweep_id}").json()
    assert api["columns"] == ["overall", "classify", "nli"] and len(api["rows"]) == 3
    assert researcher.get("/api/sweeps/999").status_code == 404
    assert researcher.get("/sweeps/" + "9" * 25).status_code in (404, 422)
    rater = client_as(Role.rater)
    assert rater.get(f"/sweeps/{sweep_id}").status_code == 403
    assert rater.post("/api/sweeps", json={}).status_code == 403


def test_sweep_form_and_api_launch(researcher, pclue_dataset, sent, engine):
    d = pclue_dataset.dataset_id
    assert "grid.epochs" in researcher.get("/sweeps/new").text
    form = {
        "name": "ui sweep",
        "train_ds": str(d),
        f"v.{d}": "1",
        "queue": "cpu",
        "f.data.eval_fraction": "0",
    }
    form.update({"grid.epochs": "1", "grid.lr": "1e-5, 2e-5", "grid.task": "nli", "grid.shares": "1, 0.5"})
    response = researcher.post("/sweeps/new", data=form)
    assert response.status_code == 422 and "a sweep compares validation losses" in response.text
    response = researcher.post(
        "/sweeps/new", data={**form, "f.data.eval_fraction": "0.1"}, follow_redirects=False
    )
    assert response.status_code == 303
    sweep_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert len(sent) == 4
    body = {
        "name": "api sweep",
        "datasets": [{"dataset_id": d, "version": 1}],
        "config": {"data": {"eval_fraction": 0.2}},
        "grid": {"epochs": [1, 2], "lr": [1e-4], "task": "classify", "shares": [1, 0.25]},
    }
    response = researcher.post("/api/sweeps", json=body)
    assert response.status_code == 201, response.text
    other = response.json()["id"]
    assert other != sweep_id and len(sent) == 8
    with Session(engine) as s:
        configs = [
            json.loads(r.config_json)
            for r in s.exec(select(Run).where(Run.sweep_id == other).order_by(Run.id))
        ]
    assert [(c["train"]["epochs"], c["data"]["mix"]["classify"]) for c in configs] == [
        (1.0, 1.0),
        (1.0, 0.25),
        (2.0, 1.0),
        (2.0, 0.25),
    ]
    response = researcher.post("/api/sweeps", json={**body, "grid": {"task": "nope"}})
    assert response.status_code == 422 and "grid.task" in response.json()["errors"]
    response = researcher.post("/api/sweeps", json={**body, "mix": {"nope": 2}})
    assert response.status_code == 422 and "unknown task_type" in response.json()["errors"]["mix"]
    assert len(sent) == 8
