"""In Chromium: a researcher creates an LLM judge from the form (a bad base URL is refused next to its field,
with what was typed kept), launches it on a rating task, reaches the job's page, and reads it all in
Chinese (screenshots under SFTLAB_SHOTS_DIR)."""

from __future__ import annotations

import re

import pytest

from app.models import Role
from tests.conftest import PASSWORD
from tests.e2e.conftest import log_in, shot
from tests.rating_results.conftest import make_task

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_judge_from_form_to_job_page(engine, make_user, db_server, browser):
    owner = make_user(Role.researcher, "ana")
    task = make_task(engine, make_user, owner_id=owner.id)
    context = browser.new_context(base_url=db_server, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, "ana", PASSWORD)

    page.goto("/judges")
    assert page.locator("table[data-section=judges]").count() == 0  # none yet
    assert page.input_value('input[name="temperature"]') == "0"  # the defaults are shown, not blanks
    assert page.input_value('input[name="max_tokens"]') == "2048"
    page.fill('input[name="name"]', "strict <b>judge</b>")
    page.select_option('select[name="kind"]', "endpoint")
    page.fill('input[name="base_url"]', "ftp://judge.example/v1")
    page.fill('input[name="model"]', "judge-model")
    page.get_by_role("button", name="Create").click()
    page.wait_for_load_state()
    assert page.locator('[data-error="base_url"]').is_visible()
    assert page.input_value('input[name="name"]') == "strict <b>judge</b>"  # nothing typed is lost
    assert page.input_value('input[name="model"]') == "judge-model"
    shot(page, "judges-new-error-en")

    page.fill('input[name="base_url"]', "http://127.0.0.1:9/v1")
    page.get_by_role("button", name="Create").click()
    page.wait_for_load_state()
    assert re.search(r"/judges/\d+$", page.url), page.url
    assert "strict <b>judge</b>" in page.locator("h1").inner_text()  # escaped, shown as typed
    page.select_option('select[name="task_id"]', str(task.id))
    page.locator('form[action$="/jobs"] button').click()
    page.wait_for_load_state()
    assert re.search(r"/judges/jobs/\d+$", page.url), page.url
    job_url = page.url
    status = page.locator("[data-status]")
    assert (
        status.get_attribute("data-status") == "queued" and status.inner_text() == "queued"
    )  # no worker here
    shot(page, "judges-job-en")

    context.add_cookies([{"name": "lang", "value": "zh", "url": db_server}])
    page.goto("/judges")
    assert "LLM 评审" in page.content() and "新建评审" in page.content()
    assert page.locator("table[data-section=judges] tr[data-judge]").count() == 1
    shot(page, "judges-zh")
    page.goto(job_url)
    assert page.locator("[data-status]").inner_text() == "排队中"
    assert "任务 " in page.locator("p").first.inner_text()  # the job system's job, as the nav names it
    shot(page, "judges-job-zh")
    assert errors == []
    context.close()
