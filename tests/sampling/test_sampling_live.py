"""A running job's results page appends: its poll returns only the answers stored after the page's cursor,
placed on the rows already shown or as new rows, within the page's filters, and stops once the job ended."""

import re

import pytest
from sqlmodel import Session, select

from app.models import Generation, Job, JobStatus
from app.sampling import live, results
from app.sampling.prompts import select_ids
from app.sampling.request import Filter
from app.sampling.results import GenerationFilter
from tests.sampling.conftest import launch_fake


@pytest.fixture
def job(pclue, engine):
    """A queued (so, to the page, running) job on pCLUE's 'generate' prompts with two stored answers:
    'old-a' (stop) for the first prompt and 'old-b' (length) for the second."""
    sampling = launch_fake(engine, pclue, params={"n": 2})
    with Session(engine) as session:
        ids = select_ids(session, dataset_id=pclue.dataset_id, version=1, flt=Filter(task="generate"))[:4]
    add(engine, sampling.id, [(ids[0], 0, "old-a", "stop"), (ids[1], 0, "old-b", "length")])
    return {"id": sampling.id, "job_id": sampling.job_id, "ids": ids}


def add(engine, sampling_id: int, plan: list[tuple[int, int, str, str]]) -> None:  # noqa: ANN001
    with Session(engine) as session:
        for sid, index, text, finish in plan:
            session.add(
                Generation(
                    sampling_job_id=sampling_id,
                    sample_id=sid,
                    prompt_id=str(sid),
                    index=index,
                    task_type="generate",
                    prompt_text=f"prompt {sid}",
                    text=text,
                    tokens=3,
                    finish_reason=finish,
                )  # fmt: skip
            )
        session.commit()


def since_of(html: str) -> int:
    return int(re.search(r'id="sampling-live" data-since="(\d+)"', html).group(1))


def test_the_page_polls_from_its_cursor_instead_of_reloading(job, researcher):
    html = researcher.get(f"/sampling/{job['id']}").text
    assert 'http-equiv="refresh"' not in html
    assert since_of(html) > 0
    assert re.search(rf'hx-get="/sampling/{job["id"]}/live\?[^"]*since={since_of(html)}"', html)
    assert "old-a" in html and "old-b" in html


def test_the_poll_returns_only_newer_answers_on_their_rows(job, researcher, engine):
    first = researcher.get(f"/sampling/{job['id']}").text
    cursor = since_of(first)
    ids = job["ids"]
    # a second answer to a shown prompt, and a new prompt
    add(engine, job["id"], [(ids[0], 1, "new-a1", "stop"), (ids[2], 0, "new-c", "stop")])
    response = researcher.get(f"/sampling/{job['id']}/live?since={cursor}", headers={"HX-Request": "true"})
    assert response.status_code == 200, response.text
    html = response.text
    assert "old-a" not in html and "old-b" not in html
    assert re.search(rf'hx-swap-oob="beforeend:#a{ids[0]}">.*new-a1', html, re.S)
    rows = html.split('hx-swap-oob="beforeend:#prompt-rows"')[1]
    assert f'id="p{ids[2]}"' in rows and "new-c" in rows and "new-a1" not in rows
    assert since_of(html) > cursor
    # the head came along, out of band, with the counters
    assert 'id="sampling-facts" hx-swap-oob="true"' in html
    assert re.search(r'data-finish="stop">stop: 3<', html)
    # the next poll from the new cursor has nothing to add
    again = researcher.get(f"/sampling/{job['id']}/live?since={since_of(html)}").text
    assert "new-a1" not in again and "new-c" not in again and "beforeend" not in again
    assert since_of(again) == since_of(html)


