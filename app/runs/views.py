"""What the run page shows besides the curves: progress and ETA, data counts, config, checkpoints, log tail.

Everything here reads a handful of rows or files; no function parses the run's train events (the
charts load those separately, see app.runs.series), so the page renders in a few milliseconds
whatever the run's length. A run directory that is gone (deleted, another host) only empties the
parts read from it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from app.jobs.logs import read_tail
from app.jobs.workers import served_queues
from app.models import FINISHED, Dataset, Job, JobStatus, Run, RunDataset, RunEvent, RunStatus, User
from app.runs import problems, rundir
from trainer.layout import STEP_RE, list_checkpoints

LOG_LINES = 200
ETA_WINDOW = 20  # train events the step time is averaged over


def loads(text: str | None) -> Any:
    """JSON text or None when it is empty or broken (a page must render whatever a file holds)."""
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def as_utc(t: datetime | None) -> datetime | None:
    # SQLite hands datetimes back naive; they were stored in UTC.
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def duration_s(run: Run, now: datetime | None = None) -> float | None:
    """Seconds from start to finish (to now while running); None before it started."""
    start = as_utc(run.started_at)
    if start is None:
        return None
    end = as_utc(run.finished_at) or (None if run.status in FINISHED else (now or datetime.now(UTC)))
    return max(0.0, (end - start).total_seconds()) if end else None


def eta_s(*, step: int, total_steps: int, recent: list[tuple[int, float]]) -> float | None:
    """Seconds left, from the wall time between the recent train events (step, time), oldest first.

    None when it cannot be told yet (fewer than two events, or no step advanced between them).
    """
    if total_steps <= 0:
        return None
    if step >= total_steps:
        return 0.0
    if len(recent) < 2:
        return None
    (s0, t0), (s1, t1) = recent[0], recent[-1]
    if s1 <= s0 or t1 < t0:
        return None
    return (total_steps - step) * (t1 - t0) / (s1 - s0)


def resumed_at(session: Session, run_id: int) -> int:
    """Seq of the run's latest resume (the `checkpoint` event with resumed=True), -1 if it never resumed.

    A resume writes no new start event: only this marker, then train events from the checkpoint's
    step again. Checkpoint events are few, so all of them are read (by the (run_id, type) index).
    """
    rows = session.exec(
        select(RunEvent.seq, RunEvent.data).where(RunEvent.run_id == run_id, RunEvent.type == "checkpoint")  # type: ignore[call-overload]
    ).all()
    latest = -1
    for seq, data in rows:
        event = loads(data)
        if isinstance(event, dict) and event.get("resumed") is True:
            latest = max(latest, int(seq))
    return latest


def progress(session: Session, run: Run) -> dict:
    """Progress bar, ETA, and the status flags the page and the poller need."""
    assert run.id is not None
    query = select(RunEvent.step, RunEvent.time).where(  # type: ignore[call-overload]
        RunEvent.run_id == run.id, RunEvent.type == "train"
    )
    resumed = resumed_at(session, run.id)
    if resumed >= 0:
        # Only this attempt's events: a crashed attempt's steps and times would put the downtime in the
        # ETA. Added only when needed: with it, SQLite sorts every train row of the run (8 -> 50 ms at 100k).
        query = query.where(col(RunEvent.seq) > resumed)
    # by step, not seq: the (run_id, type, step) index answers it without reading every train row
    rows = session.exec(query.order_by(col(RunEvent.step).desc()).limit(ETA_WINDOW)).all()
    recent = [(int(s), float(t)) for s, t in reversed(rows)]
    finished = run.status in FINISHED
    return {
        "status": str(run.status),
        "finished": finished,
        "step": run.step,
        "total_steps": run.total_steps,
        "fraction": min(1.0, run.step / run.total_steps) if run.total_steps else 0.0,
        "eta_s": None if finished else eta_s(step=run.step, total_steps=run.total_steps, recent=recent),
        "duration_s": duration_s(run),
    }


def events_json(session: Session, run: Run, *, after: int, limit: int) -> bytes:
    """The events after seq `after` as the poll endpoint answers them, built without parsing them.

    The tailer stores each valid event as the exact JSON object the trainer wrote (and an unparsable
    line as type "invalid"), so each one becomes `{"seq": N, <its own fields>}` by splicing text:
    a poll of 5000 events costs a few milliseconds instead of a parse and a dump of each.
    """
    rows = session.exec(
        select(RunEvent.seq, RunEvent.type, RunEvent.data)  # type: ignore[call-overload]
        .where(RunEvent.run_id == run.id, col(RunEvent.seq) > after)
        .order_by(col(RunEvent.seq))
        .limit(limit)
    ).all()
    parts = []
    for seq, kind, data in rows:
        body = data.strip() if kind != "invalid" else ""
        if not (body.startswith("{") and body.endswith("}")):
            parts.append(f'{{"seq":{int(seq)},"type":"invalid"}}')
        elif body[1:-1].strip():
            parts.append(f'{{"seq":{int(seq)},{body[1:]}')
        else:
            parts.append(f'{{"seq":{int(seq)}}}')
    head = orjson.dumps(
        {
            "status": str(run.status),
            "step": run.step,
            "total_steps": run.total_steps,
            "last_seq": rows[-1][0] if rows else after,
        }
    )
    return head[:-1] + b',"events":[' + ",".join(parts).encode() + b"]}"


def first_event(session: Session, run_id: int, kind: str, *, last: bool = False) -> dict | None:
    """The first (or last) event of a rare type (start, error) of a run.

    Picked in Python from all rows of that type: with ORDER BY seq, SQLite walks the (run_id, seq)
    index through every event of the run, 100,000 rows on a long run, instead of the few of this type.
    """
    rows = session.exec(
        select(RunEvent.seq, RunEvent.data).where(RunEvent.run_id == run_id, RunEvent.type == kind)  # type: ignore[call-overload]
    ).all()
    if not rows:
        return None
    _, data = max(rows) if last else min(rows)
    event = loads(data)
    return event if isinstance(event, dict) else None


def stored_after(session: Session, run_id: int, kind: str, *, after: int) -> bool:
    """Whether an event of type `kind` was stored after seq `after` (the (run_id, type) index finds it)."""
    found = session.exec(
        select(RunEvent.seq)
        .where(RunEvent.run_id == run_id, RunEvent.type == kind, col(RunEvent.seq) > after)
        .limit(1)
    ).first()
    return found is not None


def section(obj: Any, key: str) -> dict:
    """obj[key] when it is a dict, else {}: stored JSON is read defensively, a page never fails on it."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def data_counts(start: dict | None) -> list[dict]:
    """Per task_type: samples read, held out for eval, after the mix, seen in training (all epochs), and
    left out of training and of eval (too long for max_seq_len, or no trained token left)."""
    if not start:
        return []
    per_task = section(section(start, "counts"), "per_task")
    seen = section(start, "counts_per_task")
    rows = []
    for name in sorted(set(per_task) | set(seen)):
        c = section(per_task, name)
        row = {
            "task_type": name,
            "read": c.get("read"),
            "eval": c.get("eval"),
            "train_after_mix": c.get("train_after_mix"),
            "train_seen": c.get("train_seen", seen.get(name)),
        }
        for key in ("dropped", "eval_dropped"):  # left out: too long, or nothing left to train on
            if key in c:
                row[key] = c[key]
        rows.append(row)
    return rows


