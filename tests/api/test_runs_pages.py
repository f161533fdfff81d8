"""HTTP tests of the runs pages and their JSON: rendering, access rules, cancel/resume, events paging, escaping."""

import json
import re
from pathlib import Path

import pytest
from sqlmodel import Session

from app.models import Role, Run, RunEvent, RunStatus
from app.runs import series
from tests.runs.fake_runs import add_events, make_run, synthetic_events

XSS = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _fresh_cache():
    series.CACHE.clear()


def _run(engine, owner_id, **kw) -> Run:
    with Session(engine) as session:
        run = make_run(session, owner_id, **kw)
        session.expunge(run)
        return run


def test_runs_list_and_run_page_render_and_escape_user_content(engine, researcher, tmp_path):
    run_dir = tmp_path / "r1"
    run_dir.mkdir()
    (run_dir / "train.log").write_text("".join(f"line {i} {XSS}\n" for i in range(300)))
    (run_dir / "deepspeed_config.json").write_text('{"zero_optimization": {"stage": 2}}')
    ck = run_dir / "checkpoints" / "step-00000010" / "trainer_state"
    ck.mkdir(parents=True)
    (ck / "state.json").write_text("{}")
    run = _run(engine, researcher.user.id, name=XSS, run_dir=run_dir, events=synthetic_events(20))
    page = researcher.get("/runs")
    assert page.status_code == 200
    assert XSS not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert f'href="/runs/{run.id}"' in page.text
    r = researcher.get(f"/runs/{run.id}")
    assert r.status_code == 200, r.text
    assert XSS not in r.text
    assert 'id="chart-channels"' in r.text
    assert "step-00000010" in r.text  # checkpoints list
    assert "line 299" in r.text and "line 99 " not in r.text  # the last 200 log lines
    assert "&#34;stage&#34;: 2" in r.text or "&quot;stage&quot;: 2" in r.text  # generated DeepSpeed config
    assert "逻辑推理" in r.text  # data counts from the start event
    assert f"/runs/new?clone={run.id}" in r.text
    assert "drop <b>" not in r.text  # warning messages reach the page only through the JSON


def test_run_page_renders_when_the_run_dir_is_gone_and_missing_run_is_404(engine, researcher, tmp_path):
    with Session(engine) as session:
        run = make_run(session, researcher.user.id, status=RunStatus.lost, run_dir=tmp_path / "gone")
        run.job.error = "worker w1 stopped heartbeating"
        run.job.log_tail = "last words"
        session.add(run)
        session.commit()
        rid = run.id
    r = researcher.get(f"/runs/{rid}")
    assert r.status_code == 200
    assert "worker w1 stopped heartbeating" in r.text and "last words" in r.text
    assert researcher.get("/runs/999").status_code == 404
    assert researcher.get("/api/runs/999/events").status_code == 404
    assert researcher.get(f"/runs/{rid}/samples/0").status_code == 404


def test_raters_get_403_and_anonymous_users_go_to_login(engine, client_as, client, researcher):
    run = _run(engine, researcher.user.id, events=synthetic_events(3))
    rater = client_as(Role.rater)
    for url in (
        "/runs",
        f"/runs/{run.id}",
        f"/api/runs/{run.id}/events",
        "/api/runs",
        f"/runs/diff?a={run.id}&b={run.id}",
    ):
        assert rater.get(url).status_code == 403, url
    assert client.get("/runs", follow_redirects=False).status_code in (303, 307)
    assert client.get("/api/runs").status_code == 401


def test_events_endpoint_pages_with_after(engine, researcher):
    events = synthetic_events(12)
    run = _run(engine, researcher.user.id, status=RunStatus.running, events=events)
    body = researcher.get(f"/api/runs/{run.id}/events").json()
    assert [e["seq"] for e in body["events"]] == list(range(len(events)))
    assert body["events"][1]["type"] == "train" and body["events"][1]["step"] == 1
    assert body["last_seq"] == len(events) - 1
    assert body["status"] == "running" and body["total_steps"] == 12 and body["step"] == 12
    tail = researcher.get(f"/api/runs/{run.id}/events?after=10").json()
    assert [e["seq"] for e in tail["events"]] == list(range(11, len(events)))
    assert tail["events"][0] == {"seq": 11, **events[11]}
    empty = researcher.get(f"/api/runs/{run.id}/events?after={len(events) - 1}").json()
    assert empty["events"] == [] and empty["last_seq"] == len(events) - 1


