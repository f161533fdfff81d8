"""Imports of the three real files give exactly the counts computed independently from the raw files; imports are atomic."""

import json

import pytest
from sqlmodel import Session, func, select

from app.datasets import importer, parsing
from app.datasets.import_job import create_job
from app.datasets.import_options import ImportOptions
from app.datasets.importer import import_file
from app.datasets.mapping import Mapping
from app.datasets.sample_writer import SampleWriter
from app.models import Dataset, DatasetVersion, ImportJob, Job, JobKind, JobStatus, Sample, SampleTag, Upload
from tests.conftest import SHARED_DATA
from worker.kinds.imports import run_import_job

PCLUE = SHARED_DATA / "pclue_train_9.jsonl"
BELLE_EVAL = SHARED_DATA / "belle_eval_set.json"
BELLE_SEED = SHARED_DATA / "belle_zh_seed_tasks.jsonl"


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def indexed(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", calls.append)
    return calls


def _count(engine, model, *where):
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def test_pclue_type_becomes_task_type(settings, engine, make_user, indexed):
    raw = _rows(PCLUE)
    expected = {}
    for r in raw:
        expected[r["type"]] = expected.get(r["type"], 0) + 1
    owner = make_user()
    m = Mapping(prompt=["input"], answer="target", task_l1="type")
    res = import_file(
        path=PCLUE, options=ImportOptions(mapping=m, name="pclue"), owner_id=owner.id, filename=PCLUE.name
    )
    assert (res.status, res.n_ok, res.n_bad) == ("succeeded", len(raw), 0) == ("succeeded", 705, 0)
    assert res.report["task_counts"] == expected
    with Session(engine) as s:
        rows = s.exec(
            select(Sample).where(Sample.dataset_id == res.dataset_id).order_by(Sample.line_no)
        ).all()
        assert [r.line_no for r in rows] == list(range(1, 706))
        assert all(
            r.prompt == raw[r.line_no - 1]["input"] and r.answer == raw[r.line_no - 1]["target"] for r in rows
        )
        assert sum(r.prompt.endswith("答案：") for r in rows) == sum(
            r["input"].endswith("答案：") for r in raw
        )
        v = s.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == res.dataset_id)).one()
        assert (v.number, v.n_samples) == (1, 705)
    assert indexed == [res.version_id]


def test_belle_eval_as_train_reports_missing_answers(settings, make_user, indexed):
    raw = _rows(BELLE_EVAL)
    empty = [i + 1 for i, r in enumerate(raw) if not r["std_answer"].strip()]
    nbsp = sum("\u00a0" in r["class"] for r in raw)
    assert len(empty) == 369 and nbsp == 52
    m = Mapping(prompt=["question"], answer="std_answer", task_l1="class")
    res = import_file(
        path=BELLE_EVAL,
        options=ImportOptions(mapping=m, name="belle", kind="train"),
        owner_id=make_user().id,
        filename=BELLE_EVAL.name,
    )
    assert (res.status, res.n_ok, res.n_bad) == ("succeeded", len(raw) - len(empty), len(empty))
    assert res.report["by_reason"] == {"missing_answer": len(empty)}
    assert [i[0] for i in res.report["issues"]] == empty
    nbsp_kept = sum("\u00a0" in r["class"] and r["std_answer"].strip() != "" for r in raw)
    assert res.report["task_normalised"]["count"] == nbsp_kept
    assert res.report["task_normalised"]["examples"][0]["to"] == "closed qa"


def test_belle_eval_as_eval_set_is_complete(settings, engine, make_user, indexed):
    raw = _rows(BELLE_EVAL)
    m = Mapping(prompt=["question"], reference="std_answer", task_l1="class")
    res = import_file(
        path=BELLE_EVAL,
        options=ImportOptions(mapping=m, name="belle-eval", kind="eval"),
        owner_id=make_user().id,
        filename=BELLE_EVAL.name,
    )
    assert (res.status, res.n_ok, res.n_bad) == ("succeeded", 1000, 0)
    assert res.report["task_normalised"]["count"] == sum("\u00a0" in r["class"] for r in raw) == 52
    expected = {}
    for r in raw:
        k = " ".join(r["class"].split())
        expected[k] = expected.get(k, 0) + 1
    assert res.report["task_counts"] == expected
    with Session(engine) as s:
        samples = s.exec(select(Sample).where(Sample.dataset_id == res.dataset_id)).all()
        assert sum(x.reference is None for x in samples) == sum(not r["std_answer"] for r in raw) == 369
        assert all(x.answer == "" and "assistant" not in x.messages for x in samples)
        assert all("\u00a0" not in x.task_l1 for x in samples)


