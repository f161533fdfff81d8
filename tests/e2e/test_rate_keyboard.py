"""In real Chromium: a rater rates five pairwise cases with the keyboard alone, undoes the last one and rates it
again; the database holds exactly what was typed, with the screen's left/right turned into the right jobs."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import REPO, LiveServer, browser_page, log_in, shot, start_web, wait_until_serving
from tests.processes import stop

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RATER_PASSWORD = "e2e rater password"

SEED = """
import json
from sqlmodel import Session
from app.core.db import get_engine
from tests.rate_page.factory import MIXED_RUBRIC, seed_task, user_id
with Session(get_engine()) as s:
    boss, rita = user_id(s, "boss"), user_id(s, "rita")
    single = seed_task(s, owner=boss, raters=[rita], mode="absolute", n=3, rubric=MIXED_RUBRIC).task_key
    pairwise = seed_task(s, owner=boss, raters=[rita], n=7).task_key  # newest: first in the queue
    print(json.dumps({"pairwise": pairwise, "absolute": single}))
"""

STORED = """
import json, sys
from sqlmodel import Session, select
from app.core.db import get_engine
from app.models import Generation, Rating, RatingAssignment, RatingCase, RatingTask, Sample
with Session(get_engine()) as s:
    task = s.exec(select(RatingTask).where(RatingTask.task_key == sys.argv[1])).one()
    out = []
    skipped = s.exec(select(RatingAssignment).where(RatingAssignment.task_id == task.id,
                                                    RatingAssignment.status == "skipped")).all()
    for r in s.exec(select(Rating).where(Rating.task_id == task.id)).all():
        case = s.get(RatingCase, r.case_id)
        out.append({
            "prompt": s.get(Sample, case.sample_id).prompt,
            "swapped": case.swapped,
            "a": s.get(Generation, case.generation_a_id).text,
            "b": s.get(Generation, case.generation_b_id).text if case.generation_b_id else None,
            "scores": json.loads(r.scores_json),
            "preference": r.preference,
            "flag": r.flag,
            "comment": r.comment,
        })
    print(json.dumps({"ratings": out, "skipped": len(skipped)}))
"""


@pytest.fixture(scope="module")
def rate_server(tmp_path_factory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """The web server alone (rating needs no worker) on a fresh SQLite, with a rater on two tasks: pairwise
    (7 cases, the default rubric) and absolute (3 cases, a binary, a 1-10 and a 1-5 dimension)."""
    root = tmp_path_factory.mktemp("rate")
    data_dir = root / "data"
    data_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFTLAB_")}
    env.update(
        PYTHONPATH=str(REPO),
        SFTLAB_SECRET_KEY="e2e-secret",
        SFTLAB_DATA_DIR=str(data_dir),
        SFTLAB_DATABASE_URL=f"sqlite:///{data_dir / 'sftlab.db'}",
    )
    server, port, log = start_web(root, env)
    for name in ("worker.log", "run_worker.log", "interactive_worker.log"):
        (root / name).write_text("")
    live = LiveServer(f"http://127.0.0.1:{port}", data_dir, env, log, root / "worker.log")
    try:
        wait_until_serving(live, server)
        live.create_user("boss", "researcher")
        live.create_user("rita", "rater", RATER_PASSWORD)
        yield live, json.loads(python(live, SEED).strip().splitlines()[-1])
    finally:
        stop(server)


def python(live: LiveServer, code: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, env=live.env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def rate_page(browser, rate_server):
    live, _ = rate_server
    with browser_page(browser, live.url) as pg:
        yield pg


def _shown(page) -> dict:  # noqa: ANN001
    """The prompt, and each side's raw answer text as the word diff shows it (d on, read, d off)."""
    page.keyboard.press("d")
    expect(page.locator(".rate-answer .diff")).to_have_count(2)
    shown = {
        "prompt": page.locator("#rate-prompt .md").inner_text().strip(),
        "left": page.locator(".rate-answer.side-left .diff").inner_text().strip(),
        "right": page.locator(".rate-answer.side-right .diff").inner_text().strip(),
    }
    page.keyboard.press("d")
    expect(page.locator(".rate-answer .md")).to_have_count(2)
    return shown


def _type_case(page, pref_key: str, left: list[int], right: list[int]) -> None:  # noqa: ANN001
    """Everything by key: the preference, then the left dimensions and the right ones (scoring moves on)."""
    page.keyboard.press(pref_key)
    for value in left + right:
        page.keyboard.press(str(value))


