"""A sampling job's analysis (accuracy with its interval, lengths, cuts, repeats, identity claims, latency
fit) from generations whose numbers are known, through the API and the HTMX section of the results page."""

import json
import math

import pytest
from sqlmodel import Session, select

from app.models import Generation, Job, JobStatus, Role, Sample, SamplingJob
from app.sampling import analysis
from app.sampling.prompts import select_ids
from app.sampling.request import Filter
from tests.sampling.conftest import launch_fake

SCRIPT = "<script>alert(1)</script>"
QWEN = "我是通义千问，很高兴为你服务。"
ACC_TOKENS = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]


def _time(tokens: int) -> float:
    return 0.05 * tokens + 0.3


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    # Each test has a database of its own, where job ids and counts repeat: start with an empty cache.
    monkeypatch.setattr(analysis, "_cache", type(analysis._cache)())


@pytest.fixture
def job(pclue, engine):
    """A queued job on pCLUE's 'generate' prompts with 16 generations written directly: task 'acc' (10
    answers, 8 equal to the reference, 3 cut), 'rep' (the same <script> answer to 4 prompts) and 'id'
    (one Qwen self-identification, one ChatGPT mention); every time is 0.05·tokens + 0.3."""
    sampling = launch_fake(engine, pclue)
    with Session(engine) as session:
        ids = select_ids(session, dataset_id=pclue.dataset_id, version=1, flt=Filter(task="generate"))[:16]
        samples = {s.id: s for s in session.exec(select(Sample).where(Sample.id.in_(ids))).all()}  # type: ignore[union-attr]
        # The reference is the sample's last assistant turn.
        refs = {sid: json.loads(samples[sid].messages)[-1]["content"] for sid in ids}
        plan = []
        for i, sid in enumerate(ids[:10]):
            text = refs[sid] if i < 8 else f"完全无关的回答 {i}"
            plan.append((sid, "acc", text, ACC_TOKENS[i], "length" if i < 3 else "stop"))
        plan += [(sid, "rep", SCRIPT, 5 + i, "stop") for i, sid in enumerate(ids[10:14])]
        plan += [(ids[14], "id", QWEN, 12, "stop"), (ids[15], "id", "ChatGPT 是一个聊天机器人。", 15, "stop")]
        gens = []
        for i, (sid, task, text, tokens, finish) in enumerate(plan):
            gen = Generation(
                sampling_job_id=sampling.id or 0, sample_id=sid, prompt_id=f"p{sid}", task_type=task,
                prompt_text="q", text=text, tokens=tokens, prompt_tokens=10 * (i + 1),
                finish_reason=finish, time_s=_time(tokens),
            )  # fmt: skip
            session.add(gen)
            gens.append(gen)
        session.commit()
        flagged = gens[14].id
        assert all(refs[sid] for sid in ids[:10])
    return {"id": sampling.id, "ids": ids, "flagged": flagged, "plan": plan}


def test_the_api_gives_accuracy_lengths_cuts_repeats_flags_and_latency(job, researcher):
    response = researcher.get(f"/api/sampling/{job['id']}/analysis")
    assert response.status_code == 200, response.text
    a = response.json()
    assert a["generations"] == 16

    acc = a["accuracy"]["acc"]
    assert (acc["correct"], acc["n"], acc["unscored"]) == (8, 10, 0)
    assert acc["accuracy"] == 0.8
    assert acc["ci95"] == pytest.approx([0.4902, 0.9433], abs=1e-4)
    # pCLUE's generate references are free text, all different: no label set, so exact match.
    assert acc["scorer"]["kind"] == "exact"

    lengths = a["lengths"]["tasks"]["acc"]
    assert (lengths["n"], lengths["p50"], lengths["p90"], lengths["max"]) == (10, 55.0, 91.0, 100)
    assert sum(lengths["counts"]) == 10
    assert a["cut"]["acc"]["share"] == 0.3 and a["cut"]["acc"]["cut"] == 3
    assert a["cut"]["rep"]["share"] == 0.0

    [group] = a["repeated"]
    assert group["example"] == SCRIPT and group["prompts"] == 4
    assert group["prompt_ids"] == [f"p{sid}" for sid in job["ids"][10:14]]

    ident = a["identity"]
    assert ident["self"]["answers"] == 1 and ident["self"]["names"] == {"Qwen": 1}
    assert ident["self"]["hits"] == [
        {
            "id": job["flagged"],
            "sample_id": job["ids"][14],
            "prompt_id": f"p{job['ids'][14]}",
            "names": ["Qwen"],
        }
    ]
    assert ident["mentions"]["answers"] == 1 and ident["mentions"]["names"] == {"ChatGPT": 1}

    lat = a["latency"]
    assert lat["overall"]["k"] == pytest.approx(0.05) and lat["overall"]["b"] == pytest.approx(0.3)
    assert lat["overall"]["r2"] == pytest.approx(1.0) and lat["overall"]["n"] == 16
    tokens = [p[3] for p in job["plan"]]
    assert lat["tokens_per_s"] == pytest.approx(sum(tokens) / sum(_time(t) for t in tokens))
    assert len(lat["bands"]) == 3
    for band in lat["bands"]:
        assert band["fit"]["k"] == pytest.approx(0.05) and band["fit"]["b"] == pytest.approx(0.3)
        assert band["tokens_per_s"] == pytest.approx(20.0)
    assert len(lat["points"]) == 16