def checkpoints(run_dir: str) -> list[dict]:
    """Complete checkpoints, oldest first (trainer.layout's rule)."""
    if not run_dir:
        return []
    out = []
    for p in list_checkpoints(run_dir):
        m = STEP_RE.match(p.name)
        out.append({"step": int(m.group(1)) if m else 0, "name": p.name, "path": str(p)})
    return out


def log_tail(run: Run, n: int = LOG_LINES) -> str:
    """The end of train.log, or the tail the worker saved when the file is gone."""
    try:
        text = read_tail(Path(run.run_dir) / rundir.LOG_FILE, n) if run.run_dir else ""
    except OSError:
        text = ""
    return text or run.job.log_tail


def deepspeed_config(run: Run) -> str:
    """The DeepSpeed config the trainer generated, pretty-printed; empty when it wrote none."""
    if not run.run_dir:
        return ""
    try:
        text = (Path(run.run_dir) / "deepspeed_config.json").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
    parsed = loads(text)
    return orjson.dumps(parsed, option=orjson.OPT_INDENT_2).decode() if parsed is not None else text


def run_datasets(session: Session, run_id: int) -> list[dict]:
    rows = session.exec(
        select(RunDataset, Dataset.name)  # type: ignore[call-overload]
        .join(Dataset, Dataset.id == RunDataset.dataset_id, isouter=True)  # type: ignore[arg-type]
        .where(RunDataset.run_id == run_id)
        .order_by(col(RunDataset.role).desc(), col(RunDataset.dataset_id))
    ).all()
    return [
        {
            "dataset_id": rd.dataset_id,
            "version": rd.version,
            "role": rd.role,
            "name": name or f"#{rd.dataset_id}",
        }
        for rd, name in rows
    ]


