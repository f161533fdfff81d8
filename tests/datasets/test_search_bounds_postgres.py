"""On PostgreSQL a search of one dataset reads only that dataset's part of the search index, however large the
other datasets around it are, and finds the same samples, page after page, as without the bound."""

import json

import pytest
from sqlalchemy import event, text
from sqlmodel import Session

from app.datasets.browse import browse_page, filters_from
from app.datasets.search import brute_force_ids
from tests.datasets.test_postgres import pg_load, user
from tests.datasets.test_search import PCLUE

pytestmark = pytest.mark.postgres

BIG, SMALL, EVERY = 4000, 700, 10


def write(path, n: int, word: str):  # noqa: ANN001, ANN201
    """n samples, one in EVERY holding the word."""
    rows = (
        {"input": f"{word if i % EVERY == 0 else '上海'} 第{i}题", "target": f"答{i}", "type": "qa"}
        for i in range(n)
    )
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def heap_rows(plan: dict) -> int:
    """Rows of sample_fts a plan read from the table (kept or filtered out), over all its loops."""
    own = 0
    if plan.get("Relation Name") == "sample_fts":
        kept = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
        own = (kept + plan.get("Rows Removed by Index Recheck", 0)) * plan.get("Actual Loops", 1)
    return own + sum(heap_rows(child) for child in plan.get("Plans", []))


@pytest.mark.parametrize("word", ["北京", "北京市"])  # the gram array (1-2 characters) and pg_trgm (3+)
def test_a_small_dataset_beside_large_ones_reads_its_own_rows(pg, tmp_path, word):
    engine, settings = pg
    owner = user(engine)
    # Large datasets on both sides of the small one, the word as frequent in all three.
    pg_load(engine, settings, owner, write(tmp_path / "a.jsonl", BIG, word), PCLUE, name="before")
    small, v, vid = pg_load(
        engine, settings, owner, write(tmp_path / "s.jsonl", SMALL, word), PCLUE, name="small"
    )
    pg_load(engine, settings, owner, write(tmp_path / "b.jsonl", BIG, word), PCLUE, name="after")
    with engine.connect() as c:
        c.execute(text("ANALYZE"))
        c.commit()
    filters = filters_from({"q": word})
    statements: list[tuple] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2:4]))
    with Session(engine) as s:
        seen, after, read = [], None, 0
        while True:
            page = browse_page(s, dataset_id=small, version=v, version_id=vid, filters=filters, after=after)
            statement, params = statements[-1]
            plan = (
                s.connection().exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params).scalar()
            )
            read += heap_rows(plan[0]["Plan"])
            seen += [r["id"] for r in page.rows]
            if not page.has_next:
                break
            after = page.last_id
    with engine.connect() as c:
        assert seen == brute_force_ids(c, dataset_id=small, version=v, q=word)
    assert len(seen) == SMALL // EVERY
    # Unbounded, the pages read all 8,700 rows holding the word (the other datasets' too); bounded, at
    # most the small dataset's own rows.
    assert read <= SMALL + 2 * 51, read