def test_the_poll_keeps_the_pages_filters(job, researcher, engine):
    ids = job["ids"]
    page = researcher.get(f"/sampling/{job['id']}?finish_reason=stop").text
    assert "old-a" in page and "old-b" not in page
    cursor = since_of(page)
    assert "finish_reason=stop" in re.search(r'hx-get="([^"]*)"', page.split('id="sampling-live"')[1]).group(
        1
    )
    add(engine, job["id"], [
        (ids[0], 1, "cut-but-shown", "length"),  # the row is on the page: every answer of it belongs there
        (ids[2], 0, "cut-new", "length"),  # matches nothing: not appended
        (ids[3], 0, "stop-new", "stop"),
        (ids[1], 1, "stop-b", "stop"),  # the second prompt now matches: its row comes whole, old-b included
    ])  # fmt: skip
    html = researcher.get(f"/sampling/{job['id']}/live?since={cursor}&finish_reason=stop").text
    assert "cut-new" not in html
    assert re.search(rf'beforeend:#a{ids[0]}">.*cut-but-shown', html, re.S)
    rows = html.split('hx-swap-oob="beforeend:#prompt-rows"')[1]
    assert f'id="p{ids[3]}"' in rows and f'id="p{ids[1]}"' in rows and f'id="p{ids[2]}"' not in rows
    assert "old-b" in rows and "stop-b" in rows
    searched = researcher.get(f"/sampling/{job['id']}/live?since={cursor}&q=stop-n").text
    assert "stop-new" in searched and "stop-b" not in searched


def test_the_poll_stops_once_the_job_has_ended(job, researcher, engine):
    cursor = since_of(researcher.get(f"/sampling/{job['id']}").text)
    add(engine, job["id"], [(job["ids"][2], 0, "last", "stop")])
    with Session(engine) as session:
        row = session.get_one(Job, job["job_id"])
        row.status = JobStatus.succeeded
        session.add(row)
        session.commit()
    html = researcher.get(f"/sampling/{job['id']}/live?since={cursor}").text
    assert "last" in html
    poller = re.search(r'<div id="sampling-live"[^>]*>', html).group(0)
    assert "hx-trigger" not in poller
    # the final analysis loads by itself, and a finished page has no poller at all
    assert f'hx-get="/sampling/{job["id"]}/analysis" hx-trigger="load"' in html
    page = researcher.get(f"/sampling/{job['id']}").text
    assert "hx-trigger" not in re.search(r'<div id="sampling-live"[^>]*>', page).group(0)


def test_a_page_behind_catches_up_over_several_polls(job, engine):
    ids = job["ids"]
    with Session(engine) as session:
        start = live.cursor(session, job["id"])
        add(engine, job["id"], [(ids[2], 0, "x", "stop"), (ids[2], 1, "y", "stop"), (ids[3], 0, "z", "stop")])
        # the page itself leaves out what came after its cursor: the first poll brings it, once
        shown = results.page(session, job["id"], flt=GenerationFilter(), max_id=start)
        assert sorted(r.sample_id for r in shown.rows) == sorted(ids[:2])
        first = live.since(session, job["id"], flt=GenerationFilter(), since_id=start, limit=2)
        assert first.more and [r.sample_id for r in first.rows] == [ids[2]]
        assert [g["text"] for g in first.rows[0].generations] == ["x", "y"]
        second = live.since(session, job["id"], flt=GenerationFilter(), since_id=first.cursor, limit=2)
        assert not second.more and [r.sample_id for r in second.rows] == [ids[3]]
        assert second.cursor == live.cursor(session, job["id"])
        # a window that ends before the new prompts (the page has a next page) leaves them out
        ids_sorted = sorted(ids)
        windowed = live.since(session, job["id"], flt=GenerationFilter(), since_id=start, upto=ids_sorted[1])
        assert {r.sample_id for r in windowed.rows} <= set(ids_sorted[:2])
        ended = session.exec(select(Generation.id).where(Generation.text == "z")).one()
        assert second.cursor == ended


@pytest.mark.parametrize("query", ["since=-1", "since=x", "upto=-5", "since=99999999999"])
def test_bad_cursors_are_422(job, researcher, query):
    response = researcher.get(f"/sampling/{job['id']}/live?{query}")
    assert response.status_code == 422, response.text
