"""Sampling storage benchmark: storing a sampling program's answers, and reading them back (the backends
themselves are measured by bench/sampling.py).

    .venv/bin/python bench/sampling_store.py             # about half a minute
    .venv/bin/python bench/sampling_store.py --n 2       # a quick run

On a fresh SQLite data dir in a temp dir, pCLUE (705 samples) is imported and a sampling job of all its
prompts created; a generations.jsonl of 705 x n generation events (answers of ~300 characters, progress
events between prompts) is written as the sampling program writes it, then stored through the tailer
(worker.tailer.Tailer) with the kind's sink (Generation rows, task_type looked up, duplicates ignored).
Baseline, in the same run: the same file stored as plain JobEvent rows (JobEventSink), which is what the
sink adds its work to. Printed: lines per second for both and their ratio; then the results page's query
(app.sampling.results.page, first page and a filtered one) and the JSONL export of every answer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PCLUE = ROOT.parent / "shared" / "data" / "pclue_train_9.jsonl"


def setup(tmp: Path) -> None:
    data = tmp / "data"
    data.mkdir()
    (tmp / "embedded").mkdir()
    (tmp / "embedded" / "config.json").write_text("{}")
    os.environ.update(
        SFTLAB_DATA_DIR=str(data),
        SFTLAB_DATABASE_URL=f"sqlite:///{data / 'sftlab.db'}",
        SFTLAB_SECRET_KEY="bench-secret",
        SFTLAB_REAPER_INTERVAL="0",
        SFTLAB_MODEL_DIR=str(tmp / "embedded"),
    )
    from app.cli import migrate

    migrate()


def write_events(path: Path, prompt_ids: list[str], n: int) -> int:
    lines = [
        json.dumps(
            {"type": "start", "backend": "vllm", "backend_version": "bench", "prompts": len(prompt_ids)}
        )
    ]
    for done, pid in enumerate(prompt_ids, 1):
        for k in range(n):
            text = f"答案 {pid}.{k} " + "这是一个比较长的回答。" * 30
            lines.append(json.dumps({"type": "generation", "id": pid, "index": k, "prompt_text": "<|im_start|>user\n问题",
                                     "prompt_tokens": 40, "text": text, "tokens": 150, "finish_reason": "stop" if k else "length",
                                     "ttft_s": 0.05, "tpot_s": 0.01, "time_s": 1.5}, ensure_ascii=False))  # fmt: skip
        lines.append(
            json.dumps({"type": "progress", "done": done, "total": len(prompt_ids), "tokens": done * n * 150})
        )
    lines.append(json.dumps({"type": "done"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def store(engine, job_id: int, path: Path, sink) -> float:  # noqa: ANN001
    from worker.tailer import Tailer

    tailer = Tailer(engine, job_id, path, sink)
    start = time.perf_counter()
    while tailer.poll():
        pass
    return time.perf_counter() - start


def timed(fn, reps: int) -> tuple[float, float]:  # noqa: ANN001
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times[0] * 1000, statistics.median(times) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=8, help="answers per prompt")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sftlab-bench-sampling-"))
    setup(tmp)
    from sqlmodel import Session

    import app.datasets.jobs as dataset_jobs
    from app.cli import create_user
    from app.core.config import get_settings
    from app.core.db import get_engine
    from app.datasets.import_options import ImportOptions
    from app.datasets.importer import import_file
    from app.datasets.mapping import Mapping
    from app.jobs.lifecycle import new_job
    from app.models import Role
    from app.sampling import results
    from app.sampling.launch import launch
    from app.sampling.request import parse_request
    from worker.kinds.sample import SampleSink
    from worker.tailer import JobEventSink

    dataset_jobs.enqueue_index = lambda *_: None  # no worker here; the bench needs no search index
    import app.jobs.queue as queue

    queue.send = lambda job, **_: "bench"  # nothing to send to
    user = create_user(username="bench", password="bench password 1", role=Role.researcher)
    res = import_file(path=PCLUE, options=ImportOptions(mapping=Mapping(prompt=["input"], answer="target", task_l1="type"),
                      name="pclue"), owner_id=user.id, filename=PCLUE.name)  # fmt: skip
    engine = get_engine()
    with Session(engine, expire_on_commit=False) as session:
        sj = launch(session, req=parse_request({"model": "embedded", "dataset_id": res.dataset_id, "version": 1,
                                                "params": {"n": args.n}}), owner_id=user.id, settings=get_settings())  # fmt: skip
        from app.sampling.prompts import Filter, select_ids

        ids = [str(i) for i in select_ids(session, dataset_id=res.dataset_id, version=1, flt=Filter())]
        baseline_job = new_job(session, kind="bench", owner_id=user.id)
        session.commit()
        baseline_id = baseline_job.id
    path = tmp / "generations.jsonl"
    n_lines = write_events(path, ids, args.n)
    size = path.stat().st_size / 2**20
    base_s = store(engine, baseline_id, path, JobEventSink(baseline_id))
    sink_s = store(engine, sj.job_id, path, SampleSink(sj.id, sj.job_id))
    print(
        f"settings: {os.cpu_count()} CPUs; SQLite in {tmp}; {len(ids)} prompts x n={args.n}: {n_lines:,} lines ({size:.1f} MiB)"
    )
    print(f"store as JobEvent rows (baseline): {base_s:.2f} s, {n_lines / base_s:,.0f} lines/s")
    print(
        f"store through the sample sink:     {sink_s:.2f} s, {n_lines / sink_s:,.0f} lines/s  (x{sink_s / base_s:.2f} the baseline's time)"
    )
    with Session(engine) as session:
        stored = len(results.export_jsonl(engine, sj.id).__next__().splitlines())
        first, p50 = timed(lambda: results.page(session, sj.id, flt=results.GenerationFilter()), args.reps)
        print(f"results page query (20 prompts x {args.n} answers): first {first:.1f} ms, p50 {p50:.1f} ms")
        flt = results.GenerationFilter(task_type="generate", finish_reason="length")
        first, p50 = timed(lambda: results.page(session, sj.id, flt=flt), args.reps)
        print(f"results page query, task_type + finish_reason: first {first:.1f} ms, p50 {p50:.1f} ms")
        q = results.GenerationFilter(q="答案 700.")
        first, p50 = timed(lambda: results.page(session, sj.id, flt=q), args.reps)
        print(f"results page query, substring of the answers: first {first:.1f} ms, p50 {p50:.1f} ms")
    start = time.perf_counter()
    exported = sum(chunk.count(b"\n") for chunk in results.export_jsonl(engine, sj.id))
    print(
        f"JSONL export: {exported:,} answers in {time.perf_counter() - start:.2f} s (first batch {stored} lines)"
    )
    return 0 if exported == len(ids) * args.n else 1


if __name__ == "__main__":
    sys.exit(main())
