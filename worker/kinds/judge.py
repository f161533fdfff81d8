"""The `judge` job kind: a judge configuration rates every case of a rating task (app.judging).

An endpoint judge runs in the worker: case by case, its prompts go through app.judge.client (retries on
429 and 5xx there), the replies are parsed and stored, and progress moves one case at a time, which is
also where a cancel is seen. A local judge is the sampling program (trainer/sample.py, run as the
`sample` kind runs it) over a prompts.jsonl of judge prompts, one line per case and order, id
"<case id>-<order>": chat mode sends the judge prompt as the user message, continuation mode the prompt
text as it is. When the program stops (done, failed or cancelled), every complete reply pair in its
output is stored; the output is appended to across attempts, so the latest reply of a case wins and a
case rated already is never rated twice. Either way a resume skips the cases the judge has rated.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx
from sqlmodel import Session, col, select

from app.judge.client import Endpoint, EndpointError, chat
from app.judge.keys import EndpointKeyError, decrypt_key
from app.judging.cases import CasePrompt, case_prompts
from app.judging.record import judged_case_ids, read_replies, store
from app.models import (
    JobStatus,
    JudgeConfig,
    JudgeJob,
    JudgeKind,
    RatingCase,
    RatingMode,
    RatingTask,
    SamplingMode,
)
from worker.kinds import register
from worker.kinds.sample import interpreter
from worker.runner import Command, Context, JobFailed, JobKindSpec, Outcome, failure_reason
from worker.tailer import JobEventSink, as_float
from worker.train_command import REPO

PROMPTS = "prompts.jsonl"
SPEC = "spec.json"
OUTPUT = "generations.jsonl"


class _Loaded:
    """The job's rows, read once per attempt."""

    def __init__(self, ctx: Context):
        with Session(ctx.engine, expire_on_commit=False) as session:
            jj = session.exec(select(JudgeJob).where(col(JudgeJob.job_id) == ctx.job_id)).first()
            if jj is None:
                raise JobFailed(f"job {ctx.job_id} has no judge request")
            self.judge_job = jj
            self.config = session.get_one(JudgeConfig, jj.config_id)
            self.task = session.get_one(RatingTask, jj.task_id)
            self.cases = list(
                session.exec(
                    select(RatingCase).where(RatingCase.task_id == jj.task_id).order_by(col(RatingCase.id))
                )
            )
            self.judged = judged_case_ids(session, config=self.config, task=self.task)

    @property
    def todo(self) -> list[RatingCase]:
        return [c for c in self.cases if c.id not in self.judged]


def _endpoint(ctx: Context, config: JudgeConfig) -> Endpoint:
    try:
        key = decrypt_key(config.key_token, secret_key=ctx.settings.secret_key) if config.key_token else ""
        return Endpoint(
            config.base_url, config.model, key, temperature=config.temperature, max_tokens=config.max_tokens
        )
    except (EndpointKeyError, EndpointError) as exc:
        raise JobFailed(str(exc)) from None


def _record(
    ctx: Context, data: _Loaded, case: RatingCase, prompts: list[CasePrompt], replies: dict[str, str]
) -> bool:
    with Session(ctx.engine) as session:
        result = store(
            session,
            job=data.judge_job,
            config=data.config,
            task=data.task,
            case=case,
            prompts=prompts,
            verdict=read_replies(prompts, replies),
        )
        return result is not None and result.outcome == "ok"


