"""On PostgreSQL too, NUL characters and out-of-range numbers in requests are the caller's error (400), never a 500."""

from pathlib import Path

import pytest

from app.core.config import get_settings
from app.models import Role
from tests.conftest import SHARED_DATA, eager_dataset_jobs

HUGE = "9" * 25


@pytest.fixture
def settings(pg, monkeypatch, tmp_path):
    """The app itself on a fresh migrated PostgreSQL database (overrides conftest's SQLite settings)."""
    _, pg_settings = pg
    env = {
        "SFTLAB_DATA_DIR": str(tmp_path),
        "SFTLAB_DATABASE_URL": pg_settings.database_url,
        "SFTLAB_SECRET_KEY": "test-secret",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    eager_dataset_jobs(monkeypatch)
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def no_indexing(monkeypatch):
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", lambda version_id: None)


def test_nul_and_huge_values_in_requests_are_client_errors(client_as):
    c = client_as(Role.researcher)
    up = c.post("/api/uploads?filename=p.jsonl", content=(SHARED_DATA / "pclue_train_9.jsonl").read_bytes())
    job = c.post(f"/api/uploads/{up.json()['upload_id']}/import", json={"policy": "valid"}).json()
    d = job["dataset_id"]
    r = c.post(
        f"/api/datasets/{d}/versions/1/edit",
        json={"action": "add_tag", "value": "a\x00b", "scope": "query", "task": "nli"},
    )
    assert r.status_code == 400, r.text
    assert c.get(f"/datasets/{d}/v/1/samples", params={"tag": "a\x00"}).status_code == 400
    assert c.post("/api/tokens", json={"name": "a\x00"}).status_code == 400
    for url in (
        f"/datasets/{d}/v/1/samples?page={HUGE}",
        f"/samples/{HUGE}",
        f"/datasets/upload?target={HUGE}",
    ):
        assert c.get(url).status_code == 400, url
    assert c.get(f"/api/datasets/{d}").json()["latest_version"] == 1


def test_a_nul_line_is_reported_and_the_rest_imports(client_as):
    c = client_as(Role.researcher)
    body = (Path(__file__).parents[1] / "assets" / "malformed" / "27_nul_character.jsonl").read_bytes()
    up = c.post("/api/uploads?filename=nul.jsonl", content=body)
    job = c.post(f"/api/uploads/{up.json()['upload_id']}/import", json={"policy": "valid"}).json()
    status = c.get(f"/api/imports/{job['job_id']}").json()
    assert status["status"] == "succeeded", status
    assert (status["n_ok"], status["n_bad"]) == (1, 1)
