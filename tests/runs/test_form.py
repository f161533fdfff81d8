"""The launch form shows every trainer field once, in the promised order, turns posted text into the run's config, puts each error next to its field, clones, and launches off the event loop."""

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from app.models import Role, Run
from app.runs.form import (
    MUST_CHECK,
    PLATFORM,
    SPEED,
    FormError,
    LaunchForm,
    clone_form,
    field_of,
    parse_form,
    sections,
    to_request,
)
from app.runs.pickers import checkpoint_choices
from trainer.config import describe_fields, embedded_default


class Posted(dict):
    """A form post as starlette gives it: several values per key, get() returns the last."""

    def __init__(self, pairs: list[tuple[str, str]]):
        super().__init__()
        self.pairs = pairs
        for k, v in pairs:
            self[k] = v

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self.pairs if k == key]


def post(pairs: list[tuple[str, str]]) -> LaunchForm:
    data = Posted(pairs)
    return parse_form(data, data.getlist)


BASE = [("name", "tiny"), ("train_ds", "3"), ("v.3", "2"), ("queue", "cpu")]


@pytest.fixture
def no_enqueue(sent_runs) -> list[int]:
    return sent_runs


def test_sections_show_every_trainer_field_once_must_check_first_then_speed():
    secs = sections()
    assert [f["name"] for f in secs[0].fields] == list(MUST_CHECK) and secs[0].open
    assert [f["name"] for f in secs[1].fields] == list(SPEED) and secs[1].open
    assert not any(s.open for s in secs[2:])
    shown = [f["name"] for s in secs for f in s.fields] + ["data.eval_fraction"]  # beside the dataset pickers
    expected = [f["name"] for f in describe_fields() if f["name"] not in PLATFORM]
    assert sorted(shown) == sorted(expected) and len(shown) == len(set(shown))
    preset = embedded_default().to_dict()
    for s in secs:
        for f in s.fields:
            group, key = f["name"].split(".")
            assert f["help"], f["name"]
            assert f["default"] == preset[group][key], f["name"]  # the embedded_default preset's value


def test_posted_text_becomes_the_trainer_config():
    form = post(
        BASE
        + [
            ("f.train.lr", "3e-4"),
            ("f.train.epochs", "1.5"),
            ("f.train.grad_accum", "8"),
            ("f.train.scheduler", "linear"),
            ("f.data.over_length", "truncate"),
            ("f.packing.enabled", "false"),  # unchecked: only the hidden input
            ("f.finetune.lora_target_modules", "q_proj, v_proj"),
            ("mix.nli", "×2"),
            ("mix.classify", "0.5"),
            ("eval_ds", "4:1"),
            ("base_kind", "path"),
            ("base_path", "/models/x"),
            ("n_gpus", "0"),
            ("n_procs", "2"),
        ]
    )
    req = to_request(form, owner_id=7, queues=["cpu"])
    expected = embedded_default().to_dict()
    expected["train"].update(lr=3e-4, epochs=1.5, grad_accum=8, scheduler="linear")
    expected["data"].update(over_length="truncate", mix={"nli": 2.0, "classify": 0.5})
    expected["packing"]["enabled"] = False
    expected["finetune"]["lora_target_modules"] = ["q_proj", "v_proj"]
    expected["checkpoint"]["resume"] = False
    assert req.config == expected
    assert req.datasets == [(3, 2)] and req.eval_dataset == (4, 1)
    assert (req.base_model, req.n_gpus, req.n_procs, req.owner_id) == ("/models/x", 0, 2, 7)
    assert req.form["values"]["train.lr"] == "3e-4"  # as typed, for clone


def test_each_error_is_named_by_its_field():
    bad = BASE[:1] + [
        ("f.train.lr", "fast"),
        ("f.train.grad_accum", "2.5"),
        ("f.train.scheduler", "exponential"),
        ("f.data.over_length", "maybe"),
        ("queue", "gpu-99"),
        ("n_gpus", "-1"),
        ("base_kind", "checkpoint"),
    ]
    with pytest.raises(FormError) as err:
        to_request(post(bad), owner_id=1, queues=["cpu"])
    e = err.value.errors
    assert set(e) == {
        "train.lr",
        "train.grad_accum",
        "train.scheduler",
        "data.over_length",
        "queue",
        "n_gpus",
        "datasets",
        "base_model",
    }
    assert "fast" in e["train.lr"] and "whole number" in e["train.grad_accum"]