def test_events_endpoint_caps_each_answer(engine, researcher, monkeypatch):
    monkeypatch.setattr("app.api.routes.runs.EVENTS_LIMIT", 5)
    run = _run(engine, researcher.user.id, events=synthetic_events(12))
    body = researcher.get(f"/api/runs/{run.id}/events?after=2").json()
    assert [e["seq"] for e in body["events"]] == [3, 4, 5, 6, 7] and body["last_seq"] == 7


def test_series_json_follows_new_events(engine, researcher):
    events = synthetic_events(20, done=False)
    run = _run(engine, researcher.user.id, status=RunStatus.running, events=events[:5])
    first = researcher.get(f"/api/runs/{run.id}/series").json()
    assert first["finished"] is False and first["train"]["x"] == [1, 2, 3, 4]
    with Session(engine) as session:
        add_events(session, session.get(Run, run.id), events[5:])
    later = researcher.get(f"/api/runs/{run.id}/series").json()
    assert later["train"]["x"] == list(range(1, 21))
    assert later["last_seq"] == len(events) - 1
    assert later["warnings"][0]["message"] == "drop <b>here</b>"


def test_series_poll_answers_the_changed_points_progress_and_a_new_start(engine, researcher):
    events = synthetic_events(20, done=False)
    run = _run(engine, researcher.user.id, status=RunStatus.running, events=events[:1])  # the start only
    assert researcher.get(f"/api/runs/{run.id}/series").json()["last_seq"] == -1
    poll = researcher.get(f"/api/runs/{run.id}/series?after=-1").json()
    assert poll["started"] is True and poll["from_step"] is None and poll["last_seq"] == 0
    with Session(engine) as session:
        add_events(session, session.get(Run, run.id), events[1:12])
    poll = researcher.get(f"/api/runs/{run.id}/series?after=0").json()
    trains = [e for e in events[1:12] if e["type"] == "train"]
    assert poll["started"] is False and poll["from_step"] == 1 and poll["last_seq"] == 11
    assert poll["train"]["x"] == [e["step"] for e in trains]
    assert poll["scalars"]["series"]["lr"] == [e["lr"] for e in trains]
    assert poll["step"] == trains[-1]["step"] and poll["eta_s"] is not None and poll["finished"] is False
    quiet = researcher.get(f"/api/runs/{run.id}/series?after=11").json()
    assert quiet["from_step"] is None and quiet["train"]["x"] == [] and quiet["last_seq"] == 11


