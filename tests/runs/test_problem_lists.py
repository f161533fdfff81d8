"""Lists of problem samples show the first 20 and link a CSV of all of them (launch estimate and failed run page),
the CSV is complete and safe to open in a spreadsheet, and the over-length problem also shows beside max_seq_len."""

import csv
import io
import json

import pytest
from sqlmodel import Session
from transformers import AutoTokenizer

from app.core.db import get_engine
from app.models import Role, RunStatus
from app.runs import estimate as estimating
from app.runs.problems import listing, split_where, to_csv
from app.runs.rundir import export_versions
from tests.runs.fake_runs import make_run
from trainer.config import embedded_default, tiny_debug
from trainer.data import DataError
from trainer.render import RenderOptions, render_sample

MAX_LEN = 40


def _form(dataset_id: int, model_dir) -> dict:  # noqa: ANN001
    return {
        "name": "too long",
        "train_ds": str(dataset_id),
        f"v.{dataset_id}": "1",
        "queue": "cpu",
        "n_procs": "1",
        "base_kind": "path",
        "base_path": str(model_dir),
        "f.data.max_seq_len": str(MAX_LEN),
        "f.data.over_length": "error",
    }


def _export(settings, dataset_id: int, out) -> list[dict]:  # noqa: ANN001
    out.write_bytes(b"".join(export_versions(get_engine(settings), [(dataset_id, 1)])))
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _over_length_ids(lines: list[dict], model_dir) -> set[str]:  # noqa: ANN001
    """Independently of the estimate: render each exported line with the tokenizer, keep those over MAX_LEN."""
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    loss = embedded_default().loss
    options = RenderOptions(scope=loss.scope, prompt_loss=loss.prompt_loss, eos_in_loss=loss.eos_in_loss)
    long = set()
    for line in lines:
        if len(render_sample(tok, line["messages"], options).input_ids) > MAX_LEN:
            long.add(split_where(line["id"])[2])
    return long


def _rows(response) -> list[dict]:  # noqa: ANN001
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment; filename=" in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))


@pytest.mark.slow
@pytest.mark.usefixtures("inline_worker")
def test_estimate_names_20_and_its_csv_holds_every_over_length_sample(
    researcher, client_as, pclue_dataset, tiny_model_dir, settings, tmp_path
):
    estimating._CACHE.clear()
    estimating._PROBLEMS.clear()
    d = pclue_dataset.dataset_id
    long = _over_length_ids(_export(settings, d, tmp_path / "export.jsonl"), tiny_model_dir)
    assert len(long) > 20
    html = researcher.post(
        "/runs/new/estimate", data=_form(d, tiny_model_dir), headers={"HX-Request": "true"}
    ).text
    problem = html[html.index('id="estimate-problem"') : html.index("</pre>")]
    assert (
        problem.count(" tokens\n") + problem.rstrip().endswith(" tokens") == 20
    )  # one line per named sample
    assert "... and" not in problem
    assert f"and {len(long) - 20:,} more" in html
    url = html.split('id="estimate-problems-more"')[1].split('href="')[1].split('"')[0]
    rows = _rows(researcher.get(url))
    assert {r["sample_id"] for r in rows} == long and len(rows) == len(long)
    assert {(r["dataset"], r["version"], r["problem"], r["limit"]) for r in rows} == {
        ("pclue", "1", "too_long", str(MAX_LEN))
    }
    assert all(int(r["tokens"]) > MAX_LEN and r["task_type"] for r in rows)
    # the launch page's access rules: researchers (and admins), not raters
    assert client_as(Role.rater, "rater").get(url).status_code == 403
    # the JSON estimate points at the same kind of list
    body = {
        "name": "too long",
        "datasets": [{"dataset_id": d, "version": 1}],
        "base_model": str(tiny_model_dir),
        "queue": "cpu",
        "n_procs": 1,
        "config": {"data": {"max_seq_len": MAX_LEN, "over_length": "error"}},
    }
    refused = researcher.post("/api/runs/estimate", json=body)
    assert refused.status_code == 422 and refused.json()["errors"]["data.max_seq_len"]
    assert len(_rows(researcher.get(refused.json()["problems_csv"]))) == len(long)


