"""Alembic environment: metadata from app.models, URL from Settings.

Search index tables (FTS5 virtual tables on SQLite, trigram/gram tables on
PostgreSQL) are created by raw SQL in migrations and are not SQLModel tables;
`include_object` keeps autogenerate from proposing to drop them.
"""

from logging.config import fileConfig

from alembic import context
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers every table)
from app.core.config import get_settings
from app.core.db import make_engine
from app.datasets.schema_extras import is_index_object

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = SQLModel.metadata


def include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001
    return not (reflected and compare_to is None and is_index_object(name))


def run_migrations_online() -> None:
    url = config.attributes.get("url") or get_settings().sqlalchemy_url
    connectable = config.attributes.get("connection") or make_engine(url)
    if hasattr(connectable, "connect"):
        with connectable.connect() as connection:
            _run(connection)
        # Closing the pool lets SQLite checkpoint its WAL, so the file alone holds the schema.
        connectable.dispose()
    else:
        _run(connectable)


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