@pytest.mark.parametrize(
    ("pairs", "field", "words"),
    [
        ([("f.train.lr", "0")], "train.lr", "must be > 0"),
        ([("f.train.dropout", "1.5")], "train.dropout", "[0, 1]"),
        ([("f.deepspeed.offload_params", "true")], "deepspeed.offload_params", "zero_stage=3"),
        ([("f.train.precision", "fp16")], "train.precision", "deepspeed"),
        ([("f.finetune.method", "freeze")], "finetune.method", "nothing is frozen"),
        ([("f.data.eval_fraction", "0.1"), ("eval_ds", "4:1")], "data.eval_fraction", "exclusive"),
        ([("f.data.max_seq_len", "1000000000")], "data.max_seq_len", "must be <= 131072"),
        ([("f.train.per_device_batch", "5000")], "train.per_device_batch", "must be <= 1024"),
        ([("f.train.epochs", "500")], "train.epochs", "must be <= 100"),
        ([("f.train.max_hours", "-2")], "train.max_hours", "must be >= 0"),
    ],
)
def test_trainer_config_errors_land_on_the_field_they_name(pairs, field, words):
    with pytest.raises(FormError) as err:
        to_request(post(BASE + pairs), owner_id=1, queues=["cpu"])
    assert list(err.value.errors) == [field] and words in err.value.errors[field]


def test_field_of_picks_the_first_field_a_message_names():
    assert field_of("deepspeed.offload_optimizer needs deepspeed.enabled with zero_stage>=1") == (
        "deepspeed.offload_optimizer"
    )
    assert field_of("data.eval_file and data.eval_fraction are exclusive") == "data.eval_fraction"
    assert field_of("finetune.lora_dropout must be in [0, 1]") == "finetune.lora_dropout"
    assert field_of("something else") == "form"
    # One mapping for the form and create_run: a key no form offers is still named, for API callers.
    assert field_of("unknown key train.bogus (known: epochs, lr)") == "train.bogus"


def test_form_json_round_trip_makes_a_clone():
    form = post(BASE + [("f.train.lr", "1e-4"), ("mix_level", "2"), ("mix.pclue/nli", "3")])
    stored = json.dumps(to_request(form, owner_id=1, queues=["cpu"]).form)
    clone = clone_form(stored, name="tiny", run_id=12)
    assert clone.name == "tiny (clone)" and clone.parent_run_id == 12
    assert clone.value("train.lr") == "1e-4" and clone.mix == {"pclue/nli": "3"} and clone.mix_level == 2
    assert clone.train == [[3, 2]]
    again = to_request(clone, owner_id=1, queues=["cpu"])
    assert again.config == to_request(form, owner_id=1, queues=["cpu"]).config
    assert again.parent_run_id == 12


# ---- through the pages ----


def page_post(ds, **fields) -> dict:
    data = {
        "name": "from the form",
        "train_ds": str(ds.dataset_id),
        f"v.{ds.dataset_id}": "1",
        "queue": "cpu",
        "n_gpus": "0",
        "n_procs": "1",
        "f.train.lr": "1e-4",
        "f.train.epochs": "1",
        "f.data.max_seq_len": "256",
        "f.data.over_length": "truncate",
    }
    data.update(fields)
    return data


