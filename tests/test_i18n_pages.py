"""In Chinese, the main pages show no English UI phrase: no English catalogue value of two or more words
appears in a page rendered for Accept-Language: zh-CN (user data and technical names aside)."""

import html
import re

import pytest
from sqlmodel import Session

from app.core.i18n import MESSAGES
from app.models import Job, JobKind, JobStatus, RunStatus
from tests.conftest import SHARED_DATA
from tests.runs.conftest import import_pclue
from tests.runs.fake_runs import make_run

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
# The same words in both languages on purpose: product, model and format names people type or search for.
TECHNICAL = {
    "SmolLM2-135M-Instruct",
    "task_type",
    "JSON Lines",
}
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
_ATTR = re.compile(r'\b(?:title|placeholder|aria-label|data-confirm)="([^"]*)"')
_TAG = re.compile(r"<[^>]+>")
_PROSE = re.compile(r"[A-Za-z]+ [A-Za-z]+")


def english_phrases() -> dict[str, str]:
    """English catalogue values of two or more words: phrase -> key. A Chinese value equal to the English
    one is no excuse ("OpenAI messages" was one): only the TECHNICAL names are left out."""
    phrases = {}
    for key, entry in MESSAGES.items():
        en = entry["en"].strip()
        if en in TECHNICAL:
            continue
        # A value with a {placeholder} is checked by its longest literal part; body shapes such as
        # '"datasets": [...]' hold no two words of prose and are left out.
        parts = [p.strip(" :.,;()·—") for p in re.split(r"\{[^}]*\}", en)]
        longest = max(parts, key=len)
        if _PROSE.search(longest):
            phrases[longest] = key
    return phrases


def visible_text(page: str) -> str:
    """What a reader sees: the text between tags and the tooltips, placeholders and confirmations."""
    page = _SCRIPT.sub(" ", page)
    attrs = " | ".join(_ATTR.findall(page))
    text = _TAG.sub(" | ", page)
    return html.unescape(re.sub(r"\s+", " ", f"{text} | {attrs}"))


def leftovers(text: str, phrases: dict[str, str]) -> list[str]:
    return sorted(
        f"{key}: {phrase!r}"
        for phrase, key in phrases.items()
        if re.search(r"(?<![A-Za-z_.])" + re.escape(phrase) + r"(?![A-Za-z_])", text)
    )


def test_english_catalogue_values_are_what_the_scan_looks_for():
    phrases = english_phrases()
    assert phrases["Accepted formats"] == "ds.formats" and phrases["OpenAI messages"] == "ds.shape.messages"
    assert "Accepted formats" in leftovers(visible_text("<h3>Accepted formats</h3>"), phrases)[0]
    assert leftovers(visible_text("<h3>支持的格式</h3><script>'Accepted formats'</script>"), phrases) == []


@pytest.fixture
def pages(researcher, engine, monkeypatch, tmp_path) -> list[str]:
    """The main pages, each with something in it: a dataset, an upload waiting for its mapping, a run with a
    checkpoint (offered on the launch form), jobs."""
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", lambda version_id: None)
    ds = import_pclue(researcher.user.id).dataset_id
    data = (SHARED_DATA / "pclue_train_9.jsonl").read_bytes()
    upload = researcher.post("/api/uploads?filename=pclue.jsonl", content=data).json()["upload_id"]
    with Session(engine) as session:
        state = tmp_path / "run" / "checkpoints" / "step-10" / "trainer_state"
        state.mkdir(parents=True)
        (state / "state.json").write_text("{}", encoding="utf-8")
        run = make_run(
            session, researcher.user.id, name="zh run", status=RunStatus.succeeded, run_dir=tmp_path / "run"
        )
        job = Job(kind=JobKind.estimate, owner_id=researcher.user.id, status=JobStatus.succeeded)
        session.add(job)
        session.commit()
        run_id, job_id = run.id, job.id
    return [
        "/datasets",
        f"/datasets/{ds}",
        f"/datasets/{ds}/v/1/samples",
        "/datasets/upload",
        f"/uploads/{upload}/mapping",
        "/runs/new",
        "/runs",
        f"/runs/{run_id}",
        "/jobs",
        f"/jobs/{job_id}",
        f"/datasets/{ds}/v/1/stats",
        "/sweeps",
        "/sweeps/new",
        "/tokens",
        "/account",
    ]


def test_main_pages_in_chinese_show_no_english_ui_phrase(researcher, pages):
    phrases = english_phrases()
    found = {}
    for path in pages:
        response = researcher.get(path, headers=ZH)
        assert response.status_code == 200, path
        assert '<html lang="zh' in response.text, path
        if left := leftovers(visible_text(response.text), phrases):
            found[path] = left
    assert found == {}


def test_checkpoint_labels_on_the_launch_form_are_in_the_readers_language(researcher, pages):
    run_path = next(p for p in pages if p.startswith("/runs/") and p[6:].isdigit())
    label = f"#{run_path[6:]} zh run · step-10"
    assert f"{label} (成功)</option>" in researcher.get("/runs/new", headers=ZH).text
    assert f"{label} (succeeded)</option>" in researcher.get("/runs/new").text


def test_every_api_endpoint_is_described_in_both_languages_on_the_tokens_page(researcher):
    from app.api.routes.tokens import api_endpoints
    from app.main import app

    endpoints = api_endpoints(app)
    missing = [
        f"{e['method']} {e['path']}" for e in endpoints if f"api.{e['method']} {e['path']}" not in MESSAGES
    ]
    assert missing == []
    page = visible_text(researcher.get("/tokens", headers=ZH).text)
    for e in endpoints:
        entry = MESSAGES[f"api.{e['method']} {e['path']}"]
        assert entry["zh"] in page and entry["en"] not in page
        if e["summary"] and _PROSE.search(e["summary"]):
            assert e["summary"] not in page  # the docstring's English is not shown in Chinese
    assert MESSAGES["api.GET /api/me"]["en"] in visible_text(researcher.get("/tokens").text)
