"""Background indexing of a new dataset version: search indexes, statistics, near duplicates.

`index_version` is what the Celery task runs after an import or an edit commits a
version. Only the rows added in that version enter the search indexes (earlier
versions' rows are indexed already and rows never change); the statistics cover
the whole version. It is idempotent and resumable: `sample_fts_state.last_id`
is committed in the same transaction as each batch of index rows, so a re-run (or
a retry after a crash) continues after the last committed batch instead of
indexing a row twice. Progress and stage go to DatasetVersion for the pages to poll.
"""

import json
import logging
import time

from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.core.config import Settings, get_settings
from app.core.db import get_engine
from app.datasets.search import index_rows
from app.datasets.stats import compute_stats, forget

log = logging.getLogger("sftlab.indexing")

BATCH = 10_000
INDEX_SHARE = 0.6  # of the progress bar: search index, then statistics


def _set_state(engine: Engine, version_id: int, **values) -> None:  # noqa: ANN003
    sets = ", ".join(f"{k} = :{k}" for k in values)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE datasetversion SET {sets} WHERE id = :id"), {**values, "id": version_id})


def _last_indexed(conn, version_id: int) -> int:  # noqa: ANN001
    row = conn.execute(
        text("SELECT last_id FROM sample_fts_state WHERE version_id = :v"), {"v": version_id}
    ).first()
    if row is None:
        conn.execute(
            text("INSERT INTO sample_fts_state (version_id, last_id) VALUES (:v, 0)"), {"v": version_id}
        )
        return 0
    return int(row[0])


def index_added_rows(
    engine: Engine, *, version_id: int, dataset_id: int, number: int, on_progress=None
) -> int:  # noqa: ANN001
    """Adds the rows first visible in this version to the search indexes; returns how many were added now."""
    with engine.begin() as conn:
        last = _last_indexed(conn, version_id)
        lo, hi, total = conn.execute(
            text("SELECT min(id), max(id), count(*) FROM sample WHERE dataset_id = :d AND added_in = :n"),
            {"d": dataset_id, "n": number},
        ).one()
    if not total or last >= hi:
        return 0
    plus = "+" if engine.dialect.name == "sqlite" else ""
    sql = text(
        f"SELECT s.id, s.prompt, s.answer FROM sample s WHERE s.id > :last AND s.id <= :hi"
        f" AND {plus}s.dataset_id = :d AND {plus}s.added_in = :n ORDER BY s.id LIMIT :lim"
    )
    done = 0
    while True:
        with engine.begin() as conn:
            rows = [
                tuple(r)
                for r in conn.execute(
                    sql, {"last": last, "hi": hi, "d": dataset_id, "n": number, "lim": BATCH}
                )
            ]
            if not rows:
                break
            index_rows(conn, rows)
            last = rows[-1][0]
            conn.execute(
                text("UPDATE sample_fts_state SET last_id = :l WHERE version_id = :v"),
                {"l": last, "v": version_id},
            )
        done += len(rows)
        if on_progress:
            on_progress((last - lo + 1) / (hi - lo + 1))
    return done


def index_version(*, version_id: int, settings: Settings | None = None) -> None:
    """Builds everything a version needs to be searchable and shown; never raises for a bad version."""
    settings = settings or get_settings()
    engine = get_engine(settings)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT dataset_id, number FROM datasetversion WHERE id = :id"), {"id": version_id}
        ).first()
    if row is None:
        log.warning("index_version: version %s does not exist", version_id)
        return
    dataset_id, number = row
    started = time.perf_counter()
    last_write = [0.0]

    def progress(fraction: float, stage: str) -> None:
        now = time.perf_counter()
        if now - last_write[0] < 0.5 and fraction < 1:
            return
        last_write[0] = now
        _set_state(engine, version_id, progress=round(min(fraction, 0.999), 4), stage=stage)

    try:
        _set_state(engine, version_id, status="indexing", stage="search index", progress=0.0, error="")
        added = index_added_rows(
            engine,
            version_id=version_id,
            dataset_id=dataset_id,
            number=number,
            on_progress=lambda f: progress(f * INDEX_SHARE, "search index"),
        )
        indexed_s = time.perf_counter() - started
        stats = compute_stats(
            engine,
            dataset_id=dataset_id,
            version=number,
            version_id=version_id,
            tokenizer_path=settings.tokenizer_path,
            on_progress=lambda f, stage: progress(INDEX_SHARE + f * (1 - INDEX_SHARE), stage),
        )
        stats["timings"] = {
            "index_s": round(indexed_s, 2),
            "total_s": round(time.perf_counter() - started, 2),
            "rows_indexed": added,
        }
        _set_state(
            engine,
            version_id,
            stats_json=json.dumps(stats, ensure_ascii=False),
            status="ready",
            progress=1.0,
            stage="",
        )
        forget(version_id)
        log.info(
            "indexed version %s (%s new rows) in %.1f s", version_id, added, time.perf_counter() - started
        )
    except Exception as exc:  # noqa: BLE001 - the version page must say what happened, whatever it was
        log.exception("indexing version %s failed", version_id)
        _set_state(engine, version_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000], stage="")
