"""The jobs list, the job page and cancel, with their JSON twins: filters, sort, access, escaping, live log."""

from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import Session

from app.jobs.listing import JobFilter, list_jobs, progress_text
from app.models import Job, JobKind, JobStatus, Role, User, utcnow
from tests.api.test_route_access import all_endpoints
from tests.runs.fake_runs import insert_run

XSS = "<script>alert(1)</script>"


def _job(engine, owner_id: int | None, **fields) -> int:
    fields.setdefault("kind", JobKind.estimate)
    with Session(engine) as session:
        job = Job(owner_id=owner_id, **fields)
        session.add(job)
        session.commit()
        assert job.id is not None
        return job.id


def _status(engine, job_id: int) -> Job:
    with Session(engine) as session:
        job = session.get_one(Job, job_id)
        session.expunge(job)
        return job


def test_list_filters_and_sorts(engine, researcher, client_as):
    other = client_as(Role.researcher, "other")
    now = utcnow()
    old = _job(
        engine,
        researcher.user.id,
        kind=JobKind.render,
        title="old",
        status=JobStatus.succeeded,
        created_at=now - timedelta(hours=3),
        started_at=now - timedelta(hours=3),
        finished_at=now - timedelta(hours=3) + timedelta(seconds=90),
    )
    mid = _job(
        engine,
        other.user.id,
        kind=JobKind.estimate,
        title="mid",
        queue="interactive",
        status=JobStatus.running,
        created_at=now - timedelta(minutes=5),
        started_at=now - timedelta(minutes=4),
    )
    with Session(engine) as session:
        run = insert_run(session, owner_id=researcher.user.id, name="train me", created_at=now)
        new = run.job_id
    assert [r["id"] for r in researcher.get("/api/jobs").json()] == [new, mid, old]
    by_age = researcher.get("/api/jobs?sort=age&dir=desc").json()
    assert [r["id"] for r in by_age] == [old, mid, new]
    by_kind = researcher.get("/api/jobs?sort=kind&dir=asc").json()
    assert [r["kind"] for r in by_kind] == ["estimate", "render", "train"]
    by_duration = researcher.get("/api/jobs?sort=duration&dir=desc").json()
    assert [r["id"] for r in by_duration] == [mid, old, new]  # not started goes last
    assert [r["id"] for r in researcher.get("/api/jobs?sort=status&dir=asc").json()] == [new, mid, old]

    assert [r["id"] for r in researcher.get("/api/jobs?kind=render").json()] == [old]
    assert [r["id"] for r in researcher.get("/api/jobs?status=running").json()] == [mid]
    assert [r["id"] for r in researcher.get("/api/jobs?queue=interactive").json()] == [mid]
    assert [r["id"] for r in researcher.get("/api/jobs?owner=other").json()] == [mid]
    assert researcher.get("/api/jobs?status=bogus&sort=bogus").status_code == 200

    rows = {r["id"]: r for r in researcher.get("/api/jobs").json()}
    assert rows[new]["link"] == f"/runs/{run.id}" and rows[old]["link"] is None
    assert rows[old]["duration_s"] == 90 and rows[old]["fraction"] == 1.0
    assert rows[mid]["owner"] == "other" and rows[mid]["age_s"] >= 300
    assert set(rows[mid]) >= {"id", "kind", "title", "status", "queue", "progress_text", "created_at"}
    assert "log_tail" not in rows[mid] and "result" not in rows[mid]

    page = researcher.get("/jobs?kind=estimate")
    assert page.status_code == 200
    assert f'href="/jobs/{mid}"' in page.text and f'href="/jobs/{old}"' not in page.text
    # a running job has a cancel button on the list only for its owner (or an admin)
    assert f'action="/jobs/{mid}/cancel"' not in page.text
    assert f'action="/jobs/{mid}/cancel"' in other.get("/jobs").text


def test_list_reads_only_the_columns_it_shows_and_limits_in_sql(engine, researcher):
    for i in range(3):
        _job(engine, researcher.user.id, title=f"j{i}", log_tail="x" * 1000, result_json='{"a": 1}')
    statements: list[str] = []
    listen = lambda conn, cursor, sql, *a: statements.append(sql)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        with Session(engine) as session:
            rows = list_jobs(session, flt=JobFilter(sort="created", desc=False), limit=2)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert [r.title for r in rows] == ["j0", "j1"]
    query = next(s for s in statements if "FROM job" in s)
    assert "LIMIT" in query
    for column in ("log_tail", "params_json", "result_json", "error"):
        assert f"job.{column}" not in query, column


