"""The models and the migrations agree: autogenerate against a freshly migrated database proposes nothing."""

import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers every table)
from app.core.db import make_engine
from app.datasets.schema_extras import is_index_object
from app.web import ROOT


def _include(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001
    # Search indexes live outside SQLModel's metadata (raw SQL in the migrations).
    return not is_index_object(name)


def _differences(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={"include_object": _include, "compare_type": True, "target_metadata": SQLModel.metadata},
            )
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


def _config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    return cfg


def test_sqlite_migrations_match_the_models(settings):
    diff = _differences(settings.sqlalchemy_url)
    assert diff == [], "models and migrations disagree; add a migration:\n" + "\n".join(map(str, diff))


def test_the_check_notices_a_missing_migration(settings):
    """Guards the guard: a column only the models have must show up as a difference."""
    from sqlalchemy import Column, Integer, MetaData, Table

    extra = MetaData()
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(extra)
    Table("user", extra, Column("shoe_size", Integer), extend_existing=True)
    engine = make_engine(settings.sqlalchemy_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": _include})
        diff = compare_metadata(context, extra)
    engine.dispose()
    assert any(d[0] == "add_column" and d[3].name == "shoe_size" for d in diff), diff


def test_sqlite_downgrade_to_base_and_upgrade_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'round.db'}"
    command.upgrade(_config(url), "head")
    command.downgrade(_config(url), "base")
    engine = make_engine(url)
    with engine.connect() as conn:
        left = conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'")).scalars().all()
    engine.dispose()
    assert set(left) <= {"alembic_version"}, left
    command.upgrade(_config(url), "head")
    assert _differences(url) == []


@pytest.mark.postgres
def test_postgres_migrations_match_the_models(postgres_url):
    name = f"sftlab_schema_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    try:
        command.upgrade(_config(url), "head")
        diff = _differences(url)
        assert diff == [], "\n".join(map(str, diff))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