def run_config(run: Run) -> dict:
    cfg = loads(run.config_json)
    return cfg if isinstance(cfg, dict) else {}


def runs_ahead(session: Session, run: Run) -> int | None:
    """For a queued run: runs on its queue that a worker takes first (running ones, and queued older ones).

    Workers take a queue's tasks in the order they were sent, one per free slot, so this is what a
    researcher waiting in the evening wants to know. None when the run is not queued.
    """
    if run.status != RunStatus.queued:
        return None
    job = run.job
    ahead = session.exec(
        select(func.count())
        .select_from(Job)
        .where(
            Job.queue == job.queue,
            col(Job.id) != job.id,
            or_(
                col(Job.status) == JobStatus.running,
                and_(col(Job.status) == JobStatus.queued, col(Job.created_at) < job.created_at),
            ),
        )
    ).one()
    return int(ahead)


def error_texts(run: Run, trainer_error: str) -> dict:
    """The run's error and the trainer's, and, when the data stopped it, its problem samples: the messages
    name the first 20, the page links the CSV of all (app.runs.problems) instead of "... and N more"."""
    total = problems.count(run.run_dir)
    if not total:
        return {"run_error": run.error, "trainer_error": trainer_error, "problems": None}
    url = f"/runs/{run.id}/problems.csv"
    main = problems.listing(trainer_error or run.error, total=total, csv_url=url)
    return {
        "run_error": problems.listing(run.error, total=total, csv_url=url).text,
        "trainer_error": main.text if trainer_error else "",
        "problems": main,
    }


def page_data(session: Session, run: Run) -> dict:
    """Everything the run page template needs, except the curves."""
    assert run.id is not None
    owner = session.get(User, run.owner_id)
    config = run_config(run)
    error_event = first_event(session, run.id, "error", last=True)
    start = first_event(session, run.id, "start")
    return {
        "run": run,
        "owner": owner.username if owner else "",
        "progress": progress(session, run),
        "ahead": runs_ahead(session, run),
        "unserved": run.status == RunStatus.queued and run.queue not in served_queues(session),
        # A run cancelled while queued never got its data: no sample to show.
        "samples_ready": bool(run.run_dir) and (Path(run.run_dir) / rundir.TRAIN_FILE).is_file(),
        "counts": data_counts(start),
        # MFU is drawn only against a known peak; otherwise the page says why there is none.
        "mfu_unknown": str(start.get("peak_flops_source", ""))
        if start and not start.get("peak_flops")
        else "",
        "datasets": run_datasets(session, run.id),
        "config": config,
        "config_text": orjson.dumps(config, option=orjson.OPT_INDENT_2).decode(),
        "deepspeed": deepspeed_config(run),
        "checkpoints": checkpoints(run.run_dir),
        "log": log_tail(run),
        **error_texts(run, str(error_event.get("message") or "") if error_event else ""),
    }
