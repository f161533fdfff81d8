"""In real Chromium: answers stored while a running job's results page is open appear on it without a reload
(a new prompt as a new row, a second answer inside its prompt's row), and the page stops polling once the
job has ended."""

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, select

from app.core.db import make_engine
from app.jobs.lifecycle import new_job
from app.models import DatasetVersion, Generation, Job, JobKind, JobStatus, SamplingJob, User
from app.sampling.prompts import select_ids
from app.sampling.request import Filter
from tests.e2e.conftest import PASSWORD, LiveServer, browser_page, log_in, sampling_live_server, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    with sampling_live_server(tmp_path_factory.mktemp("sampling-live-page"), "live-page", {}) as live:
        yield live


def _running_job(engine, owner_id: int, dataset_id: int) -> tuple[int, int, list[int]]:  # noqa: ANN001
    """A sampling job marked running (never queued: no worker touches it) with one stored answer."""
    with Session(engine) as session:
        version = session.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id)).one()
        ids = select_ids(session, dataset_id=dataset_id, version=version.number, flt=Filter(task="generate"))[
            :3
        ]
        job = new_job(
            session, kind=JobKind.sample, owner_id=owner_id, queue="none", title="live", unit="prompts"
        )
        job.status, job.progress_total = JobStatus.running, 3
        sampling = SamplingJob(
            owner_id=owner_id, job_id=job.id, model_ref="embedded", model_dir="/nowhere",
            dataset_version_id=version.id, filter_json=json.dumps({"task": "generate", "tag": "", "q": ""}),
            params_json=json.dumps({"params": {"n": 2}}), mode="chat", backend="transformers", n_prompts=3,
        )  # fmt: skip
        session.add(job)
        session.add(sampling)
        session.commit()
        _answer(session, sampling.id, ids[0], 0, "first answer")
        return sampling.id, job.id, ids


def _answer(session: Session, sampling_id: int, sample_id: int, index: int, text: str) -> None:
    session.add(
        Generation(
            sampling_job_id=sampling_id,
            sample_id=sample_id,
            prompt_id=str(sample_id),
            index=index,
            task_type="generate",
            prompt_text=f"prompt {sample_id}",
            text=text,
            tokens=2,
            finish_reason="stop",
        )  # fmt: skip
    )
    session.commit()


def test_answers_stored_while_the_page_is_open_are_appended(browser, server):
    server.create_user("lin", "researcher")
    dataset_id = server.import_pclue("lin", "pclue live page")
    engine = make_engine(server.env["SFTLAB_DATABASE_URL"])
    with Session(engine) as session:
        owner = session.exec(select(User).where(User.username == "lin")).one().id
    sampling_id, job_id, ids = _running_job(engine, owner, dataset_id)
    with browser_page(browser, server.url) as page:
        log_in(page, "lin", PASSWORD, "/sampling")
        page.goto(f"/sampling/{sampling_id}")
        rows = page.locator(".prompt-row")
        expect(rows).to_have_count(1)
        # marks that a reload would wipe: a window property and an attribute on the shown row
        page.evaluate(
            "() => { window.stillHere = 1; document.querySelector('.prompt-row').dataset.mark = 'kept'; }"
        )
        with Session(engine) as session:
            _answer(session, sampling_id, ids[1], 0, "a new prompt's answer")
            _answer(session, sampling_id, ids[0], 1, "the second answer")
        expect(rows).to_have_count(2, timeout=20_000)
        expect(page.locator(f"#p{ids[1]} pre.answer")).to_have_text("a new prompt's answer")
        expect(page.locator(f"#p{ids[0]} pre.answer")).to_have_count(2)
        expect(page.locator(f"#p{ids[0]} pre.answer").nth(1)).to_have_text("the second answer")
        expect(page.locator('[data-finish="stop"]')).to_have_text("stop: 3")
        assert page.evaluate("() => window.stillHere") == 1
        assert page.get_attribute(f"#p{ids[0]}", "data-mark") == "kept"
        shot(page, "sampling-live-en")

        with Session(engine) as session:
            job = session.get_one(Job, job_id)
            job.status = JobStatus.succeeded
            session.add(job)
            session.commit()
        expect(page.locator(".job-status")).to_have_text("succeeded", timeout=20_000)
        expect(page.locator("#sampling-live")).not_to_have_attribute("hx-trigger", "every 2s")
        assert page.evaluate("() => window.stillHere") == 1
