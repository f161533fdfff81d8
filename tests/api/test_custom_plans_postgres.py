"""On PostgreSQL the app's connections plan every run of a statement for its parameters (a prepared
statement's generic plan made a small dataset's search scan every dataset) and never compile one with
JIT (half a second of the server's CPU for each jobs list once its tables' estimates grew; bench/load.py)."""

import pytest
from sqlalchemy import event, make_url, text
from sqlmodel import Session

from app.core.db import get_engine, make_engine
from app.datasets import browse
from app.jobs import listing
from app.models import Job, JobKind

pytestmark = pytest.mark.postgres

SEARCH = "WITH page_ids AS MATERIALIZED"


def plans(conn, like: str) -> list[tuple[int, int]]:  # noqa: ANN001
    """(generic plans, custom plans) of the statements prepared on this connection that contain `like`."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE strpos(statement, :s) > 0"
            ),
            {"s": like},
        )
    ]


def test_a_repeated_statement_keeps_custom_plans(pg):
    engine, _ = pg
    with engine.connect() as c:
        for dataset_id in range(12):
            c.execute(
                text("SELECT count(*) FROM sample WHERE dataset_id = :d"), {"d": dataset_id}
            ).scalar_one()
        found = plans(c, "FROM sample WHERE dataset_id")
    assert found, "psycopg prepared nothing: this test no longer sees what it checks"
    ((generic, custom),) = found
    assert (generic, custom) == (
        0,
        7,
    )  # prepared at the 5th run: 7 runs planned since, every one for its values


def test_the_apps_search_queries_keep_custom_plans(pg):
    _, settings = pg
    engine = get_engine(settings)
    filters = browse.filters_from({"q": "北京"})
    with engine.connect() as c:
        for dataset_id in (1, 2) * 6:
            assert browse.browse_page(c, dataset_id=dataset_id, version=1, filters=filters).rows == []
        found = plans(c, SEARCH)
    assert found and all(generic == 0 and custom > 0 for generic, custom in found), found


def test_options_in_the_url_are_kept(pg):
    engine, _ = pg
    url = make_url(engine.url.render_as_string(hide_password=False)).update_query_dict(
        {"options": "-c statement_timeout=4321"}
    )
    other = make_engine(url.render_as_string(hide_password=False))
    try:
        with other.connect() as c:
            assert c.execute(text("SHOW statement_timeout")).scalar_one() == "4321ms"
            assert c.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"
    finally:
        other.dispose()


def test_the_jobs_list_is_not_compiled(pg):
    """Its six-table join over tables never analyzed is estimated at millions of rows, past PostgreSQL's
    JIT thresholds, while it reads a few: LLVM took 0.4-0.6 s of CPU on every call."""
    engine, settings = pg
    with Session(engine) as session:
        session.add_all(Job(kind=JobKind.import_, title=f"import {i}") for i in range(10))
        session.commit()
        session.connection().exec_driver_sql("ANALYZE job")  # as autovacuum does, and not the others yet
        session.commit()
    app_engine = get_engine(settings)
    seen: list[tuple] = []
    event.listen(app_engine, "before_cursor_execute", lambda *a: seen.append(a[2:4]))
    with Session(app_engine) as session:
        assert len(listing.list_jobs(session)) == 10
        statement, params = seen[-1]
        plan = "\n".join(
            r[0] for r in session.connection().exec_driver_sql("EXPLAIN (ANALYZE) " + statement, params)
        )
    assert "cost=" in plan and "JIT" not in plan, plan
