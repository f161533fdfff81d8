"""In a browser, the run page draws stored events, switches channel level, and follows new events live."""

import pytest
from sqlmodel import Session, select

from app.core.db import make_engine
from app.models import Run, RunStatus, User
from tests.e2e.conftest import PASSWORD, log_in, shot
from tests.runs.fake_runs import add_events, make_run, synthetic_events

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _points(page) -> int:  # noqa: ANN001
    return int(page.get_attribute("#chart-channels", "data-points") or 0)


def test_run_page_draws_switches_level_and_updates_live(page, live_server):
    live_server.create_user("carol", "researcher")
    engine = make_engine(live_server.env["SFTLAB_DATABASE_URL"])
    events = synthetic_events(40, steps_per_epoch=15, done=False)
    with Session(engine) as session:
        owner = session.exec(select(User).where(User.username == "carol")).one()
        run = make_run(session, owner.id, name="live <run>", status=RunStatus.running, events=events[:30])
        run_id, owner_id = run.id, owner.id
    log_in(page, "carol", PASSWORD)
    page.goto(f"/runs/{run_id}")
    page.wait_for_selector("#chart-channels[data-points] canvas")
    first = _points(page)
    assert first > 0
    legend = page.inner_text("#chart-channels .u-legend")
    assert "逻辑推理" in legend and "(eval)" in legend
    shot(page, "run_page")

    page.keyboard.press("2")  # level 2: the l2 channels' names carry the level-2 part
    page.wait_for_function(
        "document.querySelector('#chart-channels .u-legend').innerText.includes('逻辑推理/')"
    )
    page.keyboard.press("1")
    page.wait_for_function(
        "!document.querySelector('#chart-channels .u-legend').innerText.includes('逻辑推理/')"
    )
    page.hover("#chart-channels .u-over")  # the marker tooltip hook runs without errors
    page.keyboard.press("l")  # log scale: the loss charts are drawn again
    page.wait_for_selector("#log-scale.on")
    assert _points(page) == first

    with Session(engine) as session:
        add_events(session, session.get(Run, run_id), events[30:])
    page.wait_for_function(f"Number(document.querySelector('#chart-channels').dataset.points) > {first}")
    assert "40 / 40" in page.inner_text("#run-step")
    assert page.locator("#markers tbody tr").count() >= 3  # epoch ends, checkpoints, the warning
    shot(page, "run_page_live")

    with Session(engine) as session:
        other = make_run(session, owner_id, name="v2", events=synthetic_events(25), train={"lr": 3e-4})
        other_id = other.id
    engine.dispose()
    page.goto("/runs")
    page.check(f'.pick-run[value="{run_id}"]')
    page.check(f'.pick-run[value="{other_id}"]')
    shot(page, "runs_list")
    page.click("#overlay-btn")
    page.wait_for_selector("#chart-overlay[data-points] canvas")
    page.select_option('select[name="channel"]', "l1/逻辑推理")
    page.wait_for_selector("#chart-overlay[data-points] canvas")
    assert "l1/逻辑推理" in page.inner_text("figcaption")
    shot(page, "runs_overlay")
    page.goto(f"/runs/diff?a={run_id}&b={other_id}")
    page.keyboard.press("o")  # only differences
    assert page.locator("#diff tr.same").first.is_hidden()
    assert page.locator("#diff tr.diff-row").first.is_visible()
    shot(page, "runs_diff")
