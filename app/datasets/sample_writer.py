"""The bulk insert of an import: sample and sampletag rows by `executemany` on the raw driver.

Rows go in batches of ~10k tuples on the import's own open transaction (about 10x
the ORM's rate), with the sample ids assigned here so the SampleTag rows need no
round trip. `finish_sqlite` restores the connection's settings afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sqlalchemy.engine import Connection

from app.datasets.validate import Built

SAMPLE_COLUMNS = (
    "id",
    "dataset_id",
    "added_in",
    "removed_in",
    "origin_id",
    "line_no",
    "messages",
    "prompt",
    "answer",
    "reference",
    "task_l1",
    "task_l2",
    "tags",
    "has_system",
    "n_turns",
    "prompt_chars",
    "answer_chars",
    "content_hash",
)
# the per-row parameters, in order: SAMPLE_COLUMNS without the four that every row of an import shares
ROW_COLUMNS = ("id",) + SAMPLE_COLUMNS[5:]


def insert_sql(conn: Connection, table: str, columns: tuple[str, ...]) -> str:
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


class SampleRows(NamedTuple):
    """A batch as SampleWriter's parameter rows: (id, line_no, ...rest of ROW_COLUMNS) and (sample_id, tag)."""

    rows: list[tuple]
    tags: list[tuple[int, str]]

    @classmethod
    def of(cls, batch: Sequence[Built], ids: Iterable[int]) -> SampleRows:
        rows, tags = [], []
        for sid, (line_no, messages, prompt, answer, reference, l1, l2, tag_t, *rest) in zip(
            ids, batch, strict=True
        ):
            rows.append((sid, line_no, messages, prompt, answer, reference, l1, l2, ",".join(tag_t), *rest))
            for t in tag_t:
                tags.append((sid, t))
        return cls(rows, tags)


class SampleWriter:
    """Batched executemany of Built records into sample + sampletag on an open transaction."""

    def __init__(self, conn: Connection, *, dataset_id: int, version: int) -> None:
        self.conn = conn
        self.dataset_id, self.version = dataset_id, version
        mark = "?" if conn.dialect.name == "sqlite" else "%s"
        # the columns every row shares are literals (ints), not parameters: less binding per row
        values = [mark, str(int(dataset_id)), str(int(version)), "NULL", "NULL"] + [mark] * (
            len(ROW_COLUMNS) - 1
        )
        self.sample_sql = f"INSERT INTO sample ({', '.join(SAMPLE_COLUMNS)}) VALUES ({', '.join(values)})"
        self.tag_sql = f"INSERT INTO sampletag (sample_id, tag) VALUES ({mark}, {mark})"
        self.pg = conn.dialect.name == "postgresql"
        # The raw driver cursor of this same connection (so the same transaction): SQLAlchemy's per-call
        # parameter handling costs ~20% of executemany on small rows.
        self.cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        self.next_id = 0
        if not self.pg:
            # The transaction already holds SQLite's write lock (the dataset/version rows were written), so
            # nobody else can take ids between this read and the commit.
            self.next_id = (
                int(conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM sample").scalar() or 0) + 1
            )
            # A larger page cache keeps the index B-trees of a big import in memory instead of spilling
            # pages to the WAL mid-transaction (bounded: 128 MiB).
            conn.exec_driver_sql("PRAGMA cache_size=-131072")
            # Checkpointing inside the commit would copy the whole import from the WAL into the database
            # file before the commit returns (it doubled the import time); see finish_sqlite.
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        self.n = 0

    def _ids(self, n: int) -> Iterable[int]:
        if self.pg:
            rows = self.conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('sample', 'id')) FROM generate_series(1, %s)", (n,)
            )
            return [r[0] for r in rows]
        return range(self.next_id, self.next_id + n)

    def write(self, batch: Sequence[Built] | SampleRows) -> None:
        """Inserts Built records, or rows a ParseProcess built with ids from `next_id` on (SQLite)."""
        if not isinstance(batch, SampleRows):
            batch = SampleRows.of(batch, self._ids(len(batch)))
        if not batch.rows:
            return
        if not self.pg:
            if batch.rows[0][0] != self.next_id:
                raise RuntimeError(f"sample ids out of step: {batch.rows[0][0]} != {self.next_id}")
            self.next_id += len(batch.rows)
        self.cursor.executemany(self.sample_sql, batch.rows)
        if batch.tags:
            self.cursor.executemany(self.tag_sql, batch.tags)
        self.n += len(batch.rows)


def finish_sqlite(conn: Connection) -> None:
    """Restores the pooled connection's defaults once the import has ended.

    The import's pages are committed in the WAL, visible to every reader. Copying them into the database
    file (about 4 s per million samples, mostly I/O) is left to SQLite's automatic checkpoint at the next
    write, which is the indexer's first commit moments later: the import returns that much sooner, and
    the time still counts in "upload finished -> fully searchable"."""
    if conn.dialect.name != "sqlite":
        return
    conn.exec_driver_sql("PRAGMA wal_autocheckpoint=1000")
    conn.exec_driver_sql("PRAGMA cache_size=-2000")
    conn.commit()
