"""Runs with synthetic metrics.jsonl events stored as the tailer stores them, for the run-page tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

from sqlmodel import Session

from app.models import Job, JobKind, Run, RunDataset, RunEvent, RunStatus, utcnow
from trainer.config import tiny_debug

TASKS = ("逻辑推理", "分类", "阅读理解")


def train_event(
    step: int, *, steps_per_epoch: int = 10, tasks=TASKS, t0: float = 1000.0, dt: float = 2.0
) -> dict:
    """A train event shaped like trainer.train writes it, with a wiggly loss per channel."""
    epoch = step / steps_per_epoch
    channels = {"overall": {"loss": 2.0 / (1 + 0.05 * step) + 0.1 * math.sin(step), "tokens": 100}}
    for i, task in enumerate(tasks):
        loss = 2.5 / (1 + 0.03 * step * (i + 1)) + 0.2 * math.sin(step * (i + 2))
        channels[f"l1/{task}"] = {"loss": loss, "tokens": 30}
        channels[f"l2/{task}/"] = {"loss": loss * 1.01, "tokens": 30}
    channels["special"] = {"loss": 1.0 / (1 + 0.1 * step), "tokens": 20}
    return {
        "type": "train",
        "step": step,
        "epoch": round(epoch, 6),
        "loss": channels["overall"]["loss"],
        "channels": channels,
        "lr": 1e-4 * min(1.0, step / 5),
        "grad_norm": 1.0 + 0.5 * math.cos(step),
        "tokens_per_s": 1000.0 + step,
        "supervised_tokens_per_s": 400.0 + step,
        "packing_efficiency": 0.9,
        "mfu": 0.01,
        "step_time": dt,
        "time": t0 + step * dt,
    }


def synthetic_events(
    n_steps: int, *, steps_per_epoch: int = 10, eval_every: int = 5, ckpt_every: int = 10, done: bool = True
) -> list[dict]:
    events: list[dict] = [
        {
            "type": "start",
            "config": {},
            "total_steps": n_steps,
            "world_size": 1,
            "counts_per_task": {"逻辑推理": 40, "分类": 20},
            "counts": {
                "per_task": {
                    "逻辑推理": {"read": 25, "eval": 5, "train_after_mix": 20, "train_seen": 40},
                    "分类": {"read": 12, "eval": 2, "train_after_mix": 10, "train_seen": 20},
                }
            },
            "time": 999.0,
        }
    ]
    for step in range(1, n_steps + 1):
        events.append(train_event(step, steps_per_epoch=steps_per_epoch))
        if eval_every and step % eval_every == 0:
            events.append(
                {
                    "type": "eval",
                    "step": step,
                    "loss": 1.5 / step,
                    "channels": {
                        "overall": {"loss": 1.5 / step, "tokens": 50},
                        "l1/逻辑推理": {"loss": 1.7 / step, "tokens": 20},
                    },
                }
            )
        if ckpt_every and step % ckpt_every == 0:
            events.append(
                {"type": "checkpoint", "step": step, "path": f"/runs/x/checkpoints/step-{step:08d}"}
            )
    events.append(
        {"type": "warning", "step": min(3, n_steps), "kind": "step_drop", "message": "drop <b>here</b>"}
    )
    if done:
        events.append({"type": "done", "step": n_steps})
    return events


def add_events(session: Session, run: Run, events: list[dict]) -> None:
    """Store events as the tailer does (seq = line index, raw line as data) and update the run's counters."""
    assert run.id is not None
    seq = run.job.events_seq
    rows = []
    for ev in events:
        rows.append(
            RunEvent(
                run_id=run.id,
                seq=seq,
                type=ev["type"],
                step=int(ev.get("step") or 0),
                time=float(ev.get("time") or 0.0),
                data=json.dumps(ev, ensure_ascii=False),
            )
        )
        seq += 1
        if ev["type"] == "start":
            run.job.progress_total = ev["total_steps"]
        if ev["type"] == "train":
            run.job.progress_done = ev["step"]
            run.final_loss = ev["loss"]
    session.add_all(rows)
    run.job.events_seq = seq
    session.add(run)
    session.commit()
    session.refresh(run)


def insert_run(session: Session, *, owner_id: int, name: str = "run", **fields) -> Run:
    """A Run row and its train Job, committed; each of `fields` goes to whichever of the two has it
    (status, worker, heartbeat_at, ... to the job; run_dir, config_json, ... to the run)."""
    job_fields = {k: fields.pop(k) for k in list(fields) if k in Job.model_fields}
    job = Job(kind=JobKind.train, owner_id=owner_id, title=name, progress_unit="steps", **job_fields)
    session.add(job)
    session.flush()
    fields.setdefault("form_json", "{}")
    fields.setdefault("config_json", "{}")
    run = Run(name=name, owner_id=owner_id, job_id=job.id, **fields)
    session.add(run)
    session.commit()
    session.refresh(run)
    return run


def job_of(engine, run_id: int) -> int:  # noqa: ANN001
    """The id of a run's job (what the reaper reports)."""
    with Session(engine) as session:
        return session.get_one(Run, run_id).job_id


def make_run(
    session: Session,
    owner_id: int,
    *,
    name: str = "run",
    status: RunStatus = RunStatus.succeeded,
    run_dir: Path | None = None,
    events: list[dict] | None = None,
    datasets: list[tuple[int, int, str]] = (),
    **config_changes: dict,
) -> Run:
    cfg = tiny_debug(
        train_file=str(run_dir / "train.jsonl") if run_dir else "", output_dir=str(run_dir or "")
    ).to_dict()
    for section, values in config_changes.items():
        cfg[section].update(values)
    run = insert_run(
        session,
        owner_id=owner_id,
        name=name,
        status=status,
        config_json=json.dumps(cfg),
        run_dir=str(run_dir or ""),
        started_at=utcnow(),
        finished_at=utcnow() if status not in (RunStatus.queued, RunStatus.running) else None,
    )
    for dataset_id, version, role in datasets:
        session.add(RunDataset(run_id=run.id, dataset_id=dataset_id, version=version, role=role))
    session.commit()
    if events:
        add_events(session, run, events)
    session.refresh(run)
    return run
