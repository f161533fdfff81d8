"""HTTP tests of the statistics page, its progress fragment and the statistics JSON."""

from sqlalchemy import text

from tests.conftest import SHARED_DATA
from tests.datasets.test_search import PCLUE, load


def test_stats_page_and_json(engine, researcher):
    ds, v, vid = load(engine, researcher.user.id, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="pclue")
    r = researcher.get(f"/datasets/{ds}/v/{v}/stats")
    assert r.status_code == 200
    for needle in (
        "uPlot-1.6.32.iife.min.js",
        "/static/stats.js",
        'id="charts-data"',
        'id="plot-answer_tokens"',
        ">classify</span>",
        "答案：",
        f"/datasets/{ds}/v/{v}/samples?task=nli",
    ):
        assert needle in r.text, needle
    zh = researcher.get(f"/datasets/{ds}/v/{v}/stats", cookies={"lang": "zh"})
    assert "任务类型树" in zh.text
    j = researcher.get(f"/api/datasets/{ds}/versions/{v}/stats").json()
    assert j["status"] == "ready" and j["stats"]["n_samples"] == 705
    assert researcher.get("/static/stats.js").status_code == 200
    assert researcher.get(f"/datasets/{ds}/v/9/stats").status_code == 404
    assert researcher.get(f"/api/datasets/{ds}/versions/9/stats").status_code == 404


def test_progress_while_indexing_then_refresh(engine, researcher):
    ds, v, vid = load(engine, researcher.user.id, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="pclue")
    with engine.begin() as c:
        c.execute(
            text(
                "UPDATE job SET status = 'running', progress_done = 0.42, progress_total = 1, stage = 'search index'"
                " WHERE id = (SELECT index_job_id FROM datasetversion WHERE id = :v)"
            ),
            {"v": vid},
        )
    r = researcher.get(f"/datasets/{ds}/v/{v}/stats")
    assert "42.0%" in r.text and "search index" in r.text and "every 1s" in r.text
    assert researcher.get(f"/api/datasets/{ds}/versions/{v}/stats").json()["stats"] is None
    p = researcher.get(f"/datasets/{ds}/v/{v}/stats/progress", headers={"HX-Request": "true"})
    assert p.status_code == 200 and "HX-Refresh" not in p.headers
    with engine.begin() as c:
        c.execute(
            text(
                "UPDATE job SET status = 'failed', error = 'boom'"
                " WHERE id = (SELECT index_job_id FROM datasetversion WHERE id = :v)"
            ),
            {"v": vid},
        )
    assert "boom" in researcher.get(f"/datasets/{ds}/v/{v}/stats").text
    with engine.begin() as c:
        c.execute(
            text(
                "UPDATE job SET status = 'succeeded' WHERE id = (SELECT index_job_id FROM datasetversion WHERE id = :v)"
            ),
            {"v": vid},
        )
    p = researcher.get(f"/datasets/{ds}/v/{v}/stats/progress", headers={"HX-Request": "true"})
    assert p.headers.get("HX-Refresh") == "true"
