"""The sample viewer shows the trained order's sample with exactly the trainer's render and loss mask."""

import json
import re

import pytest
from sqlmodel import Session

from app.models import RunStatus
from app.runs import samples
from tests.runs.fake_runs import make_run
from trainer.render import RenderOptions, render_sample

# Each rendering is a job, run inline here as the interactive worker runs it.
pytestmark = pytest.mark.usefixtures("inline_worker")

RECORDS = [
    {
        "messages": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}],
        "task_type": "数学",
    },
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "<script>alert(1)</script> 哪个是动物？"},
            {"role": "assistant", "content": "猫"},
            {"role": "user", "content": "再来一个"},
            {"role": "assistant", "content": "狗"},
        ],
        "task_type": "分类/动物",
    },
    {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        "task_type": "闲聊",
    },
]


def _run_dir(tmp_path, *, mapped: bool = True):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    train = run_dir / "train.jsonl"
    train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS), encoding="utf-8")
    if mapped:  # the trained (mixed) order: index 0 is line 2, index 1 line 3, index 2 line 2 again (×2 mix)
        order = [(2, "分类/动物"), (3, "闲聊"), (2, "分类/动物")]
        (run_dir / "data_samples.jsonl").write_text(
            "".join(
                json.dumps({"index": i, "where": f"{train}:{line}", "task_type": t}, ensure_ascii=False)
                + "\n"
                for i, (line, t) in enumerate(order)
            ),
            encoding="utf-8",
        )
    return run_dir


@pytest.fixture
def tokenizer(tiny_model_dir):
    """Loaded as trainer.model.load_tokenizer does, independently of the viewer's own loading."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


@pytest.mark.parametrize("prompt_loss,scope", [(False, "all"), (True, "all"), (False, "last")])
def test_supervised_tokens_equal_the_trainers_mask(
    engine, make_user, tmp_path, tiny_model_dir, tokenizer, prompt_loss, scope
):
    run_dir = _run_dir(tmp_path)
    with Session(engine) as session:
        run = make_run(
            session, make_user().id, run_dir=run_dir, loss={"prompt_loss": prompt_loss, "scope": scope}
        )
        config = json.loads(run.config_json)
    shown = samples.show_sample(run, 0, config=config, tokenizer=str(tiny_model_dir))
    assert shown.error == ""
    assert shown.where == "train.jsonl:2" and shown.task_type == "分类/动物" and shown.total == 3
    expected = render_sample(
        tokenizer, RECORDS[1]["messages"], RenderOptions(scope=scope, prompt_loss=prompt_loss)
    )
    assert [t["token_id"] for t in shown.tokens] == expected.input_ids
    assert [t["supervised"] for t in shown.tokens] == expected.supervised
    assert [t["special"] for t in shown.tokens] == expected.special
    assert "".join(t["text"] for t in shown.tokens) == expected.text
    assert shown.n_supervised == expected.n_supervised > 0


def test_without_data_samples_index_is_the_line_of_train_jsonl(engine, make_user, tmp_path, tiny_model_dir):
    run_dir = _run_dir(tmp_path, mapped=False)
    with Session(engine) as session:
        run = make_run(session, make_user().id, run_dir=run_dir, status=RunStatus.queued)
    shown = samples.show_sample(run, 2, config={}, tokenizer=str(tiny_model_dir))
    assert shown.where == "train.jsonl:3" and shown.task_type == "闲聊"
    assert "hello" in "".join(t["text"] for t in shown.tokens if t["supervised"])
    with pytest.raises(samples.SampleError, match="no sample 3"):
        samples.locate(run, 3)
    with pytest.raises(samples.SampleError):
        samples.locate(run, -1)


def test_a_mapping_pointing_outside_the_run_dir_is_refused(engine, make_user, tmp_path):
    run_dir = _run_dir(tmp_path, mapped=False)
    outside = tmp_path / "secret.jsonl"
    outside.write_text(json.dumps(RECORDS[0]) + "\n")
    (run_dir / "data_samples.jsonl").write_text(json.dumps({"index": 0, "where": f"{outside}:1"}) + "\n")
    with Session(engine) as session:
        run = make_run(session, make_user().id, run_dir=run_dir)
    with pytest.raises(samples.SampleError, match="outside the run directory"):
        samples.locate(run, 0)


def test_sample_page_marks_supervised_and_special_tokens_and_navigates(
    engine, researcher, tmp_path, tiny_model_dir, tokenizer
):
    run_dir = _run_dir(tmp_path)
    with Session(engine) as session:
        run = make_run(session, researcher.user.id, run_dir=run_dir, model={"path": str(tiny_model_dir)})
    page = researcher.get(f"/runs/{run.id}/samples/1")
    assert page.status_code == 200, page.text
    assert f'href="/runs/{run.id}/samples/0" data-key="k"' in page.text
    assert f'href="/runs/{run.id}/samples/2" data-key="j"' in page.text
    spans = re.findall(r'<span class="(sup|masked)( spec)?" data-id="(\d+)"', page.text)
    expected = render_sample(tokenizer, RECORDS[2]["messages"])
    assert [s[0] == "sup" for s in spans] == expected.supervised
    assert [bool(s[1]) for s in spans] == expected.special
    last = researcher.get(f"/runs/{run.id}/samples/0")
    assert "<script>alert(1)</script>" not in last.text and "&lt;script&gt;" in last.text
    assert researcher.get(f"/runs/{run.id}/samples/3").status_code == 404
    api = researcher.get(f"/api/runs/{run.id}/samples/1").json()
    assert [t["supervised"] for t in api["tokens"]] == expected.supervised


def test_a_run_with_its_own_chat_template_file_is_shown_with_it(engine, make_user, tmp_path, tiny_model_dir):
    from pathlib import Path

    from transformers import AutoTokenizer

    from trainer.render import set_chat_template

    corpus = Path(__file__).resolve().parents[1] / "assets" / "chat_templates"
    text = (corpus / "vicuna_llava.jinja").read_text(encoding="utf-8")
    run_dir = _run_dir(tmp_path)
    (run_dir / "chat_template.jinja").write_text(text, encoding="utf-8")  # the trainer's copy
    with Session(engine) as session:
        run = make_run(
            session,
            make_user().id,
            run_dir=run_dir,
            model={"chat_template_file": str(tmp_path / "gone.jinja")},
        )
        config = json.loads(run.config_json)
    shown = samples.show_sample(run, 1, config=config, tokenizer=str(tiny_model_dir))
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    set_chat_template(tok, text, "vicuna")
    expected = render_sample(tok, RECORDS[2]["messages"])
    assert shown.error == "" and "".join(t["text"] for t in shown.tokens) == expected.text
    assert expected.text.startswith("A chat between a curious user")
    assert [t["supervised"] for t in shown.tokens] == expected.supervised