def test_progress_text():
    assert progress_text(37, 200, "steps") == "37 / 200 steps"
    assert progress_text(1.5, 0, "prompts") == "1.5 prompts"
    assert progress_text(0, 0, "lines") == ""
    assert progress_text(3, 10, "") == "3 / 10"


def test_job_page_shows_fields_log_tail_and_escapes(engine, researcher, tmp_path):
    log = tmp_path / "job.log"
    log.write_text("".join(f"line {i} {XSS}\n" for i in range(300)))
    job_id = _job(
        engine,
        researcher.user.id,
        kind=JobKind.render,
        title=XSS,
        status=JobStatus.running,
        log_file=str(log),
        progress_done=37,
        progress_total=200,
        progress_unit="steps",
        stage=XSS,
        started_at=utcnow(),
        worker="w1",
    )
    page = researcher.get(f"/jobs/{job_id}")
    assert page.status_code == 200, page.text
    assert XSS not in page.text and "&lt;script&gt;" in page.text
    assert "line 299" in page.text and "line 99 " not in page.text  # the last 200 lines
    assert "37 / 200 steps" in page.text
    assert f'hx-get="/jobs/{job_id}"' in page.text and 'hx-trigger="every 2s"' in page.text
    assert f'action="/jobs/{job_id}/cancel"' in page.text

    live = researcher.get(f"/jobs/{job_id}", headers={"HX-Request": "true"})
    assert live.status_code == 200
    assert live.text.lstrip().startswith('<div id="job-live"') and "<html" not in live.text
    assert "line 299" in live.text


def test_finished_job_page_falls_back_to_the_saved_tail_and_stops_polling(engine, researcher, tmp_path):
    job_id = _job(
        engine,
        researcher.user.id,
        status=JobStatus.failed,
        log_file=str(tmp_path / "gone.log"),
        log_tail="last words",
        error="it broke",
        exit_code=3,
        result_json='{"tokens": 12}',
    )
    page = researcher.get(f"/jobs/{job_id}")
    assert "last words" in page.text and "it broke" in page.text
    assert "hx-trigger" not in page.text and f"/jobs/{job_id}/cancel" not in page.text
    data = researcher.get(f"/api/jobs/{job_id}").json()
    assert data["result"] == {"tokens": 12} and data["log_tail"] == "last words"
    assert data["error"] == "it broke" and data["exit_code"] == 3 and data["status"] == "failed"
    assert researcher.get("/jobs/999").status_code == 404
    assert researcher.get("/api/jobs/999").status_code == 404


def test_train_job_links_to_its_run(engine, researcher):
    with Session(engine) as session:
        run = insert_run(session, owner_id=researcher.user.id, name="r", status=JobStatus.running)
        job_id, run_id = run.job_id, run.id
    assert f'href="/runs/{run_id}"' in researcher.get(f"/jobs/{job_id}").text
    assert researcher.get(f"/api/jobs/{job_id}").json()["link"] == f"/runs/{run_id}"
    other = _job(engine, researcher.user.id, kind=JobKind.render)
    assert researcher.get(f"/api/jobs/{other}").json()["link"] is None


def test_import_and_index_jobs_link_to_the_import_and_the_version(engine, researcher):
    """An upload imported through the API (its import and index jobs run at once here) leaves two jobs,
    each pointing at what it made."""
    from tests.conftest import SHARED_DATA

    with open(SHARED_DATA / "pclue_train_9.jsonl", "rb") as fh:
        upload = researcher.post("/api/uploads", files={"file": ("p.jsonl", fh)}).json()
    started = researcher.post(
        f"/api/uploads/{upload['upload_id']}/import",
        json={"name": "pclue", "mapping": {"prompt": ["input"], "answer": "target", "task_l1": "type"}},
    ).json()
    rows = {r["kind"]: r for r in researcher.get("/api/jobs").json()}
    assert (
        rows["import"]["status"] == "succeeded" and rows["import"]["link"] == f"/imports/{started['job_id']}"
    )
    dataset_id = researcher.get(f"/api/imports/{started['job_id']}").json()["dataset_id"]
    assert rows["index"]["status"] == "succeeded"
    assert rows["index"]["link"] == f"/datasets/{dataset_id}/v/1/stats"
    page = researcher.get(f"/jobs/{rows['index']['id']}")
    assert f'href="/datasets/{dataset_id}/v/1/stats"' in page.text


