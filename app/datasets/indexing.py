"""Background indexing of a new dataset version: search indexes, statistics, near duplicates.

`build_index` is what a version's index job runs (worker.kinds.index) after an import
or an edit commits the version. Only the rows added in that version enter the search indexes (earlier
versions' rows are indexed already and rows never change); the statistics cover
the whole version. It is idempotent and resumable: `sample_fts_state.last_id`
is committed in the same transaction as each batch of index rows, so a re-run (or
a retry after a crash) continues after the last committed batch instead of
indexing a row twice. Progress and stage go to the version's job for the pages to poll.

Time at 1M samples goes mostly to SQLite building the FTS5 indexes, which is one
core's work that nothing can split. Everything else runs beside it on the second
core: a thread reads and prepares the next batch (folding, gram documents) while
the FTS insert of the last one runs without the GIL (app.datasets.search), and for
a large version the statistics and near duplicates (which only read the samples)
are computed in a separate process, whose results this one writes at the end.
"""

import json
import logging
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.core.config import Settings, get_settings
from app.core.db import get_engine, make_engine
from app.datasets.browse_aids import BrowseAids, write_browse_aids
from app.datasets.search import IndexBatch, configure_index, prepare_rows, write_index
from app.datasets.stats import compute_stats
from app.datasets.stats_cache import forget

log = logging.getLogger("sftlab.indexing")

BATCH = 20_000  # rows per transaction: fewer, larger FTS5 segments to merge
INDEX_SHARE = 0.6  # of the progress bar: search index, then statistics
# From this many visible samples on, statistics run in a second process beside the index build; below it
# the process start (about a second) costs more than it saves.
PARALLEL_STATS_MIN = 50_000

T = TypeVar("T")


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


def in_thread(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Runs the iterator in a second thread, at most `depth` items ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            q.put(exc)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


def index_added_rows(
    engine: Engine,
    *,
    version_id: int,
    dataset_id: int,
    number: int,
    on_progress: Callable[[float], None] | None = None,
) -> int:
    """Adds the rows first visible in this version to the search indexes; returns how many were added now."""
    with engine.begin() as conn:
        configure_index(conn)
        last = _last_indexed(conn, version_id)
        lo, hi, total = conn.execute(
            text("SELECT min(id), max(id), count(*) FROM sample WHERE dataset_id = :d AND added_in = :n"),
            {"d": dataset_id, "n": number},
        ).one()
    if not total or last >= hi:
        return 0
    plus = "+" if engine.dialect.name == "sqlite" else ""
    sql = text(
        f"SELECT s.id, s.prompt, s.answer, s.reference FROM sample s WHERE s.id > :last AND s.id <= :hi"
        f" AND {plus}s.dataset_id = :d AND {plus}s.added_in = :n ORDER BY s.id LIMIT :lim"
    )

    def prepared(after: int) -> Iterator[IndexBatch]:
        while True:
            # a connection per batch: a read transaction held open would pin the WAL and stop checkpoints
            with engine.connect() as conn:
                params = {"last": after, "hi": hi, "d": dataset_id, "n": number, "lim": BATCH}
                rows = [tuple(r) for r in conn.execute(sql, params)]
            if not rows:
                return
            after = rows[-1][0]
            yield prepare_rows(rows, engine.dialect.name)

    done = 0
    for batch in in_thread(prepared(last)):
        last = batch.ids[-1]
        with engine.begin() as conn:
            write_index(conn, batch)
            conn.execute(
                text("UPDATE sample_fts_state SET last_id = :l WHERE version_id = :v"),
                {"l": last, "v": version_id},
            )
        done += len(batch.ids)
        if on_progress:
            on_progress((last - lo + 1) / (hi - lo + 1))
    return done


class StatsProcess:
    """compute_stats in a fresh interpreter (`python -c`), arguments and result pickled through a file.

    A plain subprocess rather than multiprocessing: spawn and forkserver re-run the parent's main script
    in the child (harmful when it has no `__main__` guard), and fork is unsafe in a process that holds
    threads and open SQLite connections (the Celery worker runs tasks in threads)."""

    def __init__(self, url: str, kwargs: dict[str, Any]) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="sftlab-stats-")
        self.path = Path(self.dir.name) / "io.pickle"
        self.path.write_bytes(pickle.dumps((url, kwargs)))
        self.log = open(Path(self.dir.name) / "stderr.txt", "w+b")  # noqa: SIM115 - closed in result()
        code = f"from app.datasets.indexing import StatsProcess; StatsProcess.main({str(self.path)!r})"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=self.log, stderr=self.log)

    @staticmethod
    def main(path: str) -> None:
        url, kwargs = pickle.loads(Path(path).read_bytes())
        engine = make_engine(url)
        result = compute_stats(engine, **kwargs)
        engine.dispose()
        Path(path).write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))

    def result(self) -> tuple[dict[str, Any], BrowseAids]:
        try:
            if self.proc.wait() != 0:
                self.log.seek(0)
                tail = self.log.read().decode(errors="replace")[-1500:]
                raise RuntimeError(f"the statistics process failed ({self.proc.returncode}): {tail}")
            return pickle.loads(self.path.read_bytes())
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self.dir.cleanup()


