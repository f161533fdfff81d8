"""Importing an uploaded file into a new dataset (version 1) or a new version of an existing one.

Everything an import writes (dataset, version, samples, tags, the job's final
state) goes into ONE transaction: a failed, rejected or interrupted import leaves
nothing visible, and a worker that dies mid-way leaves SQLite/PostgreSQL to roll
back. Samples are parsed as a stream and inserted in batches of ~10k tuples with
`executemany` on the raw driver (about 10x the ORM's rate), with ids assigned here
so SampleTag rows need no round trip. A large file is parsed and validated in a
second process (`_ParseProcess`) while this one inserts, so the two halves of the
per-sample cost run on two cores. Progress cannot be committed to the database
while the import transaction holds SQLite's write lock, so it goes to a small
side file that the job page reads.

`import_file` is the path-level entry point (the bench calls it); `run_import` is
what the Celery task calls for an ImportJob.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import pickle
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from app.core.config import Settings, get_settings
from app.core.db import get_engine
from app.datasets.formats import Issue, open_reader, sniff_container, unit_of
from app.datasets.mapping import Mapping
from app.datasets.tasks import task_key, version_task_counts
from app.datasets.validate import Built, TaskNormaliser, make_builder
from app.models import Dataset, DatasetKind, DatasetVersion, ImportJob, Upload, UploadStatus, utcnow

log = logging.getLogger("sftlab.import")

BATCH = 10_000
# From this file size on (about 45k samples) parsing runs in a second process (see _ParseProcess); below it
# the process start (a fraction of a second) costs more than it saves.
PARSE_PROCESS_MIN_BYTES = 32 * 2**20
MAX_REPORTED_ISSUES = 50_000
POLICIES = (
    "valid",
    "all",
    "dry_run",
)  # import the valid lines | import nothing if any is bad | validate only

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


@dataclass
class IssueLog:
    """Bad lines of one import: every one counted by reason, the first MAX_REPORTED_ISSUES kept in full."""

    issues: list[list[Any]] = field(default_factory=list)
    by_reason: dict[str, int] = field(default_factory=dict)

    def add(self, issue: Issue) -> None:
        self.count(issue.reason)
        if len(self.issues) < MAX_REPORTED_ISSUES:
            self.issues.append([issue.line, issue.reason, issue.detail])

    def count(self, reason: str, n: int = 1) -> None:
        self.by_reason[reason] = self.by_reason.get(reason, 0) + n

    @property
    def n_bad(self) -> int:
        return sum(self.by_reason.values())


class ImportRejected(Exception):
    """Raised inside the transaction to roll it back when the policy or the file says nothing is imported."""


@dataclass
class ImportOptions:
    mapping: Mapping
    name: str = ""
    kind: str = "train"
    policy: str = "valid"
    container: str = ""  # empty: sniffed from the file
    target_dataset_id: int | None = None  # merge: a new version of this dataset
    description: str = ""
    message: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportOptions:
        mapping = Mapping.from_dict(data.get("mapping") or {})
        opts = cls(
            mapping=mapping,
            **{k: v for k, v in data.items() if k != "mapping" and k in cls.__dataclass_fields__},
        )
        opts.check()
        return opts

    def check(self) -> None:
        if isinstance(self.target_dataset_id, str) and self.target_dataset_id.strip().isdigit():
            self.target_dataset_id = int(self.target_dataset_id)
        if self.target_dataset_id is not None and (
            not isinstance(self.target_dataset_id, int) or isinstance(self.target_dataset_id, bool)
        ):
            raise ValueError("target_dataset_id must be a dataset id")
        for key in ("name", "kind", "policy", "container", "description", "message"):
            if not isinstance(getattr(self, key), str):
                raise ValueError(f"{key} must be a string")
        if self.kind not in ("train", "eval"):
            raise ValueError(f"kind must be train or eval, not {self.kind!r}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {self.policy!r}")
        if self.target_dataset_id is None and not self.name.strip():
            raise ValueError("a dataset name is required")
        if len(self.name) > 200:
            raise ValueError("the dataset name is longer than 200 characters")
        if self.mapping.shape == "fields" and not self.mapping.prompt:
            raise ValueError("map at least one field to the prompt")
        if self.mapping.shape == "fields" and self.kind == "train" and not self.mapping.answer:
            raise ValueError("map a field to the answer (or import as an eval set)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mapping": self.mapping.to_dict(),
            "name": self.name,
            "kind": self.kind,
            "policy": self.policy,
            "container": self.container,
            "target_dataset_id": self.target_dataset_id,
            "description": self.description,
            "message": self.message,
        }


@dataclass
class ImportResult:
    status: str  # succeeded | rejected | validated
    dataset_id: int | None = None
    version_id: int | None = None
    version: int | None = None
    n_ok: int = 0
    n_bad: int = 0
    report: dict[str, Any] = field(default_factory=dict)


def _insert_sql(conn: Connection, table: str, columns: tuple[str, ...]) -> str:
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
        """Inserts Built records, or rows a _ParseProcess built with ids from `next_id` on (SQLite)."""
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
                bad(Issue(0, "unsupported_format", "not JSONL, a JSON array, CSV or Parquet"))
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
                "stop_at_first_bad": options.policy == "all",
            }
            parser: _Parser | _ParseProcess
            if writer is not None and not writer.pg and path.stat().st_size >= PARSE_PROCESS_MIN_BYTES:
                parser = _ParseProcess(parse_args | {"first_id": writer.next_id}, log)
            else:
                parser = _Parser.open(parse_args, bad)
            with contextlib.closing(parser):
                for batch in parser.batches():
                    if writer is not None and parser.clean:
                        writer.write(batch)
                        if on_progress:
                            on_progress(parser.progress())
            n_records, n_ok, task_counts = parser.n_records, parser.n_ok, parser.task_counts
            task_normalised = parser.task_normalised
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
        enqueue_index_safely(result.version_id)  # type: ignore[arg-type]
    if result.status != "succeeded":
        result.n_ok, result.n_bad = n_ok, log.n_bad
        _fill_report(report, n_records, n_ok, log, task_normalised, task_counts, started)
        result.report = report
    return result


class _Parser:
    """The parse/validate loop: batches of Built records, issues to `bad`, counts as it goes."""

    def __init__(
        self,
        reader: Any,
        build: Callable,
        bad: Callable[[Issue], None],
        *,
        stop_at_first_bad: bool,
        normaliser: TaskNormaliser,
    ) -> None:
        self.reader, self.build, self.bad = reader, build, bad
        self.stop_at_first_bad = stop_at_first_bad
        self.normaliser = normaliser
        self.clean = True  # False once a bad record was met under the import-nothing policy
        self.n_records = self.n_ok = 0
        self.task_counts: dict[str, int] = {}

    @classmethod
    def open(cls, args: dict[str, Any], bad: Callable[[Issue], None]) -> _Parser:
        """A parser over the file that `args` describes (built in import_file)."""
        normaliser = TaskNormaliser()
        build = make_builder(Mapping.from_dict(args["mapping"]), kind=args["kind"], normaliser=normaliser)
        reader = open_reader(Path(args["path"]), args["container"], max_line_bytes=args["max_line_bytes"])
        return cls(reader, build, bad, stop_at_first_bad=args["stop_at_first_bad"], normaliser=normaliser)

    @property
    def task_normalised(self) -> dict[str, Any]:
        return self.normaliser.report()

    def progress(self) -> float:
        return self.reader.position / self.reader.total

    def close(self) -> None:
        """Nothing to release (the reader closes its file when exhausted); the same interface as _ParseProcess."""

    def batches(self) -> Iterator[list[Built]]:
        build, counts = self.build, self.task_counts
        batch: list[Built] = []
        for line_no, obj, issue in self.reader:
            self.n_records += 1
            if issue is None:
                built = build(obj, line_no)
                if type(built) is Built:
                    self.n_ok += 1
                    key = task_key(built.task_l1, built.task_l2)
                    counts[key] = counts.get(key, 0) + 1
                    if self.clean:
                        batch.append(built)
                        if len(batch) >= BATCH:
                            yield batch
                            batch = []
                    continue
                issue = built
            self.bad(issue)
            if self.stop_at_first_bad:
                self.clean, batch = False, []  # keep validating for the report; nothing will be kept
        if batch and self.clean:
            yield batch


class _ParseProcess:
    """A `_Parser` run in a second process, for large files: parsing and validating (about 10 us per
    sample, pure Python) then runs on one core while this process inserts on the other.

    A parsing thread cannot do this: executemany takes the GIL back after every row it steps, and waits
    up to the interpreter's 5 ms switch interval for it while the parsing thread runs, so the two threads
    ended up taking turns. Batches come back as SampleWriter's parameter rows, ids included (SQLite only:
    the ids follow MAX(id), read under the write lock), so this process only unpickles and inserts them.
    A plain subprocess rather than multiprocessing for the reasons given on
    app.datasets.indexing.StatsProcess. Issues and counts arrive at the end."""

    def __init__(self, args: dict[str, Any], log: IssueLog) -> None:
        self.log = log
        self.clean = True
        self.n_records = self.n_ok = 0
        self.task_counts: dict[str, int] = {}
        self.task_normalised: dict[str, Any] = {}
        self.fraction = 0.0
        code = "from app.datasets.importer import _ParseProcess; _ParseProcess.main()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=1 << 20
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.out = self.proc.stdout
        with contextlib.suppress(AttributeError, OSError):  # Linux: 1 MiB pipe, 16x fewer hand-offs
            fcntl.fcntl(self.out.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)  # type: ignore[attr-defined]
        pickle.dump(args, self.proc.stdin)
        self.proc.stdin.close()

    @staticmethod
    def main() -> None:
        """The child: parse the file, stream ("rows", tuples, progress) messages, then ("done", summary)."""
        out = sys.stdout.buffer
        sys.stdout = sys.stderr  # nothing else may write into the message stream
        log = IssueLog()
        args = pickle.load(sys.stdin.buffer)
        parser, next_id = _Parser.open(args, log.add), args["first_id"]
        for batch in parser.batches():
            rows = SampleRows.of(batch, range(next_id, next_id + len(batch)))
            next_id += len(batch)
            pickle.dump(("rows", tuple(rows), parser.progress()), out, pickle.HIGHEST_PROTOCOL)
        summary = {
            "clean": parser.clean,
            "n_records": parser.n_records,
            "n_ok": parser.n_ok,
            "task_counts": parser.task_counts,
            "task_normalised": parser.task_normalised,
            "issues": log.issues,
            "by_reason": log.by_reason,
        }
        pickle.dump(("done", summary), out, pickle.HIGHEST_PROTOCOL)
        out.flush()

    def progress(self) -> float:
        return self.fraction

    def batches(self) -> Iterator[SampleRows]:
        while True:
            try:
                msg = pickle.load(self.out)
            except EOFError:
                raise RuntimeError(f"the parsing process ended early (exit {self.proc.wait()})") from None
            if msg[0] == "rows":
                self.fraction = msg[2]
                yield SampleRows(*msg[1])
                continue
            done = msg[1]
            self.clean, self.n_records, self.n_ok = done["clean"], done["n_records"], done["n_ok"]
            self.task_counts, self.task_normalised = done["task_counts"], done["task_normalised"]
            sent: dict[str, int] = {}
            for line, reason, detail in done["issues"]:
                sent[reason] = sent.get(reason, 0) + 1
                self.log.add(Issue(line, reason, detail))
            for reason, n in done["by_reason"].items():  # beyond the reported issues: counts only
                if n > sent.get(reason, 0):
                    self.log.count(reason, n - sent.get(reason, 0))
            return

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.out.close()


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


# --- the job -----------------------------------------------------------------------------------


def progress_path(settings: Settings, job_id: int) -> Path:
    return settings.uploads_dir / f"job-{job_id}.progress"


def job_progress(settings: Settings, job: ImportJob) -> float:
    """The job's progress: the side file while it runs, the database otherwise."""
    if job.status == "running":
        try:
            return max(job.progress, float(progress_path(settings, job.id).read_text() or 0))  # type: ignore[arg-type]
        except (OSError, ValueError):
            return job.progress
    return job.progress


