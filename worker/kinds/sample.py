"""The `sample` job kind: a SamplingJob's sampling program as a subprocess, its answers into Generation.

The contract with the program (trainer/sample.py): `<python> -m trainer.sample
--spec spec.json`, with `.venv-vllm`'s interpreter for the vllm backend (vLLM pins its own torch) and this
worker's for transformers. settings.sampling_module names the module, so tests run a fake that follows the
same contract. The job directory holds prompts.jsonl (written once, so a resume sees the same prompts),
spec.json (rewritten per attempt with the prompts already answered n times as skip_ids), sample.log and
the program's generations.jsonl, which it appends to.

Each generation event becomes one Generation row: the tailer stores each line once, and a prompt the
program answered again after a kill (it had only some of its n answers) keeps the answers stored first.
Success is exit code 0 *and* a `done` event.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text, update
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from app.datasets.tasks import task_key
from app.models import DatasetVersion, Generation, Job, JobEvent, JobStatus, SamplingBackend, SamplingJob
from app.sampling.prompts import select_ids, write_prompts
from app.sampling.request import Filter
from app.sampling.results import answered_prompt_ids
from worker.kinds import register
from worker.runner import Command, Context, JobFailed, JobKindSpec, Outcome, failure_reason
from worker.tailer import Line, as_float
from worker.train_command import REPO

PROMPTS = "prompts.jsonl"
SPEC = "spec.json"
OUTPUT = "generations.jsonl"
_TEXT_FIELDS = ("prompt_text", "text", "finish_reason")


def generation_row(sampling_id: int, event: dict[str, Any]) -> dict[str, Any] | None:
    """A Generation row from a generation event; None when the event breaks the contract."""
    prompt_id = event.get("id")
    index = event.get("index")
    if not isinstance(prompt_id, str) or not prompt_id.isdigit() or not isinstance(index, int) or index < 0:
        return None
    if not all(isinstance(event.get(k, ""), str) for k in _TEXT_FIELDS):
        return None
    return {
        "sampling_job_id": sampling_id,
        "sample_id": int(prompt_id),
        "prompt_id": prompt_id,
        "index": index,
        "task_type": "",
        "prompt_text": event.get("prompt_text", ""),
        "text": event.get("text", ""),
        "tokens": int(as_float(event.get("tokens"))),
        "prompt_tokens": int(as_float(event.get("prompt_tokens"))),
        "finish_reason": event.get("finish_reason", "")[:20],
        "ttft_s": as_float(event.get("ttft_s")),
        "tpot_s": as_float(event.get("tpot_s")),
        "time_s": as_float(event.get("time_s")),
    }


def _insert_ignoring_duplicates(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert the rows, skipping any (job, prompt, index) already stored; returns the new rows' tokens."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect_insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        dialect_insert(Generation)
        .on_conflict_do_nothing(index_elements=["sampling_job_id", "prompt_id", "index"])
        .returning(col(Generation.tokens))
    )
    return sum(r[0] for r in conn.execute(stmt, rows))


class SampleSink:
    """generations.jsonl lines: generation events into Generation, every other line into JobEvent (whose
    unique seq catches a second writer); progress events move the job's progress, in prompts."""

    def __init__(self, sampling_id: int, job_id: int):
        self.sampling_id, self.job_id = sampling_id, job_id

    def sync(self, conn: Connection) -> None:
        return None

    def _task_types(self, conn: Connection, sample_ids: set[int]) -> dict[int, str]:
        if not sample_ids:
            return {}
        params = {f"i{k}": sid for k, sid in enumerate(sorted(sample_ids))}
        sql = text(
            f"SELECT id, task_l1, task_l2 FROM sample WHERE id IN ({', '.join(':' + k for k in params)})"
        )
        return {r[0]: task_key(r[1], r[2]) for r in conn.execute(sql, params)}

    def store(self, conn: Connection, lines: list[Line]) -> None:
        events, gens = [], []
        for ln in lines:
            row = generation_row(self.sampling_id, ln.event) if ln.type == "generation" and ln.event else None
            if row is not None:
                gens.append(row)
            else:
                kind = ln.type if ln.type != "generation" else "invalid"
                events.append({"job_id": self.job_id, "seq": ln.seq, "type": kind, "data": ln.text})
        if events:
            conn.execute(insert(JobEvent), events)
        tokens = 0
        if gens:
            tasks = self._task_types(conn, {g["sample_id"] for g in gens})
            for g in gens:
                g["task_type"] = tasks.get(g["sample_id"], "")
            tokens = _insert_ignoring_duplicates(conn, gens)
        values: dict[str, Any] = {}
        for ln in lines:
            if ln.event is not None and ln.type == "start":
                values["backend_version"] = str(ln.event.get("backend_version", ""))[:100]
        if tokens or values:
            conn.execute(
                update(SamplingJob)
                .where(col(SamplingJob.id) == self.sampling_id)
                .values(tokens=col(SamplingJob.tokens) + tokens, **values)
            )
        progress = [ln.event for ln in lines if ln.event is not None and ln.type == "progress"]
        if progress:
            last = progress[-1]
            job_values = {"progress_done": as_float(last.get("done"))}
            if as_float(last.get("total")) > 0:
                job_values["progress_total"] = as_float(last.get("total"))
            conn.execute(update(Job).where(col(Job.id) == self.job_id).values(**job_values))


