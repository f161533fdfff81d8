"""The run page's live stream: server-sent events carrying what /api/runs/{id}/series?after= answers.

Why push: the page polled every second, so a stored point waited ~0.5 s on average (1 s at worst) for
the next poll, and an idle page still cost a full series query each second. A stream checks the run's
job `events_seq` every `live_interval` seconds (one indexed read) and only when it moved builds the
poll's payload (`update`: series.series_since, progress, whether a start event arrived), sent as one
`data:` message whose `id:` is its last_seq. A reconnecting EventSource sends that id back as
Last-Event-ID and the new stream resumes after it, so nothing is lost or sent twice across reconnects.

Nothing here blocks the event loop or starves the pools: `stream` is an async generator whose
database work runs in worker threads (anyio.to_thread), each check on a session of its own that is
closed at once, so an open stream holds neither a connection nor a thread while it waits.
"""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import anyio
import orjson
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.core.config import Settings
from app.models import FINISHED, Job, Run
from app.runs import series, views

RETRY_MS = 1000  # how long a browser waits before reconnecting a closed stream
FINISHED_MESSAGE = "event: finished\ndata: {}\n\n"
KEEPALIVE = ": keep-alive\n\n"


class LiveError(ValueError):
    """A resume point that is not an event seq: answered 422."""


class Slots:
    """How many streams are open in this process, bounded so that streams never take every request slot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # routes acquire from the thread pool
        self.open = 0

    def acquire(self, limit: int) -> bool:
        with self._lock:
            if self.open >= limit:
                return False
            self.open += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.open -= 1


STREAMS = Slots()


def resume_after(last_event_id: str | None, after: int | None) -> int:
    """The seq a stream starts after: the browser's Last-Event-ID on a reconnect, else ?after=, else -1 (all).

    >>> resume_after("41", 7), resume_after(None, 7), resume_after(None, None)
    (41, 7, -1)
    """
    if last_event_id is None or not last_event_id.strip():
        return -1 if after is None else after
    text = last_event_id.strip()
    # ASCII digits only: str.isdigit() also accepts "²", which int() then refuses.
    if not re.fullmatch(r"-1|[0-9]{1,12}", text):
        raise LiveError(f"Last-Event-ID must be an event seq (an integer >= -1), not {last_event_id!r}.")
    return int(text)


def update(session: Session, run: Run, *, after: int) -> dict:
    """What the run page applies for the events stored after seq `after`: the poll's exact answer."""
    assert run.id is not None
    data = series.series_since(session, run, after=after)
    data["started"] = views.stored_after(session, run.id, "start", after=after)
    return {"run_id": run.id, **views.progress(session, run), **data}


def check(engine: Engine, run_id: int, *, after: int) -> tuple[dict | None, bool]:
    """One look at the run: (its update when events were stored after `after`, whether it has finished).

    A run that no longer exists counts as finished: the stream ends instead of checking forever.
    """
    with Session(engine) as session:
        row = session.exec(
            select(Job.events_seq, Job.status).join(Run, Run.job_id == Job.id).where(Run.id == run_id)  # type: ignore[arg-type]
        ).first()
        if row is None:
            return None, True
        events_seq, status = row
        if events_seq - 1 <= after:
            return None, status in FINISHED
        run = session.get_one(Run, run_id)
        return update(session, run, after=after), run.status in FINISHED


def message(data: dict) -> str:
    """One SSE message; its id is the seq a reconnect resumes after (orjson writes no newline)."""
    return f"id: {data['last_seq']}\ndata: {orjson.dumps(data).decode()}\n\n"


async def stream(
    *,
    engine: Engine,
    run_id: int,
    after: int,
    settings: Settings,
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """Messages for the run's events stored after seq `after`, until it finishes, the client leaves, or
    `live_lifetime` passes; a comment after `live_keepalive` seconds of silence keeps proxies from
    closing the connection, and lets a vanished client be noticed by the failed write."""
    yield f"retry: {RETRY_MS}\n\n"
    clock = anyio.current_time
    opened = quiet_since = clock()
    while True:
        data, finished = await anyio.to_thread.run_sync(partial(check, engine, run_id, after=after))
        if data is not None:
            after = data["last_seq"]
            quiet_since = clock()
            yield message(data)
        if finished:
            yield FINISHED_MESSAGE
            return
        if clock() - opened >= settings.live_lifetime:
            return
        if clock() - quiet_since >= settings.live_keepalive:
            quiet_since = clock()
            yield KEEPALIVE
        await anyio.sleep(settings.live_interval)
        if await disconnected():
            return


class EventStream(StreamingResponse):
    """A text/event-stream response that gives its slot back however the stream ends (finished,
    lifetime, a disconnect cancelling it mid-write)."""

    media_type = "text/event-stream"

    def __init__(self, body: AsyncIterator[str], *, slots: Slots) -> None:
        # no-transform / X-Accel-Buffering: a compressing or buffering proxy would hold messages back.
        headers = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
        super().__init__(body, headers=headers)
        self._slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.release()
