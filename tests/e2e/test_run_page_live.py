"""In a browser, the run page follows a run through the pushed stream (polling only when the stream is refused) and smooths its loss curves."""

import re

import pytest
from sqlmodel import Session, select

from app.core.db import make_engine
from app.models import Run, RunStatus, User
from tests.e2e.conftest import PASSWORD, log_in, shot
from tests.runs.fake_runs import add_events, make_run, synthetic_events

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PLOT = """(id) => {
  const u = window.sftlabRuns.plots[id];
  return { labels: u.series.map((s) => s.label), data: u.data.map((col) => Array.from(col)) };
}"""


def ema(ys: list[float | None], w: float) -> list[float | None]:
    """TensorBoard's debiased EMA, written from its definition: last = last*w + (1-w)*y, shown / (1 - w^n)."""
    last, n, out = 0.0, 0, []
    for y in ys:
        if y is None:
            out.append(None)
            continue
        last = last * w + (1 - w) * y
        n += 1
        out.append(last / (1 - w**n) if w > 0 else y)
    return out


def _curves(page, name: str) -> tuple[list[float], list[float]]:  # noqa: ANN001
    """(raw, smoothed) values of a train channel as uPlot holds them for the channel-loss chart."""
    plot = page.evaluate(PLOT, "chart-channels")
    raw = plot["data"][plot["labels"].index(f"{name} (raw)")]
    smoothed = plot["data"][plot["labels"].index(name)]
    return [v for v in raw if v is not None], [v for v in smoothed if v is not None]


def _set_smoothing(page, value: str) -> None:  # noqa: ANN001
    page.eval_on_selector(
        "#smoothing", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value
    )


def _points(page) -> int:  # noqa: ANN001
    return int(page.get_attribute("#chart-channels", "data-points") or 0)


def test_run_page_follows_the_stream_and_smooths(page, live_server):
    live_server.create_user("lena", "researcher")
    engine = make_engine(live_server.env["SFTLAB_DATABASE_URL"])
    events = synthetic_events(40, steps_per_epoch=15, done=False)
    with Session(engine) as session:
        owner = session.exec(select(User).where(User.username == "lena")).one()
        run_id = make_run(session, owner.id, status=RunStatus.running, events=events[:30]).id
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    log_in(page, "lena", PASSWORD)
    page.goto(f"/runs/{run_id}")
    page.wait_for_selector('#run[data-live="stream"]')
    page.wait_for_selector("#chart-channels[data-points] canvas")

    # The EMA function of the page against the formula computed here, gaps included.
    numbers = [2.0, None, 1.5, 3.0, None, None, 0.5, 1.25, 4.0]
    for w in (0.0, 0.6, 0.95):
        got = page.evaluate("([ys, w]) => window.sftlabRuns.ema(ys, w)", [numbers, w])
        assert got == pytest.approx(ema(numbers, w)) and got[1] is None

    # Default 0.6: the drawn smooth curve is the EMA of the raw points, which are the stored losses.
    losses = [e["channels"]["overall"]["loss"] for e in events[:30] if e["type"] == "train"]
    raw, smoothed = _curves(page, "overall")
    assert raw == pytest.approx(losses) and smoothed == pytest.approx(ema(losses, 0.6))
    _set_smoothing(page, "0.9")
    assert page.inner_text("#smoothing-value") == "0.90"
    shot(page, "run-live-smoothing")
    raw, smoothed = _curves(page, "overall")
    assert raw == pytest.approx(losses) and smoothed == pytest.approx(ema(losses, 0.9))
    # One legend row per channel: hiding the smooth curve hides its raw points too.
    shown = """(id) => Object.fromEntries(window.sftlabRuns.plots[id].series.map((s) => [s.label, s.show]))"""
    assert not page.is_visible("#chart-channels .u-legend .u-series:has-text('overall (raw)')")
    page.locator(
        "#chart-channels .u-legend .u-series:visible .u-label", has_text=re.compile("^overall$")
    ).click()
    after = page.evaluate(shown, "chart-channels")
    assert after["overall"] is False and after["overall (raw)"] is False
    page.reload()
    page.wait_for_selector('#run[data-live="stream"]')
    assert page.input_value("#smoothing") == "0.9"  # remembered

    # New events arrive through the stream alone: the page never asks /series?after=.
    first = _points(page)
    with Session(engine) as session:
        add_events(session, session.get_one(Run, run_id), events[30:])
    page.wait_for_function(f"Number(document.querySelector('#chart-channels').dataset.points) > {first}")
    assert "40 / 40" in page.inner_text("#run-step")
    assert any(f"/api/runs/{run_id}/stream" in u for u in requests)
    assert not [u for u in requests if "/series?after=" in u]
    _, smoothed = _curves(page, "overall")
    every = [e["channels"]["overall"]["loss"] for e in events if e["type"] == "train"]
    assert smoothed == pytest.approx(ema(every, 0.9))

    # The run ends: the stream says so and the page reloads once to show it.
    with Session(engine) as session:
        job = session.get_one(Run, run_id).job
        job.status = RunStatus.succeeded
        session.add(job)
        session.commit()
    page.wait_for_selector('#run[data-finished="true"]')
    assert page.inner_text("#run-status") == "succeeded"


def test_run_page_polls_when_the_stream_is_refused(page, live_server):
    live_server.create_user("piet", "researcher")
    engine = make_engine(live_server.env["SFTLAB_DATABASE_URL"])
    events = synthetic_events(20, done=False)
    with Session(engine) as session:
        owner = session.exec(select(User).where(User.username == "piet")).one()
        run_id = make_run(session, owner.id, status=RunStatus.running, events=events[:10]).id
    page.route(
        "**/stream*", lambda route: route.fulfill(status=503, headers={"Retry-After": "30"}, body="busy")
    )
    log_in(page, "piet", PASSWORD)
    page.goto(f"/runs/{run_id}")
    page.wait_for_selector('#run[data-live="poll"]')
    first = _points(page)
    with Session(engine) as session:
        add_events(session, session.get_one(Run, run_id), events[10:])
    page.wait_for_function(f"Number(document.querySelector('#chart-channels').dataset.points) > {first}")
    engine.dispose()
