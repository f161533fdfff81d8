"""One writer at a time on SQLite, handed over at once within the process.

SQLite lets one connection write at a time; the others wait in its busy handler, which sleeps between
tries (up to 100 ms per sleep) and serves no one in order, so some of twenty raters claiming and
submitting at once waited seconds. Taking a process-wide lock around each short write transaction hands
the turn over in order the moment the previous writer commits. Measured with 20 threads over 300 cases
(next + submit, two runs each, a loaded 2-core machine): slowest 2.0 s -> 0.5 s, p95 440 -> 340 ms,
throughput the same, median 60 -> 110 ms (the turns are fair now). Other processes (a worker) still meet
the busy timeout; PostgreSQL needs no lock and gets none.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session

_SQLITE = threading.Lock()


@contextmanager
def write_turn(session: Session) -> Iterator[None]:
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    with _SQLITE:
        yield
