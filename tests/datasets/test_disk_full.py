"""A full disk during an upload or an import gives a clear error and leaves nothing partial behind."""

import errno
import json
import os
import random
import sqlite3

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from app.core.config import get_settings
from app.datasets.import_job import create_job
from app.datasets.import_options import ImportOptions
from app.datasets.mapping import Mapping
from app.models import Dataset, DatasetVersion, ImportJob, Job, Role, Sample, Upload
from tests.conftest import SHARED_DATA
from tests.tmpfs import tmpfs
from worker.kinds.imports import run_import_job

PCLUE = SHARED_DATA / "pclue_train_9.jsonl"
DISK_FULL_EN = "The server's disk is full: the upload was not stored."
DISK_FULL_ZH = "服务器磁盘已满"


@pytest.fixture(autouse=True)
def no_indexing(monkeypatch):
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", lambda _: None)


def _count(engine, model) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def _nothing_stored(settings, engine) -> None:
    assert list(settings.uploads_dir.iterdir()) == []  # no partial file, no .part
    assert _count(engine, Upload) == 0


# --- uploads ---------------------------------------------------------------------------------------


def test_an_upload_onto_a_full_file_system_answers_507_and_keeps_nothing(client_as, settings, engine):
    researcher = client_as(Role.researcher)
    with tmpfs(settings.uploads_dir, "1m"):
        body = os.urandom(3 << 20)
        r = researcher.post("/api/uploads?filename=big.jsonl", content=body)
        assert r.status_code == 507 and r.json()["detail"].startswith(DISK_FULL_EN)
        _nothing_stored(settings, engine)
        r = researcher.post("/api/uploads", files={"file": ("big.jsonl", body)})
        assert r.status_code == 507 and r.json()["detail"].startswith(DISK_FULL_EN)
        _nothing_stored(settings, engine)
        r = researcher.post("/api/uploads?filename=p.jsonl", content=PCLUE.read_bytes()[:100_000])
        assert r.status_code == 201  # the space was given back


class _FullDisk:
    """A file whose disk runs out after `room` bytes, as a real one does: ENOSPC from write."""

    def __init__(self, real, room: int) -> None:
        self.real, self.room = real, room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.real.write(data)

    def close(self) -> None:
        self.real.close()


@pytest.mark.parametrize("multipart", [False, True])
def test_enospc_while_writing_an_upload_answers_507_in_the_users_language(
    client_as, settings, engine, monkeypatch, multipart
):
    researcher = client_as(Role.researcher)
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(
        "app.datasets.uploads.open", lambda path, mode: _FullDisk(open(path, mode), 1 << 20), raising=False
    )
    body = os.urandom(3 << 20)
    send = {"files": {"file": ("big.jsonl", body)}} if multipart else {"content": body}
    r = researcher.post("/api/uploads?filename=big.jsonl", **send)
    assert r.status_code == 507 and r.json()["detail"].startswith(DISK_FULL_EN)
    researcher.cookies.set("lang", "zh")
    r = researcher.post("/api/uploads?filename=big.jsonl", **send)
    assert r.status_code == 507 and r.json()["detail"].startswith(DISK_FULL_ZH)
    _nothing_stored(settings, engine)


def test_a_full_database_while_registering_an_upload_answers_507(client_as, settings, engine, monkeypatch):
    researcher = client_as(Role.researcher)

    def full(*_args, **_kw):
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr("app.datasets.uploads.describe", full)
    r = researcher.post("/api/uploads?filename=p.jsonl", content=PCLUE.read_bytes())
    assert r.status_code == 507 and r.json()["detail"].startswith(DISK_FULL_EN)
    _nothing_stored(settings, engine)


# --- imports ---------------------------------------------------------------------------------------

MAPPING = Mapping(prompt=["input"], answer="target", task_l1="type")


def _import(engine, settings, owner_id: int, path, name: str) -> tuple[ImportJob, Job]:
    """Stores `path` as an upload, imports it through the job machinery and returns the finished job."""
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    stored = f"{name}.upload"
    (settings.uploads_dir / stored).write_bytes(path.read_bytes())
    with Session(engine) as s:
        up = Upload(owner_id=owner_id, filename=f"{name}.jsonl", stored_name=stored, size=path.stat().st_size)
        s.add(up)
        s.commit()
        s.refresh(up)
        imp = create_job(s, upload=up, options=ImportOptions(mapping=MAPPING, name=name), owner_id=owner_id)
    run_import_job(imp.id)
    with Session(engine) as s:
        imp = s.get_one(ImportJob, imp.id)
        return imp, s.get_one(Job, imp.job_id)


def _big_jsonl(path, rows: int = 4000) -> None:
    rnd = random.Random(0)
    with open(path, "w") as f:
        for i in range(rows):
            text = "".join(rnd.choice("abcdefghij klmnop") for _ in range(1500))
            f.write(json.dumps({"input": f"{i} {text}", "target": text[::-1], "type": "t"}) + "\n")


def _assert_failed_cleanly(engine, imp: ImportJob, job: Job, before: dict) -> None:
    assert job.status == "failed"
    assert "The server's disk is full: the import was rolled back and nothing was imported." in job.error
    assert imp.dataset_id is None
    after = {m: _count(engine, m) for m in (Dataset, DatasetVersion, Sample)}
    assert after == before


def test_an_import_onto_a_full_file_system_fails_and_changes_nothing(settings, tmp_path, monkeypatch):
    full = tmp_path / "full"
    with tmpfs(full, "3m"):
        db = full / "sftlab.db"
        db.write_bytes((settings.data_dir / "sftlab.db").read_bytes())
        monkeypatch.setenv("SFTLAB_DATABASE_URL", f"sqlite:///{db}")
        get_settings.cache_clear()
        settings = get_settings()
        from app.core.db import get_engine

        engine = get_engine(settings)
        from app.cli import create_user

        owner = create_user(username="owner", password="correct horse battery", role=Role.researcher)
        first, _ = _import(engine, settings, owner.id, PCLUE, "pclue")
        assert first.n_ok == 705
        before = {m: _count(engine, m) for m in (Dataset, DatasetVersion, Sample)}
        big = tmp_path / "big.jsonl"
        _big_jsonl(big)
        imp, job = _import(engine, settings, owner.id, big, "big")
        _assert_failed_cleanly(engine, imp, job, before)
        with Session(engine) as s:
            assert (
                s.exec(
                    select(func.count()).select_from(Sample).where(Sample.dataset_id == first.dataset_id)
                ).one()
                == 705
            )
        engine.dispose()


def test_a_full_database_during_an_import_fails_the_job_with_a_clear_error(
    settings, engine, make_user, monkeypatch
):
    owner = make_user()
    first, _ = _import(engine, settings, owner.id, PCLUE, "pclue")
    before = {m: _count(engine, m) for m in (Dataset, DatasetVersion, Sample)}
    from app.datasets.sample_writer import SampleWriter

    real = SampleWriter.write
    calls = 0

    def write(self, batch):  # noqa: ANN001
        nonlocal calls
        calls += 1
        if calls == 1:  # the dataset and its version are in the transaction already
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))
        return real(self, batch)

    monkeypatch.setattr(SampleWriter, "write", write)
    imp, job = _import(engine, settings, owner.id, PCLUE, "again")
    assert calls == 1
    _assert_failed_cleanly(engine, imp, job, before)