def run_import(*, job_id: int, settings: Settings | None = None) -> None:
    """Runs an ImportJob to its end state (succeeded, rejected, validated or failed). Safe to re-run."""
    settings = settings or get_settings()
    engine = get_engine(settings)
    with Session(engine) as session:
        job = session.get(ImportJob, job_id)
        if job is None or job.status in ("succeeded", "rejected", "validated"):
            return
        upload = session.get(Upload, job.upload_id)
        if upload is None:
            return
        job.status, job.progress, job.error = "running", 0.0, ""
        upload.status = UploadStatus.importing
        session.add_all([job, upload])
        session.commit()
        options_data = orjson.loads(job.options_json)
        owner_id, path, filename = job.owner_id, settings.uploads_dir / upload.stored_name, upload.filename
        upload_id = upload.id
    side = progress_path(settings, job_id)

    def on_progress(fraction: float) -> None:
        try:
            side.write_text(f"{min(fraction, 0.99):.3f}")
        except OSError:
            pass

    def finish(session: Session, result: ImportResult) -> None:
        job = session.get(ImportJob, job_id)
        assert job is not None
        job.status, job.progress, job.dataset_id = "succeeded", 1.0, result.dataset_id
        job.n_ok, job.n_bad = result.n_ok, result.n_bad
        job.report_json = orjson.dumps(result.report).decode()
        up = session.get(Upload, upload_id)
        if up is not None:
            up.status = UploadStatus.imported
            session.add(up)
        session.add(job)

    try:
        options = ImportOptions.from_dict(options_data)
        result = import_file(
            path=path,
            options=options,
            owner_id=owner_id,
            engine=engine,
            settings=settings,
            filename=filename,
            on_progress=on_progress,
            finish=finish,
        )
    except Exception as exc:  # noqa: BLE001 - the job page must say what happened, whatever it was
        log.exception("import job %s failed", job_id)
        _end_job(engine, job_id, upload_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        side.unlink(missing_ok=True)
        return
    side.unlink(missing_ok=True)
    if result.status != "succeeded":
        _end_job(
            engine,
            job_id,
            upload_id,
            status=result.status,
            error=result.report.get("rejected", ""),
            result=result,
        )


def enqueue_index_safely(version_id: int) -> None:
    """Hands a committed version to the indexer; a broker failure must not undo (or fail) the import."""
    from app.datasets import jobs

    try:
        jobs.enqueue_index(version_id)
    except Exception:  # noqa: BLE001 - the data is committed; the version page shows it still indexing
        log.exception("could not enqueue indexing of version %s", version_id)


def _end_job(
    engine: Engine,
    job_id: int,
    upload_id: int | None,
    *,
    status: str,
    error: str,
    result: ImportResult | None = None,
) -> None:
    with Session(engine) as session:
        job = session.get(ImportJob, job_id)
        if job is None:
            return
        job.status, job.error, job.progress = status, error, 1.0
        if result is not None:
            job.n_ok, job.n_bad = result.n_ok, result.n_bad
            job.report_json = orjson.dumps(result.report).decode()
        up = session.get(Upload, upload_id) if upload_id else None
        if up is not None:
            up.status = UploadStatus.failed if status == "failed" else UploadStatus.uploaded
            session.add(up)
        session.add(job)
        session.commit()


def create_job(session: Session, *, upload: Upload, options: ImportOptions, owner_id: int) -> ImportJob:
    """Stores a queued job (committed) for the worker; the caller enqueues it."""
    options.check()
    if not options.container:
        options.container = ""
    job = ImportJob(
        upload_id=upload.id,  # type: ignore[arg-type,union-attr,attr-defined]
        owner_id=owner_id,
        target_dataset_id=options.target_dataset_id,  # type: ignore[arg-type]
        options_json=orjson.dumps(options.to_dict()).decode(),
        created_at=utcnow(),
    )
    session.add(job)
    session.commit()
    session.refresh(job)
    return job
