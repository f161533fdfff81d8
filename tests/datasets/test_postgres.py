"""On PostgreSQL the search (pg_trgm for 3+ characters, the gram array for 1-2), browser and statistics give the same results as on SQLite."""

import json
import random

import pytest
from sqlalchemy import text
from sqlmodel import Session

from app.datasets.browse import BrowseFilters, all_matching_ids, browse_page, count_matching
from app.datasets.import_options import ImportOptions
from app.datasets.importer import import_file
from app.datasets.search import brute_force_ids
from app.models import DatasetVersion, Role, User
from tests.conftest import SHARED_DATA
from tests.datasets.test_browse import BROWSE_MAPPING, FILTERS, expected, write_random_samples
from tests.datasets.test_search import BELLE, PCLUE, load, queries_from
from worker.kinds.index import index_version

pytestmark = pytest.mark.postgres


def pg_load(engine, settings, owner_id, path, mapping, *, name, kind="train"):
    result = import_file(
        path=path,
        options=ImportOptions(mapping=mapping, name=name, kind=kind),
        owner_id=owner_id,
        engine=engine,
        settings=settings,
        enqueue_index=False,
    )
    assert result.status == "succeeded", result.report
    index_version(version_id=result.version_id, settings=settings)
    return result.dataset_id, result.version, result.version_id


def user(engine) -> int:
    with Session(engine) as s:
        u = User(username="pg", role=Role.researcher, password_hash="x")
        s.add(u)
        s.commit()
        return u.id


def test_postgres_search_equals_brute_force_and_sqlite(pg, engine, make_user):
    pg_engine, settings = pg
    uid = user(pg_engine)
    pc = pg_load(pg_engine, settings, uid, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="pclue")
    be = pg_load(
        pg_engine, settings, uid, SHARED_DATA / "belle_eval_set.json", BELLE, name="belle", kind="eval"
    )
    sq_user = make_user(Role.researcher)
    sq = load(engine, sq_user.id, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="pclue")
    import json

    texts = [
        json.loads(line)["input"] for line in open(SHARED_DATA / "pclue_train_9.jsonl", encoding="utf-8")
    ]
    rng = random.Random(1)
    qs = ["北京", "答案：", "答", "的", "是的", "，", "Python", "%", "_", "a b", "1"] + queries_from(
        texts, rng, 30
    )
    with Session(pg_engine) as s, Session(engine) as s2:
        for q in qs:
            for field in ("all", "prompt", "answer"):
                f = BrowseFilters(q=q, field=field)
                for ds, v, vid in (pc, be):
                    got = all_matching_ids(s, dataset_id=ds, version=v, filters=f)
                    with pg_engine.connect() as c:
                        want = brute_force_ids(c, dataset_id=ds, version=v, q=q, field=field)
                    assert got == want, (q, field)
                    assert count_matching(s, dataset_id=ds, version=v, version_id=vid, filters=f) == len(want)
                # same rows as SQLite (same file, same order): compare line numbers
                pg_ids = all_matching_ids(s, dataset_id=pc[0], version=1, filters=f)
                sq_ids = all_matching_ids(s2, dataset_id=sq[0], version=1, filters=f)
                assert [i - pc_first(s, pc[0]) for i in pg_ids] == [i - pc_first(s2, sq[0]) for i in sq_ids]


def pc_first(session, ds: int) -> int:
    return session.execute(text("SELECT min(id) FROM sample WHERE dataset_id = :d"), {"d": ds}).scalar_one()


def test_postgres_browser_and_statistics(pg, tmp_path, engine, make_user):
    pg_engine, settings = pg
    path = write_random_samples(tmp_path, 300)
    ds, v, vid = pg_load(pg_engine, settings, user(pg_engine), path, BROWSE_MAPPING, name="b")
    with Session(pg_engine) as s:
        for f in FILTERS:
            want = expected(pg_engine, ds, v, f)
            assert all_matching_ids(s, dataset_id=ds, version=v, filters=f) == want, f
            got = [
                r["id"]
                for n in range(1, 10)
                for r in browse_page(s, dataset_id=ds, version=v, version_id=vid, filters=f, page=n).rows
            ]
            assert got == want, f
        st = json.loads(s.get(DatasetVersion, vid).stats_json)
    sq = load(engine, make_user(Role.researcher).id, path, BROWSE_MAPPING, name="b")
    with Session(engine) as s:
        st2 = json.loads(s.get(DatasetVersion, sq[2]).stats_json)
    for key in ("n_samples", "task_tree", "histograms", "tags", "has_system", "counts"):
        assert st[key] == st2[key], key
    assert [a["count"] for a in st["top_answers"]] == [a["count"] for a in st2["top_answers"]]
    assert st["exact_duplicates"]["groups"] == st2["exact_duplicates"]["groups"]