def test_the_results_page_loads_the_section_which_shows_the_numbers_escaped(job, researcher, engine):
    running = researcher.get(f"/sampling/{job['id']}").text
    assert f'<button class="small" hx-get="/sampling/{job["id"]}/analysis"' in running
    assert 'hx-trigger="load"' not in running  # a running job's page reloads: analysing waits for a click
    with Session(engine) as session:
        sampling = session.get(SamplingJob, job["id"])
        assert sampling is not None
        state = session.get(Job, sampling.job_id)
        assert state is not None
        state.status = JobStatus.succeeded
        session.add(state)
        session.commit()
    page = researcher.get(f"/sampling/{job['id']}").text
    assert f'hx-get="/sampling/{job["id"]}/analysis" hx-trigger="load"' in page
    html = researcher.get(f"/sampling/{job['id']}/analysis", headers={"HX-Request": "true"}).text
    assert "<html" not in html
    row = html.split('data-task="acc"')[1].split("</tr>")[0]
    assert "0.8000" in row and "0.4902–0.9433" in row and "8 / 10" in row
    assert "30.0% (3)" in row.split("data-cut-share>")[1] and "55 / 91 / 100" in row and ">exact<" in row
    assert row.count("<rect") == 20  # the length histogram, one bar per bin
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f'href="/sampling/{job["id"]}?q=%3Cscript%3Ealert%281%29%3C/script%3E"' in html
    sid = job["ids"][14]
    assert f'href="/sampling/{job["id"]}?after={sid - 1}#p{sid}">#{job["flagged"]}</a>' in html
    overall = html.split('data-latency="overall"')[1].split("</tr>")[0]
    assert "0.0500" in overall and "0.300" in overall and "1.0000" in overall and ">16<" in overall
    assert (
        html.count('<line data-band="') == 3
        and html.count("<line data-overall") == 1
        and html.count("<circle") == 16
    )
    # The flagged generation's link lands on its prompt.
    target = researcher.get(f"/sampling/{job['id']}?after={sid - 1}").text
    assert f'id="p{sid}"' in target and "我是通义千问" in target


def test_the_section_in_chinese(job, researcher):
    html = researcher.get(f"/sampling/{job['id']}/analysis", headers={"Accept-Language": "zh-CN"}).text
    assert "各任务类型准确率" in html and "身份声明" in html and "Accuracy by task type" not in html


def test_raters_get_403_and_a_missing_job_404(job, client_as, researcher):
    rater = client_as(Role.rater)
    assert rater.get(f"/api/sampling/{job['id']}/analysis").status_code == 403
    assert rater.get(f"/sampling/{job['id']}/analysis").status_code == 403
    assert researcher.get("/api/sampling/999999/analysis").status_code == 404
    assert researcher.get("/sampling/0/analysis").status_code == 404


def test_the_analysis_is_cached_until_the_generation_count_changes(job, engine):
    with Session(engine) as session:
        sampling = session.get(SamplingJob, job["id"])
        assert sampling is not None
        first = analysis.analyse(session, sampling)
        assert analysis.analyse(session, sampling) is first
        session.add(
            Generation(
                sampling_job_id=job["id"],
                sample_id=job["ids"][0],
                prompt_id=f"p{job['ids'][0]}",
                index=1,
                task_type="acc",
                prompt_text="q",
                text="错",
                tokens=7,
                time_s=_time(7),
            )  # fmt: skip
        )
        session.commit()
        again = analysis.analyse(session, sampling)
    assert again is not first and again["generations"] == 17
    assert again["accuracy"]["acc"]["n"] == 11 and again["accuracy"]["acc"]["correct"] == 8
    assert math.isclose(again["latency"]["overall"]["k"], 0.05)


def test_load_generations_reads_in_batches_with_references(job, engine, monkeypatch):
    monkeypatch.setattr(analysis, "BATCH", 3)
    with Session(engine) as session:
        gens = analysis.load_generations(session, job["id"])
    assert [g["sample_id"] for g in gens] == job["ids"]
    assert "prompt_text" not in gens[0] and all(g["reference"] for g in gens)


def test_the_scatter_plot_gets_at_most_plot_points_while_the_fit_uses_all():
    gens = [
        {"id": i, "sample_id": i, "prompt_id": str(i), "task_type": "t", "reference": None, "text": f"a{i}",
         "tokens": 1 + i % 50, "prompt_tokens": i, "finish_reason": "stop", "time_s": _time(1 + i % 50)}
        for i in range(analysis.PLOT_POINTS * 2 + 1)
    ]  # fmt: skip
    lat = analysis.compute(gens)["latency"]
    assert len(lat["points"]) <= analysis.PLOT_POINTS and lat["overall"]["n"] == len(gens)
    assert {p[2] for p in lat["points"]} == {0, 1, 2}  # each point coloured by its prompt-length band