def test_cancel_queued_running_and_finished(engine, researcher, client_as):
    admin = client_as(Role.admin, "boss")
    queued = _job(engine, researcher.user.id, status=JobStatus.queued)
    r = researcher.post(f"/jobs/{queued}/cancel", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/jobs/{queued}?ok=jobs.cancel.done"
    assert _status(engine, queued).status == JobStatus.cancelled
    assert "Cancel requested." in researcher.get(r.headers["location"]).text

    running = _job(engine, researcher.user.id, status=JobStatus.running)
    r = researcher.post(f"/jobs/{running}/cancel", data={"back": "list"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/jobs?ok=jobs.cancel.done"
    job = _status(engine, running)
    assert job.status == JobStatus.running and job.cancel_requested

    by_admin = _job(engine, researcher.user.id, status=JobStatus.running)
    body = admin.post(f"/api/jobs/{by_admin}/cancel").json()
    assert body == {"id": by_admin, "status": "running", "cancel_requested": True}
    also = _job(engine, researcher.user.id, status=JobStatus.queued)
    assert researcher.post(f"/api/jobs/{also}/cancel").json()["status"] == "cancelled"

    again = researcher.post(f"/api/jobs/{queued}/cancel")
    assert again.status_code == 409 and "nothing to cancel" in again.json()["detail"]
    page = researcher.post(f"/jobs/{queued}/cancel")
    assert page.status_code == 409 and "nothing to cancel" in page.text and 'class="flash error"' in page.text


def test_only_the_owner_or_an_admin_may_cancel(engine, researcher, client_as):
    other = client_as(Role.researcher, "other")
    job_id = _job(engine, researcher.user.id, status=JobStatus.queued)
    assert other.post(f"/jobs/{job_id}/cancel").status_code == 403
    assert other.post(f"/api/jobs/{job_id}/cancel").status_code == 403
    assert _status(engine, job_id).status == JobStatus.queued
    assert f'action="/jobs/{job_id}/cancel"' not in other.get(f"/jobs/{job_id}").text
    ownerless = _job(engine, None, status=JobStatus.queued)
    assert researcher.post(f"/api/jobs/{ownerless}/cancel").status_code == 403


def test_raters_get_403_everywhere(engine, client_as, researcher):
    job_id = _job(engine, researcher.user.id, status=JobStatus.queued)
    rater = client_as(Role.rater)
    for url in ("/jobs", f"/jobs/{job_id}", "/api/jobs", f"/api/jobs/{job_id}"):
        assert rater.get(url).status_code == 403, url
    for url in (f"/jobs/{job_id}/cancel", f"/api/jobs/{job_id}/cancel"):
        assert rater.post(url).status_code == 403, url
    assert _status(engine, job_id).status == JobStatus.queued
    assert 'href="/jobs"' not in rater.get("/rating").text  # not in a rater's navigation


def test_routes_are_researcher_level_and_in_the_nav(researcher):
    endpoints, _ = all_endpoints()  # the route walk, which calls each of these as every role
    jobs = {
        (e.method, e.template): e.levels for e in endpoints if e.template.startswith(("/jobs", "/api/jobs"))
    }
    assert jobs == {
        ("GET", "/jobs"): ["researcher"],
        ("GET", "/jobs/{job_id}"): ["researcher"],
        ("POST", "/jobs/{job_id}/cancel"): ["researcher"],
        ("GET", "/api/jobs"): ["researcher"],
        ("GET", "/api/jobs/{job_id}"): ["researcher"],
        ("POST", "/api/jobs/{job_id}/cancel"): ["researcher"],
    }
    page = researcher.get("/runs").text
    assert 'href="/jobs"' in page and 'data-goto="j"' in page
    researcher.cookies.set("lang", "zh")
    assert "任务" in researcher.get("/jobs").text


@pytest.mark.postgres
def test_list_sorts_on_postgresql(pg):
    engine, _ = pg
    now = utcnow()
    with Session(engine) as session:
        owner = User(username="pg", password_hash="x", role=Role.researcher)
        session.add(owner)
        session.commit()
        assert owner.id is not None
        run_id = insert_run(session, owner_id=owner.id, name="train").id  # queued, not started
        for kind, status, seconds in (
            (JobKind.render, JobStatus.succeeded, 5),
            (JobKind.estimate, JobStatus.failed, 500),
        ):
            session.add(
                Job(
                    kind=kind,
                    owner_id=owner.id,
                    status=status,
                    started_at=now,
                    finished_at=now + timedelta(seconds=seconds),
                )
            )
        session.commit()
        by_duration = list_jobs(session, flt=JobFilter(sort="duration"))
        by_status = list_jobs(session, flt=JobFilter(sort="status", desc=False))
        mine = list_jobs(session, flt=JobFilter(owner="pg", kind="train"))
    assert [r.kind for r in by_duration] == ["estimate", "render", "train"]
    assert round(by_duration[0].duration_s or 0) == 500
    assert [r.status for r in by_status] == ["failed", "queued", "succeeded"]  # by name, not enum order
    assert [r.link for r in mine] == [f"/runs/{run_id}"]
