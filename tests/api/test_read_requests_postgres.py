"""On PostgreSQL a request that only reads runs its statements in autocommit (no BEGIN/ROLLBACK round
trips), a request that writes in a transaction, and a read still sees what was just written."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from app.core.config import get_settings
from app.core.db import get_engine
from app.models import Role

pytestmark = pytest.mark.postgres


@pytest.fixture
def settings(pg, monkeypatch, tmp_path):
    """The app itself on a fresh migrated PostgreSQL database (overrides conftest's SQLite settings)."""
    _, pg_settings = pg
    for key, value in {
        "SFTLAB_DATA_DIR": str(tmp_path),
        "SFTLAB_DATABASE_URL": pg_settings.database_url,
        "SFTLAB_SECRET_KEY": "test-secret",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@contextmanager
def autocommit_flags() -> Iterator[list[bool]]:
    """Whether the DBAPI connection was in autocommit, for every statement the app executes."""
    seen: list[bool] = []
    engine = get_engine()

    def hook(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        seen.append(bool(conn.connection.dbapi_connection.autocommit))

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", hook)


def test_reads_autocommit_and_writes_stay_transactions(client_as):
    c = client_as(Role.researcher)
    with autocommit_flags() as seen:
        assert c.get("/api/tokens").status_code == 200
    assert seen and all(seen), seen
    with autocommit_flags() as seen:
        r = c.post("/api/tokens", json={"name": "load"})
    assert r.status_code in (200, 201), r.text
    assert seen and not any(seen), seen
    names = [t["name"] for t in c.get("/api/tokens").json()]
    assert "load" in names
