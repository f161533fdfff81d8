"""The default a new user meets: in real Chromium, the embedded SmolLM2-135M-Instruct sampled through vLLM
(`.venv-vllm`, the real program) from the launch form, on pCLUE's 5 anaphora_resolution prompts with n=2.
The results page shows vLLM's version and ten real answers."""

import re
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

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A letter or a CJK character: an answer made of something a model says, not padding or byte debris.
WORDLIKE = re.compile(r"[A-Za-z\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory) -> Iterator[LiveServer]:
    from trainer.embedded import ensure_model

    ensure_model()  # converted once and cached; the server's settings.model_dir defaults to it
    root = tmp_path_factory.mktemp("sampling-embedded")
    env = {"SFTLAB_REAPER_INTERVAL": "0", "SFTLAB_TRAINER_THREADS": "1"}
    with sampling_live_server(root, "sampling-embedded", env) as live:
        yield live


def test_the_embedded_model_answers_through_vllm_from_the_form(browser, embedded_server):
    server = embedded_server
    server.create_user("mei", "researcher")
    dataset_id = server.import_pclue("mei", "pclue embedded vllm e2e")
    with browser_page(browser, server.url) as page:
        log_in(page, "mei", PASSWORD, "/sampling/new")
        launch_sampling(
            page,
            server,
            model="embedded",
            dataset_id=dataset_id,
            timeout_ms=240_000,  # engine load (about 20 s alone) on a busy 2-core machine
            backend="vllm",
            n="2",
            max_new_tokens="24",
            temperature="0.7",
            seed="7",
        )
        expect(page.locator("main")).to_contain_text("vllm 0.32.0")
        expect(page.locator(".prompt-row")).to_have_count(5)
        answers = page.locator(".prompt-row pre.answer")
        expect(answers).to_have_count(10)
        texts = answers.all_inner_texts()
        assert all(WORDLIKE.search(text) for text in texts), texts
        assert len(set(texts)) > 1, texts  # sampled answers to different prompts differ
        shot(page, "sampling-embedded-vllm")
