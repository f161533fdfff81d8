"""Names of the search-index objects that live outside SQLModel's metadata.

They are created by raw SQL in the migrations (FTS5 virtual tables and their
shadow tables on SQLite; gram tables on PostgreSQL). Alembic's comparison and
the schema test skip them by these prefixes.
"""

INDEX_PREFIXES = ("sample_fts", "sample_grams", "kombu_", "celery_")


def is_index_object(name: str | None) -> bool:
    return name is not None and name.startswith(INDEX_PREFIXES)