def test_belle_seed_tasks_nested_instances(settings, engine, make_user, indexed):
    raw = _rows(BELLE_SEED)
    m = Mapping(prompt=["instruction", "instances[0].input"], answer="instances[0].output", task_l1="name")
    res = import_file(
        path=BELLE_SEED,
        options=ImportOptions(mapping=m, name="seed"),
        owner_id=make_user().id,
        filename=BELLE_SEED.name,
    )
    assert (res.status, res.n_ok, res.n_bad) == ("succeeded", len(raw), 0) == ("succeeded", 175, 0)
    with Session(engine) as s:
        by_line = {x.line_no: x for x in s.exec(select(Sample).where(Sample.dataset_id == res.dataset_id))}
    for i, r in enumerate(raw, 1):
        inst = r["instances"][0]
        want = r["instruction"] + ("\n" + inst["input"] if inst["input"].strip() else "")
        assert (
            by_line[i].prompt == want
            and by_line[i].answer == inst["output"]
            and by_line[i].task_l1 == r["name"]
        )


def test_all_or_nothing_policy_imports_nothing(settings, engine, make_user, indexed):
    m = Mapping(prompt=["question"], answer="std_answer", task_l1="class")
    res = import_file(
        path=BELLE_EVAL,
        options=ImportOptions(mapping=m, name="strict", policy="all"),
        owner_id=make_user().id,
        filename=BELLE_EVAL.name,
    )
    assert res.status == "rejected" and res.n_bad == 369 and res.n_ok == 631
    assert len(res.report["issues"]) == 369  # the full report even though nothing is kept
    for model in (Dataset, DatasetVersion, Sample, SampleTag):
        assert _count(engine, model) == 0
    assert indexed == []


def test_failure_mid_import_leaves_nothing(settings, engine, make_user, monkeypatch, indexed):
    monkeypatch.setattr(parsing, "BATCH", 100)
    real_write = SampleWriter.write
    calls = {"n": 0}

    def flaky(self, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk on fire")
        real_write(self, batch)

    monkeypatch.setattr(SampleWriter, "write", flaky)
    m = Mapping(prompt=["input"], answer="target", task_l1="type", extra_tags=["pclue"])
    with pytest.raises(OSError):
        import_file(path=PCLUE, options=ImportOptions(mapping=m, name="boom"), owner_id=make_user().id)
    assert calls["n"] == 3
    for model in (Dataset, DatasetVersion, Sample, SampleTag):
        assert _count(engine, model) == 0


def test_job_runs_to_success_and_failure(settings, engine, make_user, monkeypatch, indexed):
    owner = make_user()
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    (settings.uploads_dir / "a.upload").write_bytes(PCLUE.read_bytes())
    with Session(engine) as s:
        up = Upload(owner_id=owner.id, filename="p.jsonl", stored_name="a.upload", size=1)
        s.add(up)
        s.commit()
        s.refresh(up)
        m = Mapping(prompt=["input"], answer="target", task_prefix="pclue", task_l1="type")
        ok = create_job(s, upload=up, options=ImportOptions(mapping=m, name="p"), owner_id=owner.id)
        bad = create_job(s, upload=up, options=ImportOptions(mapping=m, name="q"), owner_id=owner.id)
        ok_id, bad_id = ok.id, bad.id
    run_import_job(ok_id)
    monkeypatch.setattr(parsing, "make_builder", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("bug")))
    run_import_job(bad_id)
    with Session(engine) as s:
        ok, bad = s.get(ImportJob, ok_id), s.get(ImportJob, bad_id)
        assert (ok.status, ok.n_ok, ok.progress) == ("succeeded", 705, 1.0)
        assert (bad.status, bad.dataset_id) == ("failed", None) and "bug" in bad.error
        assert s.exec(select(func.count()).select_from(Dataset)).one() == 1
        tasks = set(s.exec(select(Sample.task_l1, Sample.task_l2)).all())
        assert tasks == {("pclue", t) for t in ("classify", "nli", "mrc", "generate", "anaphora_resolution")}
    run_import_job(ok_id)  # a re-delivered task does not import twice
    assert _count(engine, Sample) == 705


