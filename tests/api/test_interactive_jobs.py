"""Short jobs a page waits for are bounded: past the limit a request gets 429 with Retry-After, and a job no
worker takes ends the wait with a clear reason and is cancelled, never holding a web thread forever."""

import pytest
from sqlmodel import Session, select

from app.core.config import get_settings
from app.jobs import interactive
from app.models import Job, JobKind, JobStatus
from app.runs import estimate as estimating
from tests.api.test_launch_api import body, dataset  # noqa: F401 - fixture
from tests.runs.fake_runs import make_run


@pytest.fixture
def limit_two(settings, monkeypatch):
    monkeypatch.setenv("SFTLAB_INTERACTIVE_LIMIT", "2")
    get_settings.cache_clear()
    return get_settings()


def fill_queue(engine, n: int) -> None:
    with Session(engine) as s:
        for _ in range(n):
            s.add(Job(kind=JobKind.render, queue=get_settings().interactive_queue))
        s.commit()


def test_a_full_interactive_queue_answers_429_with_a_retry_hint(limit_two, engine, researcher, dataset):  # noqa: F811
    fill_queue(engine, 2)
    estimating._CACHE.clear()
    r = researcher.post("/api/runs/estimate", json=body(dataset))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 2
    assert "waiting" in r.json()["detail"]
    with Session(engine) as s:  # nothing was added to the pile
        assert len(s.exec(select(Job).where(Job.kind == JobKind.estimate)).all()) == 0


def test_the_sample_viewer_says_429_too(limit_two, engine, researcher, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "train.jsonl").write_text(
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    )
    with Session(engine) as s:
        run = make_run(s, researcher.user.id, run_dir=run_dir)
    fill_queue(engine, 2)
    page = researcher.get(f"/runs/{run.id}/samples/0")
    assert page.status_code == 429 and "Retry-After" in page.headers


def test_a_job_no_worker_takes_ends_the_wait_and_is_cancelled(settings, engine, monkeypatch):
    monkeypatch.setattr("app.jobs.queue.send", lambda job, **_: "nobody listens")
    job_id = interactive.submit(engine, kind=JobKind.render, owner_id=None, params={}, title="t")
    with pytest.raises(interactive.Unavailable, match="did not finish within 0 s \\(no worker took it\\)"):
        interactive.wait(engine, job_id, timeout=0.2)
    with Session(engine) as s:
        assert s.get(Job, job_id).status == JobStatus.cancelled


def test_a_finished_job_is_returned_with_its_result(settings, engine, inline_worker):
    params = {
        "record": {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        "tokenizer": str(settings.model_dir),
        "options": {"scope": "all", "prompt_loss": False, "eos_in_loss": True},
    }
    job_id = interactive.submit(engine, kind=JobKind.render, owner_id=None, params=params, title="t")
    job = interactive.wait(engine, job_id, timeout=60)
    assert job.status == JobStatus.succeeded, job.error
    tokens = interactive.result_of(job)["tokens"]
    assert "".join(t["text"] for t in tokens if t["supervised"]).startswith("a")
