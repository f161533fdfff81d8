"""One writer at a time on SQLite, handed over at once within the process.

SQLite lets one connection write at a time; the others wait in its busy handler, which sleeps between
tries (up to 100 ms per sleep), so with twenty raters claiming and submitting at once most of a request's
time went to those sleeps (bench/rating.py). Taking a process-wide lock around each short write
transaction makes the waiting thread run the moment the previous writer commits. Other processes (a
worker) still meet the busy timeout; PostgreSQL needs no lock and gets none.
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