def _sampling(ctx: Context) -> SamplingJob:
    with Session(ctx.engine) as session:
        found = session.exec(select(SamplingJob).where(col(SamplingJob.job_id) == ctx.job_id)).first()
    if found is None:
        raise JobFailed(f"job {ctx.job_id} has no sampling request")
    return found


def interpreter(backend: str, vllm_python: Path) -> str:
    """The Python that runs the program: vLLM lives in its own environment."""
    if backend != SamplingBackend.vllm:
        return sys.executable
    if not vllm_python.is_file():
        raise JobFailed(
            f"the vllm backend needs its environment at {vllm_python} (settings.vllm_python); "
            "create it, or sample with the transformers backend"
        )
    return str(vllm_python)


class Sample(JobKindSpec):
    kind = "sample"
    log_name = "sample.log"
    events_name = OUTPUT

    def prepare(self, ctx: Context) -> Command:
        sampling = _sampling(ctx)
        python = interpreter(sampling.backend, ctx.settings.vllm_python)
        stored = json.loads(sampling.params_json)
        with Session(ctx.engine) as session:
            version = session.get_one(DatasetVersion, sampling.dataset_version_id)
            prompts = ctx.root / PROMPTS
            ids = (
                []
                if prompts.is_file()
                else select_ids(
                    session,
                    dataset_id=version.dataset_id,
                    version=version.number,
                    flt=Filter(**json.loads(sampling.filter_json)),
                )
            )
            skip = answered_prompt_ids(session, sampling.id or 0, int(stored["params"].get("n", 1)))
        count = write_prompts(ctx.engine, ids=ids, mode=sampling.mode, path=prompts)
        ctx.progress(len(skip), count)
        spec = {
            "backend": sampling.backend,
            "model_dir": sampling.model_dir,
            "mode": sampling.mode,
            "prompts_file": PROMPTS,
            "chat_template_file": stored.get("chat_template_file", ""),
            "system_prompt": stored.get("system_prompt"),
            "params": stored["params"],
            "skip_ids": skip,
            "max_model_len": stored.get("max_model_len", 2048),
            "dtype": "float32",
            "output": OUTPUT,
        }
        spec_path = ctx.root / SPEC
        spec_path.write_text(json.dumps(spec, ensure_ascii=False, indent=1), encoding="utf-8")
        argv = [python, "-m", ctx.settings.sampling_module, "--spec", str(spec_path)]
        # The program must not see the worker's own packages under vLLM's interpreter: the repo only.
        env = {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        return Command(argv, {**base, **env}, cwd=str(ctx.root), marker=str(spec_path))

    def sink(self, ctx: Context) -> SampleSink:
        return SampleSink(_sampling(ctx).id or 0, ctx.job_id)

    def outcome(self, ctx: Context, rc: int, tail: str) -> Outcome:
        with Session(ctx.engine) as session:
            rows = session.exec(
                select(JobEvent.type, JobEvent.data)
                .where(
                    col(JobEvent.job_id) == ctx.job_id,
                    col(JobEvent.type).in_(["done", "error"]),
                    # This attempt's lines only: an earlier attempt's error is not this one's reason.
                    col(JobEvent.seq) >= ctx.job.events_seq,
                )
                .order_by(col(JobEvent.seq))
            ).all()
        done = any(kind == "done" for kind, _ in rows)
        errors = [json.loads(data).get("message", "") for kind, data in rows if kind == "error"]
        if rc == 0 and done:
            return Outcome(JobStatus.succeeded)
        return Outcome(
            JobStatus.failed,
            failure_reason(rc, str(errors[-1]) if errors else "", tail, program="the sampling program"),
        )


register(Sample())
