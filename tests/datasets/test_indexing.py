"""index_version indexes only a version's new rows, is idempotent and resumable, and records failures on the version."""

import json

from sqlalchemy import text
from sqlmodel import Session

from app.datasets import indexing
from app.models import DatasetVersion, Role
from tests.conftest import SHARED_DATA
from tests.datasets.test_search import PCLUE, load
from worker.kinds.index import index_version


def fts_rows(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM sample_grams")).scalar_one()


def test_only_new_rows_are_indexed_and_reruns_add_nothing(engine, make_user):
    user = make_user(Role.researcher)
    ds, _, vid = load(engine, user.id, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="p")
    assert fts_rows(engine) == 705
    index_version(version_id=vid)
    assert fts_rows(engine) == 705
    _, _, vid2 = load(engine, user.id, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="", target=ds)
    assert fts_rows(engine) == 1410
    index_version(version_id=vid2)
    assert fts_rows(engine) == 1410
    with Session(engine) as s:
        v = s.get(DatasetVersion, vid2)
        assert v.status == "ready" and v.stage == "" and v.progress == 1.0
        assert '"n_samples": 1410' in v.stats_json


def test_interrupted_indexing_resumes_after_the_last_batch(engine, make_user, monkeypatch):
    user = make_user(Role.researcher)
    monkeypatch.setattr(indexing, "BATCH", 100)
    calls = {"n": 0}
    real = indexing.write_index

    def flaky(conn, batch):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("disk on fire")
        return real(conn, batch)

    monkeypatch.setattr(indexing, "write_index", flaky)
    _, _, vid = load(engine, user.id, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="p")
    with Session(engine) as s:
        v = s.get(DatasetVersion, vid)
        assert v.status == "failed" and "disk on fire" in v.error
    assert fts_rows(engine) == 300  # three committed batches
    index_version(version_id=vid)
    assert fts_rows(engine) == 705
    with Session(engine) as s:
        v = s.get(DatasetVersion, vid)
        assert v.status == "ready" and v.error == ""


def test_missing_version_is_ignored(engine):
    index_version(version_id=12345)


def test_statistics_in_a_second_process_equal_inline(engine, make_user, monkeypatch):
    """Large versions get their statistics from a second process beside the index build: the same result."""
    user = make_user(Role.researcher)
    ds, _, vid = load(engine, user.id, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="p")

    def stats_and_anchors() -> tuple[dict, list]:
        with engine.connect() as c:
            st = json.loads(
                c.execute(text("SELECT stats_json FROM datasetversion WHERE id = :v"), {"v": vid}).scalar()
            )
            anchors = c.execute(text("SELECT * FROM sample_fts_anchor ORDER BY key, page")).all()
        for key in ("timings", "seconds"):
            st.pop(key)
        st["near_duplicates"].pop("seconds")
        return st, anchors

    inline = stats_and_anchors()
    monkeypatch.setattr(indexing, "PARALLEL_STATS_MIN", 0)
    index_version(version_id=vid)
    with engine.connect() as c:
        timings = json.loads(
            c.execute(text("SELECT stats_json FROM datasetversion WHERE id = :v"), {"v": vid}).scalar()
        )["timings"]
    assert timings["stats_in_parallel"] is True
    assert stats_and_anchors() == inline
