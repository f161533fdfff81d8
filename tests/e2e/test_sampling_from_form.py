"""In real Chromium against a live server and a real worker running the fake sampling program: open the
form from the navigation, launch on pCLUE with n=2, and see both answers of each prompt, escaped, with the
reference and the finish-reason counts on the results page, then the analysis section loaded after them; and
the form's estimate following its fields."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (
    PASSWORD,
    LiveServer,
    browser_page,
    launch_sampling,
    log_in,
    sampling_live_server,
    shot,
)
from tests.sampling.conftest import FAKE

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def sampling_server(tmp_path_factory) -> Iterator[LiveServer]:
    """A server and one worker of their own whose sampling jobs run the fake program (the shared live
    server would run the real one)."""
    root = tmp_path_factory.mktemp("sampling-live")
    embedded = root / "embedded"
    embedded.mkdir()
    (embedded / "config.json").write_text("{}")
    env = {"SFTLAB_SAMPLING_MODULE": FAKE, "SFTLAB_MODEL_DIR": str(embedded), "FAKE_SAMPLE_DELAY": "0.05"}
    with sampling_live_server(root, "sampling", env) as live:
        yield live


def test_launch_sampling_from_the_form_and_read_the_answers(browser, sampling_server):
    sampling_server.create_user("wen", "researcher")
    dataset_id = sampling_server.import_pclue("wen", "pclue sampling e2e")
    with browser_page(browser, sampling_server.url) as page:
        log_in(page, "wen", PASSWORD, "/sampling")
        page.locator('nav a[href="/sampling"]').click()
        page.locator('a[href="/sampling/new"]').click()
        launch_sampling(
            page, sampling_server, model="embedded", dataset_id=dataset_id, timeout_ms=120_000, n="2"
        )
        rows = page.locator(".prompt-row")
        expect(rows).to_have_count(5)
        expect(rows.first.locator("pre.answer")).to_have_count(2)
        expect(rows.first.locator("pre.answer").first).to_contain_text("<i>answer</i>")
        expect(rows.first.locator("pre.reference")).not_to_be_empty()
        expect(page.locator("[data-cut]")).to_contain_text("%")
        shot(page, "sampling-results-en")
        analysis = page.locator("#analysis")
        expect(analysis.locator("table.analysis-accuracy tbody tr")).to_have_count(1)
        expect(analysis.locator('tr[data-task="anaphora_resolution"] [data-acc]')).not_to_be_empty()
        expect(analysis.locator("svg.latency circle")).to_have_count(10)
        analysis.scroll_into_view_if_needed()
        shot(page, "sampling-analysis-en")

        # the form's estimate follows the fields; the fake program's jobs measure no speed (no load_s)
        page.goto(f"/sampling/new?model=embedded&dataset_id={dataset_id}&version=1")
        expect(page.locator("#est-none")).to_be_visible()
        page.locator('input[name="task"]').fill("anaphora_resolution")
        page.locator('input[name="n"]').fill("3")
        expect(page.locator("#est-answers")).to_contain_text("5 prompts × n 3 = 15 answers")
        shot(page, "sampling-form-estimate-en")
