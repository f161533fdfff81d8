"""The API reads bench/load.py sends take few statements each (token and user in one, dataset and version with its statistics in one), and still see a re-indexed version's new statistics."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from app.core.config import Settings
from app.core.db import make_engine
from tests.conftest import SHARED_DATA
from tests.datasets.test_search import PCLUE, load


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def hook(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", hook)


@pytest.fixture
def api(engine, researcher) -> Iterator[tuple[TestClient, int, int]]:
    """A client with a bearer token, as the load bench's, and the pCLUE dataset's (id, version)."""
    from app.main import app

    ds, v, _ = load(engine, researcher.user.id, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="pclue")
    token = researcher.post("/api/tokens", json={"name": "load"}).json()["token"]
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.get("/api/datasets").status_code == 200  # the token's last_used_at is written once
        yield client, ds, v


# Before: 7 statements for a page of samples or a count, 5 for statistics, 3 for the datasets list.
MOST = {
    "samples": 3,  # token + user, dataset + version, the page's rows
    "samples?task=nli": 3,
    "samples?q=答案": 3,
    "samples?field=prompt&q=答案": 3,
    "samples?after=40": 3,
    "samples?before=400": 3,
    "samples/count?q=答案": 4,  # token + user, dataset + version, visible ranges, one count per range
    "stats": 2,
}


def test_api_reads_take_few_statements(api, engine):
    client, ds, v = api
    for path, most in MOST.items():
        with statements(engine) as seen:
            r = client.get(f"/api/datasets/{ds}/versions/{v}/{path}")
        assert r.status_code == 200, (path, r.text)
        assert len(seen) <= most, (path, seen)
    for path in ("/api/datasets", "/api/jobs"):
        with statements(engine) as seen:
            assert client.get(path).status_code == 200
        assert len(seen) <= 2, (path, seen)


def test_statistics_follow_a_rewritten_version(api, engine):
    client, ds, v = api
    url = f"/api/datasets/{ds}/versions/{v}/stats"
    assert client.get(url).json()["stats"]["n_samples"] == 705
    with engine.begin() as c:  # as the worker re-indexing the version in another process
        raw = c.execute(
            text("SELECT stats_json FROM datasetversion WHERE dataset_id = :d"), {"d": ds}
        ).scalar()
        c.execute(
            text("UPDATE datasetversion SET stats_json = :s WHERE dataset_id = :d"),
            {"s": raw.replace('"n_samples": 705', '"n_samples": 704'), "d": ds},
        )
    assert client.get(url).json()["stats"]["n_samples"] == 704


def test_postgres_connections_are_pinged_unless_turned_off(settings):
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # never connected to: the pool is only built
    assert Settings().db_pre_ping is True
    assert make_engine(url).pool._pre_ping is True
    assert make_engine(url, pre_ping=False).pool._pre_ping is False
