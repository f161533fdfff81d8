"""The parse/validate loop of an import, in this process (`Parser`) or in a second one (`ParseProcess`).

Both turn the file into batches for SampleWriter and keep the same counts: records
seen, valid ones, samples per task_type, task_type values that normalisation
changed, and the bad lines (`IssueLog`). The second process is the import's way to
use two cores on a large file; its messages are pickled tuples on its stdout (see
ParseProcess).
"""

from __future__ import annotations

import contextlib
import fcntl
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.datasets.formats import Issue, open_reader
from app.datasets.mapping import Mapping
from app.datasets.sample_writer import SampleRows
from app.datasets.tasks import task_key
from app.datasets.validate import Built, TaskNormaliser, make_builder

BATCH = 10_000
MAX_REPORTED_ISSUES = 50_000


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


class Parser:
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
        self.n_no_reference = 0  # valid samples without a reference (what an eval set's report shows)
        self.task_counts: dict[str, int] = {}

    @classmethod
    def open(cls, args: dict[str, Any], bad: Callable[[Issue], None]) -> Parser:
        """A parser over the file that `args` describes (built in import_file)."""
        normaliser = TaskNormaliser()
        build = make_builder(Mapping.from_dict(args["mapping"]), kind=args["kind"], normaliser=normaliser)
        reader = open_reader(
            Path(args["path"]),
            args["container"],
            max_line_bytes=args["max_line_bytes"],
            max_expanded_bytes=args["max_expanded_bytes"],
        )
        return cls(reader, build, bad, stop_at_first_bad=args["stop_at_first_bad"], normaliser=normaliser)

    @property
    def task_normalised(self) -> dict[str, Any]:
        return self.normaliser.report()

    def progress(self) -> float:
        return self.reader.position / self.reader.total

    def close(self) -> None:
        """Nothing to release (the reader closes its file when exhausted); the same interface as ParseProcess."""

    def batches(self) -> Iterator[list[Built]]:
        build, counts = self.build, self.task_counts
        batch: list[Built] = []
        for line_no, obj, issue in self.reader:
            self.n_records += 1
            if issue is None:
                built = build(obj, line_no)
                if type(built) is Built:
                    self.n_ok += 1
                    if not built.reference:
                        self.n_no_reference += 1
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


class ParseProcess:
    """A `Parser` run in a second process, for large files: parsing and validating (about 10 us per
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
        self.n_records = self.n_ok = self.n_no_reference = 0
        self.task_counts: dict[str, int] = {}
        self.task_normalised: dict[str, Any] = {}
        self.fraction = 0.0
        code = "from app.datasets.parsing import ParseProcess; ParseProcess.main()"
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
        parser, next_id = Parser.open(args, log.add), args["first_id"]
        for batch in parser.batches():
            rows = SampleRows.of(batch, range(next_id, next_id + len(batch)))
            next_id += len(batch)
            pickle.dump(("rows", tuple(rows), parser.progress()), out, pickle.HIGHEST_PROTOCOL)
        summary = {
            "clean": parser.clean,
            "n_records": parser.n_records,
            "n_ok": parser.n_ok,
            "n_no_reference": parser.n_no_reference,
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
            self.n_no_reference = done["n_no_reference"]
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
