"""A sampling job end to end through the real sampling program (trainer.sample), not the fake: the
transformers backend in the worker's interpreter and the vLLM backend in .venv-vllm, on a tiny random model
with the SmolLM2 tokenizer and real pCLUE prompts. Answers are stored with the exact ChatML prompt sent."""

import pytest
from sqlmodel import Session, col, select

from app.core.config import get_settings
from app.models import Generation, Job, JobStatus, Role, SamplingJob
from app.sampling.launch import launch
from app.sampling.request import parse_request
from tests.runs.conftest import import_pclue
from tests.trainer.tiny_run import make_tiny_model_dir
from tests.worker.conftest import FAST
from worker.runner import execute


@pytest.fixture
def real(settings, monkeypatch, tmp_path, make_user):
    """The real program (the setting's default module), a tiny model vLLM's CPU attention accepts
    (head_dim 64), and pCLUE imported; returns (model_dir, imported dataset)."""
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SFTLAB_SAMPLING_MODULE", raising=False)
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", lambda *_: None)
    get_settings.cache_clear()
    assert get_settings().sampling_module == "trainer.sample"
    model_dir = make_tiny_model_dir(tmp_path / "tiny", hidden=256, layers=2)
    owner = make_user(Role.researcher, "data_owner")
    return model_dir, import_pclue(owner.id)


def run_job(engine, model_dir, pclue, backend: str) -> tuple[Job, SamplingJob, list[Generation]]:  # noqa: ANN001
    body = {"model": str(model_dir), "dataset_id": pclue.dataset_id, "version": pclue.version,
            "backend": backend, "filter": {"task": "anaphora_resolution"},
            "params": {"n": 2, "seed": 3, "temperature": 0.8, "max_new_tokens": 12}}  # fmt: skip
    with Session(engine) as session:
        sj = launch(session, req=parse_request(body), owner_id=pclue.owner_id, settings=get_settings())
    assert execute(sj.job_id)
    with Session(engine) as session:
        job = session.get_one(Job, sj.job_id)
        stored = session.get_one(SamplingJob, sj.id)
        rows = list(
            session.exec(
                select(Generation).where(Generation.sampling_job_id == sj.id).order_by(col(Generation.id))
            ).all()
        )
    return job, stored, rows


def check(job: Job, stored: SamplingJob, rows: list[Generation], backend: str) -> None:
    assert job.status == JobStatus.succeeded, (job.error, job.log_tail)
    assert (job.progress_done, job.progress_total) == (5, 5)  # pCLUE has 5 anaphora_resolution samples
    assert len(rows) == 10 and {(g.prompt_id, g.index) for g in rows} == {
        (g.prompt_id, k) for g in rows for k in (0, 1)
    }
    for g in rows:
        assert g.prompt_text.startswith("<|im_start|>") and g.prompt_text.endswith("<|im_start|>assistant\n")
        assert 0 < g.tokens <= 12 and g.prompt_tokens > 0
        assert g.finish_reason in ("stop", "length")
        assert g.ttft_s is not None and g.ttft_s >= 0
    assert stored.tokens == sum(g.tokens for g in rows)
    assert stored.backend == backend and stored.backend_version


def test_a_job_through_the_transformers_backend(real, engine):
    model_dir, pclue = real
    check(*run_job(engine, model_dir, pclue, "transformers"), "transformers")


@pytest.mark.slow
def test_a_job_through_vllm_in_its_own_environment(real, engine):
    model_dir, pclue = real
    job, stored, rows = run_job(engine, model_dir, pclue, "vllm")
    check(job, stored, rows, "vllm")
    assert stored.backend_version == "0.32.0"