def test_rate_five_pairwise_cases_by_keyboard_and_undo_one(rate_page, rate_server):
    live, keys = rate_server
    key = keys["pairwise"]
    page = rate_page
    log_in(page, "rita", RATER_PASSWORD)
    page.goto("/rate")
    expect(page.get_by_role("link", name="Pairwise check")).to_be_visible()
    page.keyboard.press("o")  # the queue's first task
    expect(page).to_have_url(f"{live.url}/rate/{key}")
    expect(page.locator("#rate-progress")).to_have_text("0 / 7")
    expect(page.locator(".rate-answer")).to_have_count(2)
    dims = page.locator(".rate-side[data-side=left] .rate-dim").count()
    assert dims == 3  # the default rubric: helpfulness, honesty, harmlessness

    # Enter with nothing chosen is refused, and says why.
    page.keyboard.press("Enter")
    expect(page.locator("#rate-live")).to_have_text("Choose left, right or tie first.")
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    expect(page.locator(".rate-dim.missing")).to_have_count(1)
    expect(page.locator("#rate-live")).to_contain_text("first")
    # Tab / Shift+Tab move the highlight without scoring.
    page.keyboard.press("Tab")
    expect(page.locator(".rate-dim.focus")).to_have_attribute("data-idx", "1")
    page.keyboard.press("Shift+Tab")
    expect(page.locator(".rate-dim.focus")).to_have_attribute("data-idx", "0")
    page.keyboard.press("?")
    expect(page.locator("dialog#rate-keys")).to_be_visible()
    shot(page, "rate-keys-en", full_page=False)
    page.keyboard.press("?")
    expect(page.locator("dialog#rate-keys")).to_be_hidden()

    plan = [
        ("a", [5, 4, 3], [1, 2, 3]),
        ("ArrowRight", [2, 2, 2], [4, 5, 5]),
        ("=", [3, 3, 3], [3, 3, 3]),
        ("ArrowLeft", [4, 5, 4], [2, 1, 1]),
        ("l", [1, 1, 2], [5, 5, 4]),
    ]
    pref_of = {"a": "left", "ArrowLeft": "left", "l": "right", "ArrowRight": "right", "=": "tie"}
    typed: dict[str, dict] = {}
    for n, (pref_key, left, right) in enumerate(plan):
        shown = _shown(page)
        _type_case(page, pref_key, left, right)
        if n == 1:
            page.keyboard.press("d")  # the word diff, then back
            expect(page.locator(".rate-answer .diff")).to_have_count(2)
            shot(page, "rate-diff-en")
            page.keyboard.press("d")
            expect(page.locator(".rate-answer .md")).to_have_count(2)
        if n == 0:
            shot(page, "rate-pairwise-en")
        typed[shown["prompt"]] = {**shown, "pref": pref_of[pref_key], "l": left, "r": right}
        page.keyboard.press("Enter")
        expect(page.locator("#rate-progress")).to_have_text(f"{n + 1} / 7")
        expect(page.locator("#rate-prompt .md")).not_to_have_text(shown["prompt"])

    # Undo: the fifth case comes back with what was typed; it is rated again differently.
    last = list(typed)[-1]
    page.keyboard.press("u")
    expect(page.locator("#rate-prompt .md")).to_have_text(last)
    expect(page.locator("#rate-live")).to_have_text("Your last submission is open again.")
    expect(page.locator("#rate-progress")).to_have_text("4 / 7")
    expect(page.locator(".rate-pref-buttons button.on")).to_have_attribute("data-pref", "right")
    page.keyboard.press("Tab")  # the highlight is on the first dimension again: Tab reaches the second
    page.keyboard.press("Shift+Tab")
    redo = ("a", [3, 4, 5], [2, 2, 2])
    _type_case(page, *redo)
    typed[last] = {**typed[last], "pref": "left", "l": redo[1], "r": redo[2]}
    page.keyboard.press("Enter")
    expect(page.locator("#rate-progress")).to_have_text("5 / 7")

    stored = json.loads(python(live, STORED, key))["ratings"]
    assert len(stored) == 5
    keys = ["helpfulness", "honesty", "harmlessness"]
    for row in stored:
        want = typed[row["prompt"]]
        # The answers on the screen are the case's, on the sides its record says.
        left_key, right_key = ("b", "a") if row["swapped"] else ("a", "b")
        assert (want["left"], want["right"]) == (row[left_key].strip(), row[right_key].strip()), (row, want)
        assert row["scores"][left_key] == dict(zip(keys, want["l"], strict=True)), (row, want)
        assert row["scores"][right_key] == dict(zip(keys, want["r"], strict=True)), (row, want)
        assert row["preference"] == {"left": left_key, "right": right_key, "tie": "tie"}[want["pref"]]

    # The history lists the five; Chinese for the screenshots.
    page.goto("/rate/history")
    expect(page.locator("table.rate-history tr", has_text="Pairwise check")).to_have_count(5)
    page.context.add_cookies([{"name": "lang", "value": "zh", "url": live.url}])
    page.goto(f"/rate/{key}")
    expect(page.locator("#rate-pref h3")).to_have_text("哪个回答更好？")
    expect(page.locator(".rate-answer")).to_have_count(2)
    page.keyboard.press("a")
    page.keyboard.press("4")
    shot(page, "rate-pairwise-zh")
    page.keyboard.press("?")
    shot(page, "rate-keys-zh", full_page=False)
    page.keyboard.press("?")
    page.goto("/rate")
    shot(page, "rate-queue-zh")
    page.goto("/rate/history")
    shot(page, "rate-history-zh")