def _visible_count(engine: Engine, dataset_id: int, number: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM sample WHERE dataset_id = :d AND added_in <= :n"
                    " AND (removed_in IS NULL OR removed_in > :n)"
                ),
                {"d": dataset_id, "n": number},
            ).scalar_one()
        )


def build_index(
    *, version_id: int, progress: Callable[[float, str], None], settings: Settings | None = None
) -> dict[str, Any]:
    """Build everything a version needs to be searchable and shown; returns the timings. Raises on failure
    (the job records it) and LookupError when the version does not exist."""
    settings = settings or get_settings()
    engine = get_engine(settings)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT dataset_id, number FROM datasetversion WHERE id = :id"), {"id": version_id}
        ).first()
    if row is None:
        raise LookupError(f"version {version_id} does not exist")
    dataset_id, number = row
    started = time.perf_counter()
    stats_args: dict[str, Any] = {
        "dataset_id": dataset_id,
        "version": number,
        "version_id": version_id,
        "tokenizer_path": settings.tokenizer_path,
    }
    stats_proc: StatsProcess | None = None
    try:
        progress(0.0, "search index")
        if _visible_count(engine, dataset_id, number) >= PARALLEL_STATS_MIN:
            stats_proc = StatsProcess(engine.url.render_as_string(hide_password=False), stats_args)
        added = index_added_rows(
            engine,
            version_id=version_id,
            dataset_id=dataset_id,
            number=number,
            on_progress=lambda f: progress(f * INDEX_SHARE, "search index"),
        )
        indexed_s = time.perf_counter() - started
        if stats_proc is not None:
            progress(INDEX_SHARE, "statistics")
            stats, aids = stats_proc.result()
        else:
            stats, aids = compute_stats(
                engine,
                **stats_args,
                on_progress=lambda f, stage: progress(INDEX_SHARE + f * (1 - INDEX_SHARE), stage),
            )
        write_browse_aids(engine, aids)
        stats["timings"] = {
            "index_s": round(indexed_s, 2),
            "total_s": round(time.perf_counter() - started, 2),
            "rows_indexed": added,
            "stats_in_parallel": stats_proc is not None,
        }
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE datasetversion SET stats_json = :s WHERE id = :id"),
                {"s": json.dumps(stats, ensure_ascii=False), "id": version_id},
            )
        forget(version_id)
        log.info(
            "indexed version %s (%s new rows) in %.1f s", version_id, added, time.perf_counter() - started
        )
        return stats["timings"]
    finally:
        if stats_proc is not None:
            stats_proc.close()  # after a failure: stop the statistics process too
