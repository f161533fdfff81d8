"""Sampling fixtures: the fake sampling program in place of trainer.sample, a fake embedded model
directory, pCLUE imported as a dataset version, and a researcher who launches."""

import json
from pathlib import Path

import pytest
from sqlmodel import Session

from app.core.config import Settings, get_settings
from app.models import Role, SamplingJob
from app.sampling.launch import launch
from app.sampling.request import parse_request
from tests.runs.conftest import ImportedDataset, import_pclue
from tests.worker.conftest import FAST

FAKE = "tests.sampling.fake_sample"


@pytest.fixture
def sampling(settings, monkeypatch, tmp_path) -> Settings:
    """Test settings with the fake program, the transformers backend's interpreter (this one), short
    intervals, and an 'embedded' model directory that only needs to look like one."""
    embedded = tmp_path / "embedded"
    embedded.mkdir()
    (embedded / "config.json").write_text("{}")
    for key, value in {**FAST, "SFTLAB_SAMPLING_MODULE": FAKE, "SFTLAB_MODEL_DIR": str(embedded)}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", lambda *_: None)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
def pclue(sampling, make_user) -> ImportedDataset:
    owner = make_user(Role.researcher, "data_owner")
    return import_pclue(owner.id)


def launch_fake(engine, pclue: ImportedDataset, **extra) -> SamplingJob:  # noqa: ANN001
    """A sampling job of the embedded model on pCLUE (queued: a test runs it, or a worker does)."""
    body = {"model": "embedded", "dataset_id": pclue.dataset_id, "version": pclue.version,
            "backend": "transformers", **extra}  # fmt: skip
    with Session(engine) as session:
        return launch(session, req=parse_request(body), owner_id=pclue.owner_id, settings=get_settings())


def spec_of(settings: Settings, job_id: int) -> dict:
    return json.loads((Path(settings.data_dir) / "jobs" / str(job_id) / "spec.json").read_text())
