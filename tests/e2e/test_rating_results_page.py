"""In Chromium: the results page draws its charts, a researcher adjudicates a disputed case through its
form and sees it applied, and the page reads in Chinese (screenshots under SFTLAB_SHOTS_DIR)."""

from __future__ import annotations

import pytest

from app.models import Role
from tests.conftest import PASSWORD
from tests.e2e.conftest import shot
from tests.rating_results.conftest import make_task, rate, rate_small, s3

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_results_page_in_chromium(engine, make_user, db_server, browser):
    owner = make_user(Role.researcher, "ana")
    task = make_task(engine, make_user, owner_id=owner.id)
    rate_small(engine, task)
    disputed = task.cases[2].id
    pairwise = make_task(engine, make_user, mode="pairwise", owner_id=owner.id, users=task.raters)
    for case, rater, pref in [(0, "rater1", "a"), (0, "rater2", "tie"), (1, "rater1", "b"), (1, "rater3", "b"),
                              (2, "rater2", "a"), (2, "rater3", "a"), (3, "rater1", "tie"), (3, "rater2", "a")]:  # fmt: skip
        both = {"a": s3(4, 5, 4 - (case % 2)), "b": s3(3, 4, 3 + (case % 2))}
        rate(engine, pairwise, pairwise.cases[case], rater, both, preference=pref)
    # the session's Chromium (tests/e2e/conftest.py): one Playwright per worker process
    context = browser.new_context(base_url=db_server, viewport={"width": 1366, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/login")
    page.fill('input[name="username"]', "ana")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state()
    page.goto(f"/rating/{task.id}/results")
    # usability and three dimensions, each with a bar per rated row
    assert page.locator("svg.rr-chart").count() == 4
    assert page.locator("svg.rr-chart rect.bar").count() >= 4 * 4
    shot(page, "rating-results-en")
    form = page.locator(f"#case-{disputed} form")
    for key in ("helpfulness", "honesty", "harmlessness"):
        form.locator(f'input[name="score.{key}"]').fill("5")
    form.locator("button").click()
    page.wait_for_load_state()
    assert page.url.endswith(
        f"/rating/{task.id}/results?version={task.rubric_version_id}&adjudicated=true#case-{disputed}"
    )
    assert page.locator('input[name="adjudicated"]').is_checked()
    all_row = page.locator('table[data-side="a"] tr.rr-all td[data-metric="helpfulness"]')
    assert (
        (all_row.text_content() or "").strip().startswith("4.25")
    )  # case 2's mean of 2 replaced by its adjudicated 5
    page.locator('input[name="adjudicated"]').uncheck()  # the toggle swaps the body through HTMX
    page.wait_for_function("!location.search.includes('adjudicated=true')")
    page.wait_for_function(
        'document.querySelector(\'table[data-side="a"] tr.rr-all td[data-metric="helpfulness"]\')'
        ".textContent.trim().startsWith('3.50')"
    )
    page.goto(f"/rating/{pairwise.id}/results")
    assert (
        page.locator('section[data-section="pairwise"] svg rect.win').count() == 7
    )  # all, 3 level 1, 3 level 2
    shot(page, "rating-results-pairwise-en")
    context.add_cookies([{"name": "lang", "value": "zh", "url": db_server}])
    page.goto(f"/rating/{task.id}/results?adjudicated=true")
    assert "可用性与各维度" in page.content()
    shot(page, "rating-results-zh")
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