@pytest.mark.slow
@pytest.mark.usefixtures("inline_worker")
def test_the_over_length_problem_shows_beside_max_seq_len_with_its_fixes(
    researcher, pclue_dataset, tiny_model_dir, sent_runs
):
    estimating._CACHE.clear()
    estimating._PROBLEMS.clear()
    form = _form(pclue_dataset.dataset_id, tiny_model_dir)
    html = researcher.post("/runs/new/estimate", data=form, headers={"HX-Request": "true"}).text
    slot = html.split('id="problem-data-max_seq_len"')[1].split("</div>")[0]
    assert 'hx-swap-oob="true"' in slot and 'role="alert"' in slot
    assert f"samples are longer than data.max_seq_len {MAX_LEN} tokens" in slot
    assert 'data-fix-field="f.data.over_length" data-fix-value="truncate"' in slot
    assert 'data-fix-field="f.data.max_seq_len" data-fix-value="' in slot
    assert 'id="problem-mix" hx-swap-oob="true"></div>' in html.replace('class="field-problem" ', "")
    # the form has the place it lands in, beside the field
    page = researcher.get("/runs/new").text
    field = page.split('id="f-data-max_seq_len"')[1].split("<label")[0]
    assert 'id="problem-data-max_seq_len"' in field
    # Launching it anyway: refused, with the problem and its fixes beside the field on the whole page.
    refused = researcher.post("/runs/new", data=form, follow_redirects=False)
    assert refused.status_code == 422
    field = refused.text.split('id="f-data-max_seq_len"')[1].split("<label")[0]
    assert 'id="problem-data-max_seq_len"' in field and "hx-swap-oob" not in field
    assert f"samples are longer than data.max_seq_len {MAX_LEN} tokens" in field
    assert 'data-fix-field="f.data.over_length" data-fix-value="drop"' in field
    assert 'id="estimate-problem"' in refused.text and sent_runs == []
    fixed = {**form, "f.data.max_seq_len": "2048", "f.data.over_length": "truncate"}
    cleared = researcher.post("/runs/new/estimate", data=fixed, headers={"HX-Request": "true"}).text
    assert '<div class="field-problem" id="problem-data-max_seq_len" hx-swap-oob="true"></div>' in cleared


def test_a_failed_runs_page_names_20_and_its_csv_holds_all(
    researcher, pclue_dataset, tiny_model_dir, settings, engine, tmp_path
):
    from trainer.train import run as train

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    lines = _export(settings, pclue_dataset.dataset_id, run_dir / "train.jsonl")
    long = _over_length_ids(lines, tiny_model_dir)
    cfg = tiny_debug(str(run_dir / "train.jsonl"), str(run_dir), str(tiny_model_dir))
    cfg.data.max_seq_len = MAX_LEN
    with pytest.raises(DataError) as err:
        train(cfg)
    message = f"DataError: {err.value}"
    with Session(engine) as session:
        run = make_run(
            session,
            researcher.user.id,
            status=RunStatus.failed,
            run_dir=run_dir,
            events=[{"type": "error", "message": message}],
        )
        run.job.error = f"trainer exited with code 2: {message}"
        session.add(run.job)
        session.commit()
        run_id = run.id
    page = researcher.get(f"/runs/{run_id}").text
    shown = page.split('class="card run-error"')[1].split('id="run-problems-more"')[0]
    assert "... and" not in shown and f"and {len(long) - 20:,} more" in page
    assert f'href="/runs/{run_id}/problems.csv"' in page
    rows = _rows(researcher.get(f"/runs/{run_id}/problems.csv"))
    assert {r["sample_id"] for r in rows} == long and len(rows) == len(long)
    assert researcher.get(f"/runs/{run_id + 1}/problems.csv").status_code == 404


def test_csv_cells_that_start_like_a_formula_are_quoted():
    problems = [
        {"where": "=HYPERLINK(1) v3 #7", "task_type": "+cmd", "problem": "render", "detail": "@SUM(A1)"},
        {"where": "-2 v1 #8", "task_type": "ok", "problem": "too_long", "tokens": 99, "limit": 64},
        {
            "where": "train.jsonl:12",
            "task_type": "nli",
            "problem": "no_supervised",
            "tokens": 70,
            "limit": 64,
        },
    ]
    rows = list(csv.reader(io.StringIO(to_csv(problems))))
    assert rows[0] == ["dataset", "version", "sample_id", "task_type", "problem", "tokens", "limit", "detail"]
    assert rows[1] == ["'=HYPERLINK(1)", "3", "7", "'+cmd", "render", "", "", "'@SUM(A1)"]
    assert rows[2][:3] == ["'-2", "1", "8"] and rows[2][5:7] == ["99", "64"]
    assert rows[3][:3] == ["", "", "train.jsonl:12"]


def test_a_list_that_names_every_sample_needs_no_link():
    text = "3 of 9 samples are longer\n  a v1 #1 (x): 50 tokens\n  a v1 #2 (x): 60 tokens\n  a v1 #3 (x): 70 tokens"
    assert listing(text, total=3, csv_url="/x").more == 0
    cut = listing(text + "\n  ... and 40 more", total=43, csv_url="/x")
    assert cut.more == 40 and "... and" not in cut.text
