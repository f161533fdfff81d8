"""Engine and sessions.

SQLite runs in WAL mode with a busy timeout, so the web server can read while a
worker writes an import or an index.

The pool holds `db_pool_size` connections plus an overflow of 10. The web server lets at most
`db_pool_size` requests hold a session at once (`app.api.deps.session_dep`), fewer than the 40 threads
of its pool, so a request's checkout never waits; the overflow serves code that opens its own
connection beside the request's session (exports, estimates) and the reaper thread.

PostgreSQL connections are pinged on checkout unless `db_pre_ping` is off: the ping is a round trip on
every request, a tenth of a browser request's statements (bench/load.py), and it is what keeps a
database restart from failing the requests and jobs that would otherwise take a dropped connection.

Requests that only read (GET, HEAD) take their PostgreSQL connection in autocommit (`read_engine`):
without it every read pays two more round trips, BEGIN before its first statement and ROLLBACK when
its session closes: about an eighth of the web process's busy samples at 64 concurrent clients
(py-spy during bench/load.py; the bench's p95 moved less than its run-to-run noise). Reads see the same data either way: PostgreSQL's default READ COMMITTED gives
each statement its own snapshot inside a transaction too. A write a read request makes (an API
token's last-use time) commits as it is made.

PostgreSQL connections plan every statement for its parameters (`plan_cache_mode=force_custom_plan`,
set when the connection opens, so no round trip). psycopg prepares a statement on a connection once it
has run 5 times there, and PostgreSQL then switches that connection to a generic plan, made without
the parameters' values, whenever it estimates it no dearer than the custom ones. For the sample
browser's queries the generic plan cannot tell a 175-sample dataset from a 30,000-sample one: under
bench/load.py, once imports had grown the search index, a search of the small dataset drove from the
word's posting list over every dataset and took 1-2.5 s instead of 3-8 ms (4 ms again with custom
plans), and those queries filled PostgreSQL's two cores: the slow 200-client level after the 64 one.
Planning costs a fraction of a millisecond; the statements stay prepared, so they are not parsed again.

They also never compile a plan with JIT (`jit=off`): the jobs list's join of six tables, some never
analyzed (a few rows each), is estimated at millions of rows, past the JIT thresholds, so once each
level's import had added its jobs every /api/jobs took 0.4-0.6 s of PostgreSQL's CPU compiling a plan
that runs in 0.3 ms. Under bench/load.py's 200 clients those compilations kept six backends busy on
average and held throughput at half what the same state gives without them: the rest of the slow
200-client level after the 64 one. No query here runs long enough for compiled code to pay back.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import event, make_url
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from app.core.config import Settings, get_settings

POOL_OVERFLOW = 10
# Startup parameters of the connection, so they cost no statement (see the module docstring).
PG_OPTIONS = "-c plan_cache_mode=force_custom_plan -c jit=off"


def make_engine(url: str, *, pool_size: int = 20, pre_ping: bool = True) -> Engine:
    pool = {"pool_size": pool_size, "max_overflow": POOL_OVERFLOW}
    if url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") == "sqlite:"):
        pool = {}  # one in-memory database per connection: SQLAlchemy picks a pool without a size
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=pre_ping, connect_args=_pg_connect_args(url), **pool)


def _pg_connect_args(url: str) -> dict[str, str]:
    """PG_OPTIONS after any `options` the URL gives (connect_args would replace them, not add to them)."""
    given = make_url(url).query.get("options", "")
    given = " ".join(given) if isinstance(given, tuple) else given
    return {"options": f"{given} {PG_OPTIONS}".strip()}


@lru_cache
def _engine_for(url: str, pool_size: int, pre_ping: bool) -> Engine:
    return make_engine(url, pool_size=pool_size, pre_ping=pre_ping)


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    return _engine_for(settings.sqlalchemy_url, settings.db_pool_size, settings.db_pre_ping)


def read_engine(settings: Settings | None = None) -> Engine:
    """The engine for requests that only read: the same pool, autocommit on PostgreSQL (see above)."""
    engine = get_engine(settings)
    if engine.dialect.name != "postgresql":
        return engine  # SQLite's transactions are local calls, not round trips
    return _autocommit(engine)


@lru_cache
def _autocommit(engine: Engine) -> Engine:
    return engine.execution_options(isolation_level="AUTOCOMMIT")


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
