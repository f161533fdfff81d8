"""The live stream sends what /series?after= answers for newly stored events, resumes, ends, and obeys access and its cap."""

import asyncio
import json
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from sqlmodel import Session

from app.core.config import get_settings
from app.models import Role, Run, RunStatus
from app.runs import live, series
from tests.runs.fake_runs import add_events, make_run, synthetic_events

T = TypeVar("T")

SERIES_KEYS = (
    "train",
    "scalars",
    "eval",
    "epochs",
    "checkpoints",
    "warnings",
    "last_seq",
    "from_step",
    "started",
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    series.CACHE.clear()


def _run(engine, owner_id: int, **kw) -> int:
    with Session(engine) as session:
        return make_run(session, owner_id, **kw).id


def _finish(engine, run_id: int) -> None:
    with Session(engine) as session:
        run = session.get_one(Run, run_id)
        run.job.status = RunStatus.succeeded
        session.add(run.job)
        session.commit()


def _own_loop(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run in a thread: a session-wide Playwright fixture may hold this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _never() -> bool:
    return False


def _collect(engine, settings, run_id: int, after: int, disconnected=_never) -> list[str]:
    async def go() -> list[str]:
        body = live.stream(
            engine=engine, run_id=run_id, after=after, settings=settings, disconnected=disconnected
        )
        return [m async for m in body]

    return _own_loop(go())


def _data(messages: list[str]) -> list[dict]:
    return [json.loads(m.split("data: ", 1)[1]) for m in messages if m.startswith("id: ")]


def test_stream_sends_the_points_stored_after_a_seq_then_finished(engine, settings, make_user):
    owner = make_user()
    events = synthetic_events(30, done=False)
    run_id = _run(engine, owner.id, status=RunStatus.running, events=events[:10])
    with Session(engine) as session:
        add_events(session, session.get_one(Run, run_id), events[10:])
    _finish(engine, run_id)

    messages = _collect(engine, settings, run_id, after=9)
    assert messages[0].startswith("retry: ") and messages[-1] == live.FINISHED_MESSAGE
    (sent,) = _data(messages)
    assert messages[1].startswith(f"id: {len(events) - 1}\n")
    # Independent of the stream's code: the train events stored after seq 9, read from the events themselves.
    later = [e for e in events[10:] if e["type"] == "train"]
    assert sent["train"]["x"] == [e["step"] for e in later]
    assert sent["train"]["series"]["overall"] == pytest.approx(
        [e["channels"]["overall"]["loss"] for e in later]
    )
    assert sent["finished"] is True and sent["run_id"] == run_id
    # And exactly the poll's answer for the same seq.
    with Session(engine) as session:
        since = series.series_since(session, session.get_one(Run, run_id), after=9)
    assert {k: sent[k] for k in since} == json.loads(json.dumps(since))


def test_stream_pushes_events_stored_while_it_is_open(engine, settings, make_user):
    owner = make_user()
    events = synthetic_events(20, done=False)
    run_id = _run(engine, owner.id, status=RunStatus.running, events=events[:5])
    fast = settings.model_copy(update={"live_interval": 0.02})

    async def go() -> list[str]:
        got: list[str] = []

        async def read() -> None:
            body = live.stream(engine=engine, run_id=run_id, after=4, settings=fast, disconnected=_never)
            async for m in body:
                got.append(m)

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.2)
        assert len(got) == 1  # only the retry line: nothing new yet
        with Session(engine) as session:
            await asyncio.to_thread(add_events, session, session.get_one(Run, run_id), events[5:12])
        while len(got) < 2:
            await asyncio.sleep(0.02)
        await asyncio.to_thread(_finish, engine, run_id)
        await asyncio.wait_for(reader, 10)
        return got

    got = _own_loop(go())
    (sent,) = _data(got)
    assert sent["last_seq"] == 11 and sent["train"]["x"] == [
        e["step"] for e in events[5:12] if e["type"] == "train"
    ]
    assert got[-1] == live.FINISHED_MESSAGE


def test_keepalive_lifetime_and_disconnect_end_a_quiet_stream(engine, settings, make_user):
    owner = make_user()
    run_id = _run(engine, owner.id, status=RunStatus.running, events=synthetic_events(5, done=False))
    quiet = settings.model_copy(update={"live_interval": 0.01, "live_keepalive": 0.0, "live_lifetime": 0.2})
    messages = _collect(engine, quiet, run_id, after=100)
    assert live.KEEPALIVE in messages and live.FINISHED_MESSAGE not in messages and not _data(messages)

    async def gone() -> bool:
        return True

    assert _collect(engine, settings, run_id, after=100, disconnected=gone) == [f"retry: {live.RETRY_MS}\n\n"]


def test_resume_after_last_event_id_over_http(engine, researcher):
    events = synthetic_events(20)
    run_id = _run(engine, researcher.user.id, events=events)
    poll = researcher.get(f"/api/runs/{run_id}/series?after=14").json()
    r = researcher.get(f"/api/runs/{run_id}/stream?after=2", headers={"Last-Event-ID": "14"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    (sent,) = _data([m + "\n\n" for m in r.text.split("\n\n") if m])
    assert {k: sent[k] for k in SERIES_KEYS} == {k: poll[k] for k in SERIES_KEYS}
    assert r.text.endswith(live.FINISHED_MESSAGE) and live.STREAMS.open == 0
    bad = researcher.get(f"/api/runs/{run_id}/stream", headers={"Last-Event-ID": "x²".encode()})
    assert bad.status_code == 422 and "Last-Event-ID" in bad.json()["detail"]


def test_stream_access_is_the_series_access(engine, client, client_as, researcher):
    run_id = _run(engine, researcher.user.id, events=synthetic_events(5))
    callers = {
        "anonymous": client,
        "rater": client_as(Role.rater, "rita"),
        "other researcher": client_as(Role.researcher, "otto"),
        "admin": client_as(Role.admin, "ada"),
    }
    for name, c in callers.items():
        for rid in (run_id, 999):
            series_code = c.get(f"/api/runs/{rid}/series", follow_redirects=False).status_code
            stream_code = c.get(f"/api/runs/{rid}/stream", follow_redirects=False).status_code
            assert stream_code == series_code, (name, rid)
    assert callers["rater"].get(f"/api/runs/{run_id}/stream").status_code == 403


def test_streams_beyond_the_cap_are_answered_503_with_retry_after(engine, researcher, monkeypatch):
    run_id = _run(engine, researcher.user.id, events=synthetic_events(5))
    monkeypatch.setenv("SFTLAB_LIVE_STREAMS", "2")
    get_settings.cache_clear()
    assert live.STREAMS.acquire(2) and live.STREAMS.acquire(2)
    try:
        r = researcher.get(f"/api/runs/{run_id}/stream")
        assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
    finally:
        live.STREAMS.release()
        live.STREAMS.release()
    assert researcher.get(f"/api/runs/{run_id}/stream").status_code == 200
    assert live.STREAMS.open == 0
