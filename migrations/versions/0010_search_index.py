"""search index: full-text tables for the sample browser

Revision ID: 0010
Revises: 0001
Create Date: 2026-11-23 15:00:00

Raw SQL on purpose: these objects are not SQLModel tables, and their names start
with `sample_fts` / `sample_grams` so the schema-agreement check skips them
(app/datasets/schema_extras.py). The text they index is case-folded by
app.datasets.search.fold before it is written, so both databases match exactly
what a Python brute-force substring search over folded text finds.

SQLite: a contentless FTS5 trigram table (3+ character queries) and a
contentless detail=none FTS5 table over encoded unigrams and bigrams (1-2
character queries; SQLite 3.40's trigram LIKE silently misses those).
PostgreSQL: one table of folded text with pg_trgm GIN indexes (3+ characters)
and a GIN-indexed text[] of the same gram tokens (1-2 characters).
Both: a per-version indexing high-water mark and page anchors for the browser's
"jump to page N".
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMMON = [
    # last sample id indexed for a version (idempotent, resumable indexing) and its visible id ranges
    "CREATE TABLE sample_fts_state (version_id INTEGER PRIMARY KEY, last_id INTEGER NOT NULL DEFAULT 0,"
    " ranges TEXT)",
    # the id after which page `page` of a browse key ('' all, 't:l1', 't:l1/l2', 'g:tag') starts
    "CREATE TABLE sample_fts_anchor (version_id INTEGER NOT NULL, key VARCHAR(420) NOT NULL,"
    " page INTEGER NOT NULL, after_id INTEGER NOT NULL, PRIMARY KEY (version_id, key, page))",
    # lets a tag filter drive the browser in id order
    "CREATE INDEX sample_fts_tag_ix ON sampletag (tag, sample_id)",
]


def upgrade() -> None:
    bind = op.get_bind()
    for sql in COMMON:
        op.execute(sql)
    if bind.dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE sample_fts USING fts5(prompt, answer, content='',"
            " tokenize='trigram case_sensitive 1')"
        )
        op.execute(
            "CREATE VIRTUAL TABLE sample_grams USING fts5(g, content='', detail='none', tokenize='ascii')"
        )
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE TABLE sample_fts (id INTEGER PRIMARY KEY, prompt_f TEXT NOT NULL, answer_f TEXT NOT NULL,"
            " grams TEXT[] NOT NULL)"
        )
        op.execute("CREATE INDEX sample_fts_prompt_trgm ON sample_fts USING gin (prompt_f gin_trgm_ops)")
        op.execute("CREATE INDEX sample_fts_answer_trgm ON sample_fts USING gin (answer_f gin_trgm_ops)")
        op.execute("CREATE INDEX sample_fts_grams_gin ON sample_fts USING gin (grams)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS sample_grams")
    op.execute("DROP TABLE IF EXISTS sample_fts")
    op.execute("DROP INDEX IF EXISTS sample_fts_tag_ix")
    op.execute("DROP TABLE IF EXISTS sample_fts_anchor")
    op.execute("DROP TABLE IF EXISTS sample_fts_state")
