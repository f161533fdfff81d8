"""In real Chromium against a live server and a real run worker: fill the launch form (tiny model, pCLUE), estimate, launch with Ctrl+Enter, and see the channel-loss chart draw."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, log_in, shot
from tests.trainer.tiny_run import make_tiny_model_dir

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_launch_a_run_from_the_form_and_see_the_channel_chart(page, live_server, tmp_path):
    live_server.create_user("li", "researcher")
    dataset_id = live_server.import_pclue("li", "pclue form e2e")
    model = make_tiny_model_dir(tmp_path / "tiny")

    log_in(page, "li", PASSWORD, "/runs/new")
    expect(page).to_have_url(re.compile(r"/runs/new$"))
    form = page.locator("#launch-form")
    form.locator('input[name="name"]').fill("tiny from the form")
    with page.expect_response(re.compile(r"/runs/new/mix$")) as mix:
        form.locator(f'input[name="train_ds"][value="{dataset_id}"]').check()
    assert mix.value.status == 200, mix.value.text()[:300]
    expect(page.locator('#mix-table tr[data-task="nli"]')).to_contain_text("253")
    form.locator('input[name="base_kind"][value="path"]').check()
    form.locator('input[name="base_path"]').fill(str(model))
    form.locator('input[name="f.data.max_seq_len"]').fill("256")
    page.locator("#section-data > summary").click()  # the collapsed groups open on a click
    form.locator('select[name="f.data.over_length"]').select_option("truncate")
    form.locator('input[name="f.train.epochs"]').fill("0.1")
    form.locator('input[name="f.train.lr"]').fill("1e-3")
    form.locator('input[name="f.train.grad_accum"]').fill("1")
    page.locator("#section-train > summary").click()
    form.locator('input[name="f.train.per_device_batch"]').fill("2")
    # Weight ×2 on nli: the table shows its effect before launch.
    weight = page.locator('#mix-table tr[data-task="nli"] input.weight')
    with page.expect_response(re.compile(r"/runs/new/mix$")):
        weight.fill("2")
        weight.press("Tab")
    expect(page.locator('#mix-table tr[data-task="nli"] td.after')).to_have_text("506")

    page.locator("#estimate-button").click()
    expect(page.locator("#est-steps")).to_be_visible(timeout=120_000)
    assert int(page.locator("#est-steps").inner_text().replace(",", "")) > 0
    shot(page, "run-new-en")

    page.locator('input[name="f.train.lr"]').focus()
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(r"/runs/\d+$"), timeout=30_000)
    chart = page.locator("#chart-channels")
    try:
        expect(chart).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"), timeout=240_000)
    except AssertionError as exc:
        raise AssertionError(f"the channel chart never drew\n{live_server.logs()}") from exc
    expect(chart.locator("canvas").first).to_be_visible()
    shot(page, "run-from-form-en")