def test_merge_creates_a_new_version(settings, engine, make_user, indexed):
    owner = make_user()
    m = Mapping(prompt=["input"], answer="target", task_l1="type")
    first = import_file(path=PCLUE, options=ImportOptions(mapping=m, name="p"), owner_id=owner.id)
    m2 = Mapping(prompt=["instruction", "instances[0].input"], answer="instances[0].output", task_l1="name")
    second = import_file(
        path=BELLE_SEED,
        options=ImportOptions(mapping=m2, target_dataset_id=first.dataset_id),
        owner_id=owner.id,
    )
    assert (second.dataset_id, second.version) == (first.dataset_id, 2)
    with Session(engine) as s:
        ds = s.get(Dataset, first.dataset_id)
        v2 = s.exec(select(DatasetVersion).where(DatasetVersion.number == 2)).one()
        assert (ds.latest_version, v2.n_samples) == (2, 705 + 175)
    assert indexed == [first.version_id, second.version_id]


def test_formats_in(settings, engine, make_user, indexed, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    owner = make_user()
    pq.write_table(
        pa.table({"prompt": ["问一", "问二"], "response": ["答一", "答二"], "task_type": ["qa/x", "qa"]}),
        tmp_path / "d.parquet",
    )
    (tmp_path / "d.csv").write_text(
        "prompt,response,task_type\n问一,答一,qa/x\n问二,答二,qa\n", encoding="utf-8"
    )
    (tmp_path / "d.json").write_text(
        json.dumps(
            [
                {"instruction": "问一", "input": "", "output": "答一", "task_type": "qa/x"},
                {"instruction": "问", "input": "二", "output": "答二", "task_type": "qa"},
            ],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    (tmp_path / "s.jsonl").write_text(
        "\n".join(
            json.dumps(
                {
                    "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}],
                    "task_type": t,
                },
                ensure_ascii=False,
            )
            for q, a, t in (("问一", "答一", "qa/x"), ("问二", "答二", "qa"))
        )
    )
    from app.datasets.formats import preview, sniff_container
    from app.datasets.mapping import guess_mapping

    for name in ("d.parquet", "d.csv", "d.json", "s.jsonl"):
        path = tmp_path / name
        rows, _ = preview(path, sniff_container(path, name), max_line_bytes=10_000)
        res = import_file(
            path=path,
            options=ImportOptions(mapping=guess_mapping([o for _, o in rows]), name=name),
            owner_id=owner.id,
            filename=name,
        )
        assert (res.status, res.n_ok, res.n_bad) == ("succeeded", 2, 0), (name, res.report)
        with Session(engine) as s:
            got = s.exec(
                select(Sample.prompt, Sample.answer, Sample.task_l1, Sample.task_l2)
                .where(Sample.dataset_id == res.dataset_id)
                .order_by(Sample.line_no)
            ).all()
        assert [tuple(g) for g in got] == [
            ("问一", "答一", "qa", "x"),
            ("问二" if name != "d.json" else "问\n二", "答二", "qa", ""),
        ]


def test_job_progress_comes_from_the_side_file_while_running(settings):
    from app.datasets.import_job import job_progress, progress_path

    job = ImportJob(
        id=41,
        upload_id=1,
        owner_id=1,
        options_json="{}",
        job=Job(kind=JobKind.import_, status=JobStatus.running),
    )
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    assert job_progress(settings, job) == 0.0
    progress_path(settings, 41).write_text("0.420")
    assert job_progress(settings, job) == 0.42
    job.job.status = JobStatus.succeeded
    assert job_progress(settings, job) == 1.0


def test_nothing_valid_is_rejected_with_the_reasons(settings, engine, make_user, tmp_path, indexed):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a"}\n[1]\n{"prompt": "", "response": "b"}\n', encoding="utf-8")
    m = Mapping(prompt=["prompt"], answer="response", default_task="misc")
    res = import_file(path=path, options=ImportOptions(mapping=m, name="bad"), owner_id=make_user().id)
    assert res.status == "rejected" and res.report["rejected"] == "no valid samples"
    assert [(i[0], i[1]) for i in res.report["issues"]] == [
        (1, "missing_answer"),
        (2, "not_object"),
        (3, "missing_prompt"),
    ]
    assert _count(engine, Dataset) == 0 and indexed == []


def test_killed_import_process_leaves_nothing(settings, engine, make_user, tmp_path, indexed):
    """A worker killed (SIGKILL) mid-import: SQLite rolls the open transaction back; the next import works."""
    import os
    import signal
    import subprocess
    import sys
    import time

    owner = make_user()
    marker = tmp_path / "three-batches-written"
    script = f"""
import time
from pathlib import Path
from app.datasets import parsing
from app.datasets.import_options import ImportOptions
from app.datasets.importer import import_file
from app.datasets.mapping import Mapping
from app.datasets.sample_writer import SampleWriter
parsing.BATCH = 100
real, n = SampleWriter.write, [0]
def slow(self, batch):
    real(self, batch)
    n[0] += 1
    if n[0] == 3:
        Path({str(marker)!r}).touch()
        time.sleep(60)
SampleWriter.write = slow
import_file(path=Path({str(PCLUE)!r}), options=ImportOptions(mapping=Mapping(prompt=["input"], answer="target",
            task_l1="type"), name="killed"), owner_id={owner.id}, enqueue_index=False)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
    try:
        deadline = time.time() + 60
        while not marker.exists():
            assert proc.poll() is None and time.time() < deadline, "the import did not reach its third batch"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    for model in (Dataset, DatasetVersion, Sample, SampleTag):
        assert _count(engine, model) == 0
    m = Mapping(prompt=["input"], answer="target", task_l1="type")
    res = import_file(path=PCLUE, options=ImportOptions(mapping=m, name="after"), owner_id=owner.id)
    assert res.status == "succeeded" and _count(engine, Sample) == 705


def _sample_rows(engine) -> list[tuple]:
    with engine.connect() as c:
        cols = "line_no, messages, prompt, answer, reference, task_l1, task_l2, tags, has_system, n_turns"
        return [tuple(r) for r in c.exec_driver_sql(f"SELECT {cols} FROM sample ORDER BY id")]


@pytest.mark.parametrize("policy", ["valid", "all"])
def test_parsing_process_gives_the_same_import(settings, engine, make_user, monkeypatch, indexed, policy):
    """Large files are parsed in a second process: same rows, tags, counts and report as in-process."""
    owner = make_user().id
    m = Mapping(prompt=["question"], answer="std_answer", task_l1="class", extra_tags=["belle"])
    results, rows = [], []
    for min_bytes in (importer.PARSE_PROCESS_MIN_BYTES, 0):
        monkeypatch.setattr(importer, "PARSE_PROCESS_MIN_BYTES", min_bytes)
        res = import_file(
            path=BELLE_EVAL,
            options=ImportOptions(mapping=m, name=f"b{min_bytes}", policy=policy),
            owner_id=owner,
            filename=BELLE_EVAL.name,
        )
        results.append(res)
        rows.append(_sample_rows(engine))
        with engine.begin() as c:  # the next import must start from an empty store for the comparison
            c.exec_driver_sql("DELETE FROM sampletag")
            c.exec_driver_sql("DELETE FROM sample")
    inline, child = results
    assert (child.status, child.n_ok, child.n_bad) == (inline.status, inline.n_ok, inline.n_bad)
    for key in ("by_reason", "issues", "task_normalised", "task_counts", "n_records"):
        assert child.report[key] == inline.report[key], key
    assert rows[1] == rows[0] and (policy == "all") == (rows[0] == [])
