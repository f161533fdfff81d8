"""Shared run fixtures: a tiny random model directory and pCLUE imported as a dataset version."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from app.models import Role
from tests.conftest import SHARED_DATA
from tests.trainer.tiny_run import make_tiny_model_dir

PCLUE = SHARED_DATA / "pclue_train_9.jsonl"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer random Llama with the SmolLM2 tokenizer, saved once per session (a run's base model)."""
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


@dataclass
class ImportedDataset:
    dataset_id: int
    version: int
    owner_id: int
    task_counts: dict[str, int]


def import_pclue(owner_id: int, *, name: str = "pclue", path: Path = PCLUE) -> ImportedDataset:
    """pCLUE through the real importer (task_type = its `type`), version 1."""
    from app.datasets.import_options import ImportOptions
    from app.datasets.importer import import_file
    from app.datasets.mapping import Mapping

    m = Mapping(prompt=["input"], answer="target", task_l1="type")
    res = import_file(
        path=path, options=ImportOptions(mapping=m, name=name), owner_id=owner_id, filename=path.name
    )
    assert res.status == "succeeded", res.report
    return ImportedDataset(res.dataset_id, 1, owner_id, dict(res.report["task_counts"]))


@pytest.fixture
def no_indexing(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", calls.append)
    return calls


@pytest.fixture
def pclue_dataset(settings, make_user, no_indexing) -> ImportedDataset:
    owner = make_user(Role.researcher, "data_owner")
    return import_pclue(owner.id)