def test_cancel_and_resume_permissions(engine, client_as, researcher, tmp_path):
    other = client_as(Role.researcher, "other")
    admin = client_as(Role.admin, "boss")
    run = _run(engine, researcher.user.id, status=RunStatus.queued)
    assert other.post(f"/runs/{run.id}/cancel").status_code == 403
    assert other.post(f"/api/runs/{run.id}/cancel").status_code == 403
    r = researcher.post(f"/runs/{run.id}/cancel", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/runs/{run.id}")
    with Session(engine) as session:
        assert session.get(Run, run.id).status == RunStatus.cancelled
    again = researcher.post(f"/api/runs/{run.id}/cancel")
    assert again.status_code == 409 and "nothing to cancel" in again.json()["detail"]
    page = researcher.post(f"/runs/{run.id}/cancel")
    assert page.status_code == 409 and "nothing to cancel" in page.text

    running = _run(engine, researcher.user.id, status=RunStatus.running)
    assert admin.post(f"/api/runs/{running.id}/cancel").json()["cancel_requested"] is True

    # resume: a failed run with a complete checkpoint, by its owner only
    run_dir = tmp_path / "failed"
    (run_dir / "checkpoints" / "step-00000002" / "trainer_state").mkdir(parents=True)
    (run_dir / "checkpoints" / "step-00000002" / "trainer_state" / "state.json").write_text("{}")
    failed = _run(engine, researcher.user.id, status=RunStatus.failed, run_dir=run_dir)
    page = researcher.get(f"/runs/{failed.id}")
    assert f'action="/runs/{failed.id}/resume"' in page.text
    assert other.post(f"/runs/{failed.id}/resume").status_code == 403
    ok = researcher.post(f"/runs/{failed.id}/resume", follow_redirects=False)
    assert ok.status_code == 303
    with Session(engine) as session:
        resumed = session.get(Run, failed.id)
        assert resumed.status == RunStatus.queued and json.loads(resumed.config_json)["checkpoint"]["resume"]
    no_ckpt = _run(engine, researcher.user.id, status=RunStatus.failed)
    assert researcher.post(f"/api/runs/{no_ckpt.id}/resume").status_code == 409


def test_posts_need_the_csrf_token(engine, researcher):
    run = _run(engine, researcher.user.id, status=RunStatus.queued)
    r = researcher.post(f"/runs/{run.id}/cancel", headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    with Session(engine) as session:
        assert session.get(Run, run.id).status == RunStatus.queued


def test_list_filters_and_api(engine, researcher, client_as):
    other = client_as(Role.researcher, "other")
    _run(engine, researcher.user.id, name="alpha", status=RunStatus.succeeded, events=synthetic_events(4))
    _run(engine, other.user.id, name="beta", status=RunStatus.failed)
    names = [r["name"] for r in researcher.get("/api/runs?status=failed").json()]
    assert names == ["beta"]
    assert [r["name"] for r in researcher.get("/api/runs?owner=other").json()] == ["beta"]
    assert [r["name"] for r in researcher.get("/api/runs?q=alp").json()] == ["alpha"]
    page = researcher.get("/runs?status=failed")
    assert "beta" in page.text and "alpha" not in re.sub(r"<select.*?</select>", "", page.text, flags=re.S)


def test_compare_and_diff_pages(engine, researcher):
    a = _run(engine, researcher.user.id, name="v1", events=synthetic_events(10), train={"lr": 1e-4})
    b = _run(engine, researcher.user.id, name=XSS, events=synthetic_events(6), train={"lr": 3e-4})
    r = researcher.get(f"/runs/compare?ids={a.id},{b.id}&channel=l1/逻辑推理")
    assert r.status_code == 200 and XSS not in r.text
    assert 'id="chart-overlay"' in r.text
    data = researcher.get(f"/api/runs/compare?ids={a.id},{b.id}&channel=l1/逻辑推理").json()
    assert "l1/逻辑推理" in data["channels_all"]
    assert {(s["run_id"], s["part"]) for s in data["data"]["series"]} == {
        (a.id, "train"),
        (a.id, "eval"),
        (b.id, "train"),
        (b.id, "eval"),
    }
    assert researcher.get("/runs/compare?ids=").status_code == 422
    assert researcher.get(f"/runs/compare?ids={a.id},999").status_code == 404
    d = researcher.get(f"/runs/diff?a={a.id}&b={b.id}")
    assert d.status_code == 200 and XSS not in d.text
    assert re.search(r'<tr class="diff-row"><td>train\.lr</td><td>0\.0001</td><td>0\.0003</td>', d.text)
    assert researcher.get(f"/runs/diff?a={a.id}&b=999").status_code == 404


def test_events_endpoint_answers_valid_json_around_an_unparsable_line(engine, researcher):
    run = _run(engine, researcher.user.id, status=RunStatus.running, events=synthetic_events(2, done=False))
    with Session(engine) as session:
        db_run = session.get(Run, run.id)
        seq = db_run.job.events_seq
        session.add(RunEvent(run_id=run.id, seq=seq, type="invalid", data='{"type": "train", "ste'))
        session.add(RunEvent(run_id=run.id, seq=seq + 1, type="done", data=' {"type": "done", "step": 2}\n'))
        db_run.job.events_seq = seq + 2
        session.add(db_run)
        session.commit()
    body = researcher.get(f"/api/runs/{run.id}/events?after={seq - 1}").json()
    assert body["events"] == [{"seq": seq, "type": "invalid"}, {"seq": seq + 1, "type": "done", "step": 2}]


@pytest.mark.parametrize(
    "url",
    [
        "/runs?dataset=²",
        "/api/runs?dataset=²",
        "/runs?dataset=" + "9" * 25,
        "/runs/compare?ids=²",
        "/api/runs/compare?ids=1,²",
        "/runs/compare?ids=" + "9" * 25,
        "/runs/diff?a=²&b=1",
    ],
)
def test_odd_digits_and_huge_ids_are_a_client_answer_not_a_500(researcher, url):
    r = researcher.get(url)
    assert r.status_code < 500, (url, r.status_code, r.text[:300])
    if "ids=1," not in url and "compare" in url:
        assert r.status_code == 422  # nothing left to compare


def test_log_endpoint_answers_the_tail_alone(engine, researcher, client_as, tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "train.log").write_text("".join(f"line {i}\n" for i in range(300)))
    run = _run(engine, researcher.user.id, status=RunStatus.running, run_dir=run_dir)
    body = researcher.get(f"/api/runs/{run.id}/log").json()
    assert list(body) == ["log"] and body["log"].splitlines() == [f"line {i}" for i in range(100, 300)]
    assert client_as(Role.rater).get(f"/api/runs/{run.id}/log").status_code == 403
    assert researcher.get("/api/runs/999/log").status_code == 404
    js = (Path(__file__).parents[2] / "static" / "runs.js").read_text()
    assert "/log`" in js and "fetch(`/api/runs/${runId}`" not in js  # the page polls the cheap one


def test_compare_parses_each_runs_events_once(engine, researcher, monkeypatch):
    a = _run(engine, researcher.user.id, name="v1", events=synthetic_events(6))
    b = _run(engine, researcher.user.id, name="v2", events=synthetic_events(4))
    loads = []
    real = series._load_since
    monkeypatch.setattr(
        series, "_load_since", lambda s, run_id, after: loads.append(run_id) or real(s, run_id, after)
    )
    assert researcher.get(f"/runs/compare?ids={a.id},{b.id}").status_code == 200
    assert sorted(loads) == sorted([a.id, b.id])


def test_the_page_shows_a_cancel_request_and_no_samples_link_without_data(engine, researcher):
    """A running run asked to stop says so; a run cancelled while queued (no data exported) offers no
    training-sample link that would answer 404."""
    from tests.runs.fake_runs import insert_run

    with Session(engine) as s:
        stopping = insert_run(
            s, owner_id=researcher.user.id, name="stopping", status=RunStatus.running, cancel_requested=True
        ).id
        never = insert_run(s, owner_id=researcher.user.id, name="never", status=RunStatus.cancelled).id
    assert "cancel requested" in researcher.get(f"/runs/{stopping}").text
    assert f"/runs/{never}/samples/0" not in researcher.get(f"/runs/{never}").text


def test_a_run_without_a_known_peak_says_why_it_has_no_mfu(engine, researcher):
    events = synthetic_events(3)
    events[0].update(peak_flops=0.0, peak_flops_source="cpu: peak unknown, set metrics.peak_flops for MFU")
    for e in events:
        if e["type"] == "train":
            e["mfu"] = None
    with Session(engine) as s:
        run = make_run(s, researcher.user.id, events=events)
    page = researcher.get(f"/runs/{run.id}").text
    assert 'id="mfu-unknown"' in page and "set metrics.peak_flops" in page
    series = researcher.get(f"/api/runs/{run.id}/series").json()
    assert all(v is None for v in series["scalars"]["series"].get("mfu", []))
    with Session(engine) as s:
        known = make_run(s, researcher.user.id, events=synthetic_events(3))
    assert 'id="mfu-unknown"' not in researcher.get(f"/runs/{known.id}").text
