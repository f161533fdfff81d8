"""In real Chromium: a problem the estimate finds shows beside the field it concerns, with its fixes; a fix
clicked there estimates again, clears it and unblocks Launch."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, log_in, shot
from tests.trainer.tiny_run import make_tiny_model_dir

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_over_length_problem_shows_beside_max_seq_len_and_its_fix_clears_it(page, live_server, tmp_path):
    live_server.create_user("ming", "researcher")
    dataset_id = live_server.import_pclue("ming", "pclue field e2e")
    model = make_tiny_model_dir(tmp_path / "tiny")

    log_in(page, "ming", PASSWORD, "/runs/new")
    form = page.locator("#launch-form")
    with page.expect_response(re.compile(r"/runs/new/mix$")):
        form.locator(f'input[name="train_ds"][value="{dataset_id}"]').check()
    form.locator('input[name="base_kind"][value="path"]').check()
    form.locator('input[name="base_path"]').fill(str(model))
    form.locator('input[name="f.data.max_seq_len"]').fill("40")

    page.locator("#estimate-button").click()
    slot = page.locator("#problem-data-max_seq_len")
    expect(slot).to_contain_text("longer than data.max_seq_len 40", timeout=120_000)
    expect(slot).to_be_visible()  # its folded section was opened for it
    expect(page.locator("#launch-button")).to_be_disabled()
    shot(page, "run-new-field-problem")

    slot.locator('button.fix[data-fix-field="f.data.max_seq_len"]').click()
    expect(page.locator("#est-steps")).to_be_visible(timeout=120_000)
    expect(slot).to_be_empty()
    assert int(form.locator('input[name="f.data.max_seq_len"]').input_value()) > 40
    expect(page.locator("#launch-button")).to_be_enabled()
