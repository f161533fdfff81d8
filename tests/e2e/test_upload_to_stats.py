"""In real Chromium against a live server and a real worker: upload pCLUE, map its fields, import, index, see the statistics."""

import json
import re
import time
from collections import Counter

import pytest
from playwright.sync_api import expect

from tests.conftest import SHARED_DATA
from tests.e2e.conftest import PASSWORD, log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PCLUE = SHARED_DATA / "pclue_train_9.jsonl"


def wait_json(page, url: str, done, timeout: float = 240.0) -> dict:  # noqa: ANN001
    """Polls a JSON endpoint with the page's own session until done(body) holds."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        response = page.request.get(url)
        assert response.ok, f"{url}: {response.status} {response.text()[:300]}"
        body = response.json()
        if done(body):
            return body
        time.sleep(0.5)
    raise AssertionError(f"{url} did not finish in {timeout}s: {json.dumps(body)[:1000]}")


def test_upload_pclue_through_mapping_and_see_statistics(page, live_server):
    expected = Counter(json.loads(line)["type"] for line in PCLUE.read_text().splitlines() if line.strip())
    assert expected["classify"] == 305 and expected["nli"] == 253
    live_server.create_user("wang", "researcher")
    log_in(page, "wang", PASSWORD, "/datasets/upload")

    # 1. Upload through the page (XHR with a progress bar) -> the mapping step.
    expect(page).to_have_url(re.compile(r"/datasets/upload$"))
    shot(page, "upload-en")
    page.set_input_files('#upload-form input[type="file"]', str(PCLUE))
    page.click("#upload-form button.primary")
    page.wait_for_url(re.compile(r"/uploads/\d+/mapping"), timeout=60_000)
    expect(page.locator("#upload-bar")).to_have_count(0)  # we left the upload page

    # 2. Mapping: input -> prompt, target -> answer, type -> task_type level 1.
    form = page.locator("form.mapping-form")
    form.locator('select[name="prompt"]').select_option("input")
    # Each change posts the form through HTMX for a live preview: it must carry the CSRF header from <body>.
    with page.expect_response(re.compile(r"/uploads/\d+/preview$")) as preview:
        form.locator('select[name="answer"]').select_option("target")
    assert preview.value.status == 200, preview.value.text()[:300]
    form.locator('select[name="task_l1"]').select_option("type")
    form.locator('input[name="name"]').fill("pclue e2e")
    expect(page.locator("#mapped")).to_contain_text("nli")  # the live preview follows the form
    shot(page, "mapping-en")
    form.locator("button.primary").click()

    # 3. The import runs in the worker process, then indexing and statistics.
    page.wait_for_url(re.compile(r"/imports/\d+"), timeout=30_000)
    job_id = int(re.search(r"/imports/(\d+)", page.url).group(1))
    # The page polls with HTMX until the worker is done and then links to the new dataset.
    open_dataset = page.locator('#import-status a[href^="/datasets/"]')
    try:
        expect(open_dataset).to_be_visible(timeout=240_000)
    except AssertionError as exc:
        raise AssertionError(f"import did not finish on the page\n{live_server.logs()}") from exc
    job = wait_json(page, f"/api/imports/{job_id}", lambda b: b["status"] not in ("queued", "running"))
    assert job["status"] == "succeeded", job
    assert job["n_ok"] == sum(expected.values()) and job["n_bad"] == 0
    shot(page, "import-en")
    dataset_id, number = job["dataset_id"], job["version"] or 1
    open_dataset.click()
    expect(page).to_have_url(f"{live_server.url}/datasets/{dataset_id}")
    version = wait_json(
        page,
        f"/api/datasets/{dataset_id}/versions/{number}",
        lambda b: b.get("status") in ("ready", "failed"),
    )
    assert version["status"] == "ready", version

    # 4. The statistics page: the task_type tree with counts, and charts drawn on canvases.
    page.reload()
    page.locator(f'a[href="/datasets/{dataset_id}/v/{number}/stats"]').first.click()
    expect(page).to_have_url(f"{live_server.url}/datasets/{dataset_id}/v/{number}/stats")
    for task, count in expected.most_common():
        row = page.locator("tr", has_text=task).first
        expect(row).to_contain_text(f"{count:,}" if count >= 1000 else str(count))
    canvas = page.locator("canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 50
    # Every chart stays inside its card, and the page is no wider than the window.
    widths = page.evaluate(
        "() => [...document.querySelectorAll('canvas')].map(c => [c.getBoundingClientRect().width,"
        " (c.closest('figure') || c.closest('.card') || document.body).getBoundingClientRect().width])"
    )
    assert all(canvas <= holder + 1 for canvas, holder in widths), widths
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "stats-en")
    shot(page, "readme-stats", full_page=False)

    # The rest of the dataset pages, for the review screenshots, in both languages.
    page.goto("/datasets")
    expect(page.get_by_text("pclue e2e").first).to_be_visible()
    shot(page, "datasets-en")
    page.goto(f"/datasets/{dataset_id}")
    expect(page.locator("main")).to_contain_text("705")
    shot(page, "dataset-en")
    page.goto(f"/datasets/{dataset_id}/v/{number}/samples?q=北京")
    shot(page, "samples-en")
    page.click("button.lang-switch")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    shot(page, "samples-zh")
    shot(page, "readme-samples-zh", full_page=False)
    page.goto(f"/datasets/{dataset_id}/v/{number}/stats")
    expect(page.locator("tr", has_text="classify").first).to_contain_text("305")
    expect(page.locator("canvas").first).to_be_visible()
    shot(page, "stats-zh")
    page.goto("/datasets")
    shot(page, "datasets-zh")
    page.goto("/datasets/upload")
    shot(page, "upload-zh")
    page.goto(f"/uploads/{job['upload_id']}/mapping")
    expect(page.locator("form.mapping-form")).to_be_visible()
    shot(page, "mapping-zh")