def test_absolute_scales_flag_skip_and_a_fix_from_the_history(rate_page, rate_server):
    live, keys = rate_server
    key = keys["absolute"]
    page = rate_page
    log_in(page, "rita", RATER_PASSWORD)
    page.goto(f"/rate/{key}")
    expect(page.locator("#rate-progress")).to_have_text("0 / 3")
    expect(page.locator(".rate-answer")).to_have_count(1)
    expect(page.locator("#rate-pref")).to_be_hidden()
    expect(page.locator(".rate-dim")).to_have_count(3)
    expect(page.locator(".rate-dim").nth(1).locator(".rate-scale button")).to_have_count(10)

    first = page.locator("#rate-prompt .md").inner_text().strip()
    page.keyboard.press("1")  # binary: 1
    page.keyboard.press("0")  # 1-10: 0 is 10
    page.keyboard.press("7")  # 1-5: refused, and said so
    expect(page.locator("#rate-live")).to_have_text("Format takes 1–5")
    page.keyboard.press("4")
    page.keyboard.press("f")
    expect(page.locator("#rate-flag-input")).to_be_focused()
    page.keyboard.type("prompt is ambiguous")
    page.keyboard.press("Enter")
    expect(page.locator("#rate-flagged")).to_contain_text("prompt is ambiguous")
    page.keyboard.press("Enter")
    expect(page.locator("#rate-progress")).to_have_text("1 / 3")

    skipped = page.locator("#rate-prompt .md").inner_text().strip()
    page.keyboard.press("s")
    expect(page.locator("#rate-live")).to_have_text("Skipped; next case shown.")
    expect(page.locator("#rate-prompt .md")).not_to_have_text(skipped)
    third = page.locator("#rate-prompt .md").inner_text().strip()
    for k in ("0", "9", "2"):
        page.keyboard.press(k)
    page.keyboard.press("Enter")
    expect(page.locator("#rate-progress")).to_have_text("2 / 2")  # a skipped case leaves the rater's total
    expect(page.locator("#rate-done")).to_be_visible()  # the skipped case is not offered again
    shot(page, "rate-done-en")

    # Fix the flagged one from the history: its scores come back, accuracy becomes 5.
    page.goto("/rate/history")
    page.locator("table.rate-history tr", has_text="prompt is ambiguous").get_by_role("link").click()
    expect(page.locator("#rate-editing")).to_be_visible()
    expect(page.locator("#rate-prompt .md")).to_have_text(first)
    expect(page.locator(".rate-dim").nth(1).locator("button.on")).to_have_text("10")
    shot(page, "rate-edit-en")
    page.keyboard.press("Tab")
    page.keyboard.press("5")
    page.keyboard.press("Enter")
    expect(page.locator("#rate-live")).to_have_text("Submitted; next case shown.")

    stored = json.loads(python(live, STORED, key))
    assert stored["skipped"] == 1
    got = {row["prompt"]: row for row in stored["ratings"]}
    assert set(got) == {first, third}
    assert got[first]["scores"] == {"follows": 1, "accuracy": 5, "format": 4}
    assert (got[first]["flag"], got[first]["comment"]) == (True, "prompt is ambiguous")
    assert got[third]["scores"] == {"follows": 0, "accuracy": 9, "format": 2}
    assert got[third]["flag"] is False and got[third]["preference"] is None