def test_page_shows_the_form_and_launches(researcher, pclue_dataset, no_enqueue, engine):
    page = researcher.get("/runs/new")
    assert page.status_code == 200
    html = page.text
    must = [html.index(f'name="f.{n}"') for n in MUST_CHECK]
    speed = [html.index(f'name="f.{n}"') for n in SPEED]
    assert max(must) < min(speed), "the must-check list comes before the speed options"
    for platform in (
        "f.output_dir",
        "f.data.train_file",
        "f.model.path",
        "f.data.mix",
        "f.checkpoint.resume",
    ):
        assert f'name="{platform}"' not in html
    assert 'name="csrf_token"' in html and f'name="train_ds" value="{pclue_dataset.dataset_id}"' in html
    assert "Peak learning rate." in html  # the trainer's one-line help

    response = researcher.post("/runs/new", data=page_post(pclue_dataset), follow_redirects=False)
    assert response.status_code == 303, response.text[:2000]
    run_id = int(re.fullmatch(r"/runs/(\d+)", response.headers["location"]).group(1))
    assert no_enqueue == [run_id]
    with Session(engine) as s:
        run = s.get(Run, run_id)
        config = json.loads(run.config_json)
        assert run.owner_id == researcher.user.id and run.queue == "cpu"
        assert config["train"]["lr"] == 1e-4 and config["data"]["max_seq_len"] == 256
        assert config["data"]["over_length"] == "truncate" and config["checkpoint"]["resume"] is False
        assert json.loads(run.form_json)["values"]["train.lr"] == "1e-4"

    clone = researcher.get(f"/runs/new?clone={run_id}").text
    assert 'value="from the form (clone)"' in clone
    assert f'name="parent_run_id" value="{run_id}"' in clone
    assert re.search(r'name="f\.train\.lr" value="1e-4"', clone)
    response = researcher.post(
        "/runs/new",
        data=page_post(pclue_dataset, name="from the form (clone)", parent_run_id=str(run_id)),
        follow_redirects=False,
    )
    assert response.status_code == 303
    with Session(engine) as s:
        child = s.get(Run, int(response.headers["location"].rsplit("/", 1)[1]))
        assert child.parent_run_id == run_id


def test_page_errors_rerender_with_the_message_next_to_the_field(researcher, pclue_dataset, no_enqueue):
    response = researcher.post(
        "/runs/new", data=page_post(pclue_dataset, **{"f.train.lr": "-1", "mix.nosuchtask": "2"})
    )
    assert response.status_code == 422
    assert no_enqueue == []
    html = response.text
    field = re.search(
        r'<div class="field has-error">\s*<label for="f-train-lr".*?</div>\s*</div>', html, re.S
    )
    assert field and "train.lr must be &gt; 0" in field.group(0)
    assert 'value="-1"' in field.group(0)  # what was typed stays
    response = researcher.post("/runs/new", data=page_post(pclue_dataset, **{"mix.nosuchtask": "2"}))
    assert response.status_code == 422 and "unknown task_type" in response.text
    response = researcher.post(
        "/runs/new", data=page_post(pclue_dataset, base_kind="path", base_path="/no/such")
    )
    assert response.status_code == 422 and "neither a local model directory" in response.text


def test_a_clone_of_a_run_that_does_not_exist_says_so(researcher, pclue_dataset, no_enqueue, engine):
    response = researcher.post("/runs/new", data=page_post(pclue_dataset, parent_run_id="424242"))
    assert response.status_code == 422, response.text[:2000]  # was a 500: FOREIGN KEY constraint failed
    assert "run 424242 (the run this one is cloned from) does not exist" in response.text
    assert 'name="parent_run_id"' not in response.text  # dropped: launching again just works
    assert no_enqueue == []
    with Session(engine) as s:
        assert s.exec(select(Run)).first() is None


def test_a_slow_broker_does_not_stop_the_server(researcher, pclue_dataset, monkeypatch):
    """The launch waits on the broker (about a second of retries when it is down) in the thread pool."""
    entered, released = threading.Event(), threading.Event()

    def slow_send(job, **_):  # noqa: ANN001, ANN003
        entered.set()
        released.wait(5)
        return "sent"

    monkeypatch.setattr("app.jobs.queue.send", slow_send)
    with ThreadPoolExecutor(1) as pool:
        launch = pool.submit(
            researcher.post, "/runs/new", data=page_post(pclue_dataset), follow_redirects=False
        )
        assert entered.wait(10)
        t0 = time.monotonic()
        other = researcher.get("/runs")  # every request passes through the event loop
        waited = time.monotonic() - t0
        released.set()
        assert launch.result().status_code == 303
    assert other.status_code == 200 and waited < 3, f"the event loop was blocked for {waited:.1f} s"