class JudgeSink(JobEventSink):
    """The program's lines into JobEvent; its progress, counted in prompts, moves the job's in cases."""

    def __init__(self, job_id: int, *, judged: int, per_case: int):
        super().__init__(job_id)
        self.judged, self.per_case = judged, per_case

    def progress_values(self, last: dict) -> dict[str, float]:
        return {"progress_done": self.judged + as_float(last.get("done")) // self.per_case}


class Judge(JobKindSpec):
    kind = "judge"
    log_name = "judge.log"
    events_name = OUTPUT

    def prepare(self, ctx: Context) -> Command | None:
        data = _Loaded(ctx)
        ctx.progress(len(data.judged), len(data.cases))
        if data.config.kind != JudgeKind.local.value:
            return None
        params = json.loads(ctx.job.params_json or "{}")
        backend = params.get("backend", "transformers")
        python = interpreter(backend, ctx.settings.vllm_python)
        chat_mode = data.config.mode == SamplingMode.chat.value
        with Session(ctx.engine) as session, open(ctx.root / PROMPTS, "w", encoding="utf-8") as fh:
            for case in data.todo:
                for item in case_prompts(session, config=data.config, task=data.task, case=case):
                    text = item.prompt.text
                    body = {"messages": [{"role": "user", "content": text}]} if chat_mode else {"text": text}
                    fh.write(json.dumps({"id": f"{case.id}-{item.order}", **body}, ensure_ascii=False) + "\n")
        spec = {
            "backend": backend,
            "model_dir": params["model_dir"],
            "mode": data.config.mode,
            "prompts_file": PROMPTS,
            "chat_template_file": "",
            "system_prompt": None,
            "params": {
                "temperature": data.config.temperature,
                "top_p": 1.0,
                "top_k": -1,
                "max_new_tokens": data.config.max_tokens,
                "n": 1,
                "seed": 0,
                "stop": [],
            },
            "skip_ids": [],
            "max_model_len": int(params.get("max_model_len", 8192)),
            "dtype": "float32",
            "output": OUTPUT,
        }
        spec_path = ctx.root / SPEC
        spec_path.write_text(json.dumps(spec, ensure_ascii=False, indent=1), encoding="utf-8")
        argv = [python, "-m", ctx.settings.sampling_module, "--spec", str(spec_path)]
        base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        return Command(
            argv,
            {**base, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
            cwd=str(ctx.root),
            marker=str(spec_path),
        )

    def run(self, ctx: Context) -> dict[str, Any] | None:
        """The endpoint judge: each case not yet rated, its prompts asked in order, stored as it is read."""
        data = _Loaded(ctx)
        endpoint = _endpoint(ctx, data.config)
        rated = failed = 0

        def sleep(seconds: float) -> None:  # a retry's wait, still heeding a cancel
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                ctx.check()
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

        done = len(data.judged)
        with httpx.Client() as http:
            for case in data.todo:
                ctx.check()
                with Session(ctx.engine) as session:
                    prompts = case_prompts(session, config=data.config, task=data.task, case=case)
                replies: dict[str, str] = {}
                for item in prompts:
                    try:
                        reply = chat(
                            endpoint,
                            [{"role": "user", "content": item.prompt.text}],
                            client=http,
                            sleep=sleep,
                        )
                    except EndpointError as exc:
                        raise JobFailed(f"case {case.id}: {exc}") from None
                    replies[item.order] = reply.text
                if _record(ctx, data, case, prompts, replies):
                    rated += 1
                else:
                    failed += 1
                done += 1
                ctx.progress(done)
        return {"rated": rated, "failed": failed}

    def sink(self, ctx: Context) -> JudgeSink:
        data = _Loaded(ctx)
        per_case = 2 if data.task.mode == RatingMode.pairwise.value else 1
        return JudgeSink(ctx.job_id, judged=len(data.judged), per_case=per_case)

    def outcome(self, ctx: Context, rc: int, tail: str) -> Outcome:
        """Store every complete reply pair of the output, then: exit 0 with a done event, or the reason."""
        data = _Loaded(ctx)
        replies: dict[int, dict[str, str]] = {}
        done = False
        errors: list[str] = []
        path = ctx.root / OUTPUT
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []
        for seq, raw in enumerate(lines):
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            kind = event.get("type") if isinstance(event, dict) else None
            if seq >= ctx.job.events_seq and kind == "done":
                done = True
            if seq >= ctx.job.events_seq and kind == "error":
                errors.append(str(event.get("message", "")))
            pid = event.get("id") if kind == "generation" else None
            head, _, order = str(pid).partition("-")
            if head.isdigit() and isinstance(event.get("text"), str):
                replies.setdefault(int(head), {})[order] = event["text"]
        by_id = {c.id: c for c in data.todo}
        with Session(ctx.engine) as session:
            for case_id, got in replies.items():
                case = by_id.get(case_id)
                if case is None:
                    continue
                prompts = case_prompts(session, config=data.config, task=data.task, case=case)
                if all(p.order in got for p in prompts):
                    _record(ctx, data, case, prompts, got)
        if rc == 0 and done:
            return Outcome(JobStatus.succeeded)
        return Outcome(
            JobStatus.failed,
            failure_reason(rc, errors[-1] if errors else "", tail, program="the judge model"),
        )


register(Judge())
