"""Engine and sessions.

SQLite runs in WAL mode with a busy timeout, so the web server can read while a
worker writes an import or an index.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from app.core.config import Settings, get_settings


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


@lru_cache
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings | None = None) -> Engine:
    return _engine_for((settings or get_settings()).sqlalchemy_url)


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A session for code outside requests (the worker, the CLI): commits or rolls back as a unit."""
    with Session(get_engine(settings)) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