def test_the_checkpoint_picker_reads_no_large_columns(engine, pclue_dataset, researcher, no_enqueue):
    researcher.post("/runs/new", data=page_post(pclue_dataset), follow_redirects=False)
    seen: list[str] = []

    def record(conn, cursor, statement, *args):  # noqa: ANN001, ANN002
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with Session(engine) as s:
            checkpoint_choices(s)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert seen and not any("config_json" in q or "log_tail" in q for q in seen), seen


def test_raters_cannot_open_the_form(client_as):
    rater = client_as(Role.rater)
    assert rater.get("/runs/new").status_code == 403
    assert rater.post("/runs/new", data={"name": "x"}).status_code == 403


@pytest.mark.parametrize(
    "stored",
    ["{}", "[]", '{"train": [[1]], "values": [1], "mix": "x", "eval_dataset": "1:2", "base_kind": "evil"}'],
)
def test_a_malformed_form_json_still_clones(stored):
    form = clone_form(stored, name="old", run_id=3)
    assert form.name == "old (clone)" and form.train == [] and form.values == {} and form.mix == {}
    assert form.eval_dataset is None and form.base_kind == "embedded" and form.parent_run_id == 3


def test_the_form_renders_in_chinese(researcher):
    researcher.cookies.set("lang", "zh")
    html = researcher.get("/runs/new").text
    for label in ("新建训练", "每次训练必查", "速度与显存", "基座模型", "按任务类型配比", "估算", "启动"):
        assert label in html, label
    assert not re.search(r">[^<]*\blaunch\.[a-z_.]+", html)  # no untranslated key shown as text


def test_continue_from_a_checkpoint_of_a_finished_run(researcher, pclue_dataset, no_enqueue, engine):
    from app.models import RunStatus

    first = researcher.post("/runs/new", data=page_post(pclue_dataset), follow_redirects=False)
    run_id = int(first.headers["location"].rsplit("/", 1)[1])
    with Session(engine) as s:
        run = s.get(Run, run_id)
        ckpt = Path(run.run_dir) / "checkpoints" / "step-00000004"
        (ckpt / "trainer_state").mkdir(parents=True)
        (ckpt / "trainer_state" / "state.json").write_text('{"step": 4}')
        assert f"run:{run_id}/step-00000004" not in researcher.get("/runs/new").text  # still queued
        run.job.status = RunStatus.succeeded
        s.add(run)
        s.commit()
    ref = f"run:{run_id}/step-00000004"
    assert f'<option value="{ref}"' in researcher.get("/runs/new").text
    response = researcher.post(
        "/runs/new",
        data=page_post(pclue_dataset, base_kind="checkpoint", base_checkpoint=ref),
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:1000]
    with Session(engine) as s:
        child = s.get(Run, int(response.headers["location"].rsplit("/", 1)[1]))
        assert child.base_model == ref and json.loads(child.config_json)["model"]["path"] == str(
            ckpt.resolve()
        )
    bad = researcher.post(
        "/runs/new",
        data=page_post(pclue_dataset, base_kind="checkpoint", base_checkpoint=f"run:{run_id}/step-9"),
    )
    assert bad.status_code == 422 and "no complete checkpoint" in bad.text


def test_every_field_on_the_form_has_its_help_in_both_languages():
    from app.core.i18n import MESSAGES, translate
    from app.runs.form import FIELDS, PLATFORM

    shown = [name for name in FIELDS if name not in PLATFORM]
    missing = [name for name in shown if f"field.{name}" not in MESSAGES]
    assert not missing, missing
    for name in shown:
        assert translate(f"field.{name}", "en") == FIELDS[name]["help"]  # the trainer's own text
        zh = translate(f"field.{name}", "zh")
        assert zh != FIELDS[name]["help"] and re.search(r"[\u4e00-\u9fff]", zh), (name, zh)
