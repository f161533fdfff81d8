"""Importing an uploaded file into a new dataset (version 1) or a new version of an existing one.

Everything an import writes (dataset, version, samples, tags, the job's final
state) goes into ONE transaction: a failed, rejected or interrupted import leaves
nothing visible, and a worker that dies mid-way leaves SQLite/PostgreSQL to roll
back. Samples are parsed as a stream (app.datasets.parsing) and inserted in
batches by app.datasets.sample_writer. A large file is parsed and validated in a
second process (`ParseProcess`) while this one inserts, so the two halves of the
per-sample cost run on two cores.

`import_file` is the path-level entry point (the bench calls it); the ImportJob
around it (what the Celery task runs) is app.datasets.import_job.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.core.config import Settings, get_settings
from app.core.db import get_engine
from app.datasets import jobs
from app.datasets.formats import Issue, diagnose, sniff_container, unit_of
from app.datasets.import_options import ImportOptions, ImportResult
from app.datasets.parsing import IssueLog, ParseProcess, Parser
from app.datasets.sample_writer import SampleWriter, finish_sqlite
from app.datasets.tasks import version_task_counts
from app.datasets.validate import TaskNormaliser
from app.models import Dataset, DatasetKind, DatasetVersion

# From this file size on (about 45k samples) parsing runs in a second process (see ParseProcess); below it
# the process start (a fraction of a second) costs more than it saves.
PARSE_PROCESS_MIN_BYTES = 32 * 2**20


class ImportRejected(Exception):
    """Raised inside the transaction to roll it back when the policy or the file says nothing is imported."""


def _create_version(
    session: Session, opts: ImportOptions, owner_id: int
) -> tuple[Dataset, DatasetVersion, int]:
    """The dataset and version rows (flushed, not committed); returns the previous sample count too."""
    if opts.target_dataset_id is not None:
        ds = session.get(Dataset, opts.target_dataset_id)
        if ds is None:
            raise ImportRejected(f"dataset {opts.target_dataset_id} does not exist")
        prev = (
            session.exec(  # type: ignore[call-overload]
                text("SELECT n_samples FROM datasetversion WHERE dataset_id = :d AND number = :n"),
                params={"d": ds.id, "n": ds.latest_version},
            ).scalar()
            or 0
        )
        ds.latest_version += 1
        number = ds.latest_version
        message = opts.message or "merged an upload"
    else:
        ds = Dataset(
            name=opts.name.strip(),
            kind=DatasetKind(opts.kind),
            description=opts.description,
            owner_id=owner_id,
            latest_version=1,
        )
        number, prev, message = 1, 0, opts.message or "imported"
    session.add(ds)
    session.flush()
    version = DatasetVersion(dataset_id=ds.id, number=number, message=message[:500], created_by=owner_id)  # type: ignore[arg-type,union-attr,attr-defined]
    session.add(version)
    session.flush()
    return ds, version, prev


def import_file(
    *,
    path: Path,
    options: ImportOptions,
    owner_id: int,
    engine: Engine | None = None,
    settings: Settings | None = None,
    filename: str = "",
    on_progress: Callable[[float], None] | None = None,
    finish: Callable[[Session, ImportResult], None] | None = None,
    enqueue_index: bool = True,
) -> ImportResult:
    """Validate and import one file in one transaction; returns what happened with the full report.

    On success the new version is handed to the indexer (`enqueue_index=False` leaves that to the caller).
    `finish(session, result)` runs inside the transaction just before the commit (run_import marks its
    job there, so the job's success and the data appear together)."""
    settings = settings or get_settings()
    engine = engine or get_engine(settings)
    started = time.perf_counter()
    container = options.container or sniff_container(path, filename)
    report: dict[str, Any] = {
        "container": container,
        "unit": unit_of(container),
        "policy": options.policy,
        "mapping": options.mapping.to_dict(),
    }
    log = IssueLog()
    bad = log.add
    task_normalised: dict[str, Any] = TaskNormaliser().report()
    task_counts: dict[str, int] = {}
    n_ok = n_records = 0
    result = ImportResult(status="rejected")
    with engine.connect() as conn, Session(bind=conn) as session:
        try:
            if container == "empty":
                bad(Issue(0, "empty_file", "the file holds no records"))
                raise ImportRejected("the file is empty")
            if container not in ("jsonl", "json", "csv", "parquet"):
                bad(Issue(0, "unsupported_format", diagnose(path, filename)))
                raise ImportRejected("unsupported format")
            kind = options.kind
            writer = None
            ds = version = None
            prev = 0
            if options.policy != "dry_run":
                ds, version, prev = _create_version(session, options, owner_id)
                kind = ds.kind.value if hasattr(ds.kind, "value") else str(ds.kind)
                writer = SampleWriter(session.connection(), dataset_id=ds.id, version=version.number)  # type: ignore[arg-type,union-attr,attr-defined]
            report["kind"] = kind
            parse_args = {
                "path": str(path),
                "container": container,
                "mapping": options.mapping.to_dict(),
                "kind": kind,
                "max_line_bytes": settings.max_line_bytes,
                "max_expanded_bytes": settings.upload_max_expanded_bytes,
                "stop_at_first_bad": options.policy == "all",
            }
            parser: Parser | ParseProcess
            if writer is not None and not writer.pg and path.stat().st_size >= PARSE_PROCESS_MIN_BYTES:
                parser = ParseProcess(parse_args | {"first_id": writer.next_id}, log)
            else:
                parser = Parser.open(parse_args, bad)
            with contextlib.closing(parser):
                for batch in parser.batches():
                    if writer is not None and parser.clean:
                        writer.write(batch)
                        if on_progress:
                            on_progress(parser.progress())
            n_records, n_ok, task_counts = parser.n_records, parser.n_ok, parser.task_counts
            task_normalised = parser.task_normalised
            if kind == "eval":  # fine as prompts to sample and rate, but nothing to validate a run on
                report["no_reference"] = parser.n_no_reference
            if n_records == 0 and not log.by_reason:
                bad(Issue(0, "empty_file", "the file holds no records"))
            n_bad = log.n_bad
            result.n_ok, result.n_bad = n_ok, n_bad
            if options.policy == "dry_run":
                result.status = "validated"
                raise ImportRejected("validation only")
            if n_ok == 0:
                raise ImportRejected("no valid samples")
            if options.policy == "all" and n_bad:
                raise ImportRejected(f"{n_bad} bad records and the policy is to import nothing then")
            assert ds is not None and version is not None
            version.n_samples = prev + n_ok
            result.status = "succeeded"
            result.dataset_id, result.version_id, result.version = ds.id, version.id, version.number
            report["dataset_id"], report["version"] = ds.id, version.number
            _fill_report(report, n_records, n_ok, log, task_normalised, task_counts, started)
            counts = task_counts
            if prev:
                counts = _merged_counts(session, ds.id, version.number - 1, task_counts)  # type: ignore[arg-type,union-attr,attr-defined]
            version.import_report_json = orjson.dumps(
                {k: v for k, v in report.items() if k != "issues"} | {"task_counts": counts}
            ).decode()
            session.add(version)
            result.report = report
            if finish:
                finish(session, result)
            session.commit()
            report["elapsed_s"] = round(time.perf_counter() - started, 3)
            report["rate"] = round(n_ok / max(report["elapsed_s"], 1e-6))
        except ImportRejected as exc:
            session.rollback()
            report["rejected"] = str(exc)
        finally:
            if session.in_transaction():
                session.rollback()
            finish_sqlite(conn)
    if result.status == "succeeded" and enqueue_index:
        jobs.enqueue_index(result.version_id)  # type: ignore[arg-type]
    if result.status != "succeeded":
        result.n_ok, result.n_bad = n_ok, log.n_bad
        _fill_report(report, n_records, n_ok, log, task_normalised, task_counts, started)
        result.report = report
    return result


def _merged_counts(
    session: Session, dataset_id: int, prev_version: int, added: dict[str, int]
) -> dict[str, int]:
    prev = version_task_counts(session, dataset_id=dataset_id, version=prev_version)
    for k, v in added.items():
        prev[k] = prev.get(k, 0) + v
    return prev


def _fill_report(
    report: dict[str, Any],
    n_records: int,
    n_ok: int,
    log: IssueLog,
    task_normalised: dict[str, Any],
    task_counts: dict[str, int],
    started: float,
) -> None:
    elapsed = time.perf_counter() - started
    report.update(
        {
            "n_records": n_records,
            "n_ok": n_ok,
            "n_bad": log.n_bad,
            "by_reason": log.by_reason,
            "issues": log.issues,
            "issues_truncated": log.n_bad > len(log.issues),
            "task_normalised": task_normalised,
            "task_counts": dict(sorted(task_counts.items(), key=lambda kv: -kv[1])),
            "elapsed_s": round(elapsed, 3),
            "rate": round(n_ok / elapsed) if elapsed > 0 else 0,
        }
    )
