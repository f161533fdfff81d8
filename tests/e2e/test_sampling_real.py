"""In real Chromium against a live server whose worker runs the real sampling program (trainer.sample, not
the fake) with the transformers backend: launch from the form on a tiny model given by its absolute path and
pCLUE's 5 anaphora_resolution prompts with n=2, wait for the job to succeed, and see the 10 answers."""

from collections.abc import Iterator
from pathlib import Path

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
from tests.trainer.tiny_run import make_tiny_model_dir

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def real_sampling_server(tmp_path_factory) -> Iterator[tuple[LiveServer, Path]]:
    """A server and one worker of their own on the default sampling module (the real program), and a tiny
    random model (hidden 256) with the SmolLM2 tokenizer; yields (server, model dir)."""
    root = tmp_path_factory.mktemp("sampling-real")
    model_dir = make_tiny_model_dir(root / "tiny", hidden=256, layers=2)
    env = {"SFTLAB_REAPER_INTERVAL": "0", "SFTLAB_TRAINER_THREADS": "1"}
    with sampling_live_server(root, "sampling-real", env) as live:
        yield live, model_dir


def test_launch_from_the_form_with_the_real_program(browser, real_sampling_server):
    server, model_dir = real_sampling_server
    server.create_user("li", "researcher")
    dataset_id = server.import_pclue("li", "pclue real sampling e2e")
    with browser_page(browser, server.url) as page:
        log_in(page, "li", PASSWORD, "/sampling/new")
        launch_sampling(
            page,
            server,
            model=str(model_dir),
            dataset_id=dataset_id,
            timeout_ms=60_000,
            n="2",
            max_new_tokens="12",
        )
        rows = page.locator(".prompt-row")
        expect(rows).to_have_count(5)
        expect(page.locator(".prompt-row pre.answer")).to_have_count(10)
        # the real program's answers, not the fake's marked ones
        expect(page.locator(".prompt-row pre.answer", has_text="<i>answer</i>")).to_have_count(0)
        shot(page, "sampling-real")
