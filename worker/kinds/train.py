"""The `train` job kind: a Run's trainer as a subprocess, its metrics.jsonl into RunEvent.

The run directory (settings.runs_dir / run id) holds train.jsonl and eval.jsonl (the dataset versions
exported in the trainer's messages format, once: a resumed run must see the same bytes), run.json (the
config the trainer gets, which every process of the run names on its command line), train.log, and the
trainer's own metrics.jsonl, config.json, data_samples.jsonl and checkpoints/.

Success is exit code 0 *and* a `done` event: a trainer that exits 0 without finishing did not succeed.

A GPU run on one host waits, heartbeating and cancellable, until the host's allocator (worker.devices)
gives it n_gpus devices that no other run holds, with its stage saying so ("waiting for 2 GPUs (1 free)");
a host with fewer GPUs than asked fails the run at once, as waiting could never end. A multi-node run
checks its hostfile here, on the worker, whose view of the path is the one the launcher uses.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.models import Job, JobStatus, Run, RunDataset, RunEvent
from app.runs import curves, series, series_store
from app.runs.hostfile import HostfileError, check_nodes, read_hostfile
from app.runs.rundir import EVAL_FILE, LOG_FILE, METRICS_FILE, RUN_JSON, TRAIN_FILE, export_versions
from app.runs.series_store import REFRESH_EVERY
from worker.devices import allocator, worker_gpus
from worker.kinds import register
from worker.processes import free_port
from worker.runner import Command, Context, JobFailed, JobKindSpec, Outcome, failure_reason
from worker.tailer import Line, Tailer, as_float
from worker.train_command import build_command

log = logging.getLogger(__name__)


class RunSink:
    """metrics.jsonl lines into RunEvent; the run's step and total steps become its job's progress, and
    the overall channel's last train loss its final loss.

    It also keeps the run's series file (app.runs.series_store) current: every REFRESH_EVERY chart
    events, at the run's end, and after a resync, so that a web process's first load of the run's
    charts parses at most that many events instead of all of them.
    """

    def __init__(self, run_id: int, job_id: int):
        self.run_id, self.job_id = run_id, job_id
        self.step = 0
        self.total_steps = 0
        self.final_loss: float | None = None
        self.run_dir: str | None = None
        self.key: list = []
        self.unsaved = REFRESH_EVERY  # chart events stored since the file was last brought up to date

    def sync(self, conn: Connection) -> None:
        row = conn.execute(
            select(col(Job.progress_done), col(Job.progress_total), col(Run.final_loss), col(Run.run_dir))
            .join(Run, col(Run.job_id) == col(Job.id))
            .where(col(Job.id) == self.job_id)
        ).one()
        self.step, self.total_steps, self.final_loss = int(row[0]), int(row[1]), row[2]
        created_at = conn.execute(select(col(Job.created_at)).where(col(Job.id) == self.job_id)).scalar_one()
        self.run_dir, self.key = row[3], series_store.key_of(self.run_id, created_at)
        self.unsaved = REFRESH_EVERY  # a crashed tailer may have left the file behind

    def store(self, conn: Connection, lines: list[Line]) -> None:
        rows = []
        step, total, final = self.step, self.total_steps, self.final_loss
        for ln in lines:
            event = ln.event
            if event is None:
                # Kept with its seq so line indexes stay aligned with the file.
                rows.append(_row(self.run_id, ln.seq, "invalid", 0, 0.0, ln.text))
                continue
            kind = ln.type
            rows.append(
                _row(self.run_id, ln.seq, kind, curves.step_of(event), as_float(event.get("time")), ln.text)
            )
            if kind == "start":
                total = int(as_float(event.get("total_steps"))) or total
            step = curves.next_step(step, event)
            if (loss := curves.final_loss(event)) is not None:
                final = loss
        conn.execute(insert(RunEvent), rows)
        conn.execute(
            update(Job).where(col(Job.id) == self.job_id).values(progress_done=step, progress_total=total)
        )
        conn.execute(update(Run).where(col(Run.id) == self.run_id).values(final_loss=final))
        self.step, self.total_steps, self.final_loss = step, total, final
        self.unsaved += sum(1 for ln in lines if ln.type in curves.CHART_TYPES)
        if self.unsaved >= REFRESH_EVERY or any(ln.type in ("done", "error") for ln in lines):
            self.keep_series(conn, events_seq=lines[-1].seq + 1)

    def keep_series(self, conn: Connection, *, events_seq: int) -> None:
        """Bring the run's series file up to the events stored so far, this batch included.

        Inside the tailer's transaction: should it roll back, the file covers seqs not stored yet,
        which readers ignore until they are (stored again from the same lines, so it stays right).
        """
        try:
            with Session(bind=conn) as session:
                series.catch_up(
                    session,
                    run_id=self.run_id,
                    key=self.key,
                    run_dir=self.run_dir,
                    events_seq=events_seq,
                    save_after=1,
                )
        except Exception:  # noqa: BLE001 - the file is a cache: losing it must never stop events being stored
            log.exception("run %s: series file not kept", self.run_id)
        self.unsaved = 0


def _row(run_id: int, seq: int, kind: str, step: int, time: float, data: str) -> dict[str, Any]:
    return {"run_id": run_id, "seq": seq, "type": kind, "step": step, "time": time, "data": data}


def _export(engine: Engine, versions: list[tuple[int, int]], out: Path, tick: Callable[[], None]) -> None:
    # Written beside and renamed into place: a worker killed mid-export never leaves a file that a
    # resumed run would take for complete data.
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        for chunk in export_versions(engine, versions):
            fh.write(chunk)
            tick()
    os.replace(tmp, out)


def prepare_run_dir(
    run: Run,
    *,
    engine: Engine,
    train: list[tuple[int, int]],
    eval_version: tuple[int, int] | None,
    tick: Callable[[], None] = lambda: None,
) -> Path:
    """Create the run directory, export the data (once), write run.json, and mend metrics.jsonl.

    `tick` is called between export batches so the caller can keep heartbeating through a long export.
    """
    root = Path(run.run_dir)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / TRAIN_FILE).is_file():
        _export(engine, train, root / TRAIN_FILE, tick)
    if eval_version is not None and not (root / EVAL_FILE).is_file():
        _export(engine, [eval_version], root / EVAL_FILE, tick)
    (root / RUN_JSON).write_text(run.config_json, encoding="utf-8")
    repair_metrics(root / METRICS_FILE)
    return root


def repair_metrics(path: Path) -> None:
    """Cut a partial last line left by a killed trainer, so a resumed trainer's first event starts a new line.

    The tailer never stores a line without its newline, so nothing stored is lost.
    """
    if not path.is_file():
        return
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        pos = size
        while pos > 0:
            step = min(65536, pos)
            fh.seek(pos - step)
            block = fh.read(step)
            nl = block.rfind(b"\n")
            if nl >= 0:
                fh.truncate(pos - step + nl + 1)
                return
            pos -= step
        fh.truncate(0)


def run_of(engine: Engine, job_id: int) -> Run:
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(select(Run).where(col(Run.job_id) == job_id)).one()


def run_tailer(engine: Engine, run_id: int, path: str | Path, *, task_id: str | None = None) -> Tailer:
    """The tailer of a run's metrics.jsonl, as the executor runs it (tests and the bench drive it directly)."""
    with Session(engine) as session:
        job_id = session.get_one(Run, run_id).job_id
    return Tailer(engine, job_id, path, RunSink(run_id, job_id), task_id=task_id)


def execute_run(run_id: int, *, task_id: str = "") -> bool:
    """Run a queued run's job to its end in this process (what `jobs.run` does for it)."""
    from app.core.db import get_engine
    from worker.runner import execute

    with Session(get_engine()) as session:
        job_id = session.get_one(Run, run_id).job_id
    return execute(job_id, task_id=task_id)


def _set_stage(ctx: Context, text: str) -> None:
    # Not ctx.progress: that resets progress_done, which a resumed run's tailer reads back as its step.
    with ctx.engine.begin() as conn:
        conn.execute(update(Job).where(*ctx.execution.mine()).values(stage=text[:100]))


def _job_holds(engine: Engine, job_id: int) -> bool:
    """Whether a job may still be on its GPUs: running, or lost while its executor (alive, since the
    allocator checks that first) may yet take it back."""
    with engine.connect() as conn:
        status = conn.execute(select(col(Job.status)).where(col(Job.id) == job_id)).scalar_one_or_none()
    return status in (JobStatus.running, JobStatus.lost)


def wait_for_gpus(ctx: Context, *, count: int) -> list[int]:
    """Physical ids of `count` GPUs of this host held for the job, once free; JobFailed if there never will be."""
    gpus = worker_gpus(ctx.settings)
    if len(gpus) < count:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        why = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
        raise JobFailed(
            f"the run needs {count} GPUs but worker host {socket.gethostname()} has {len(gpus)}{why}; "
            "launch it on a queue whose workers have enough"
        )
    usable = [gpu.index for gpu in gpus]
    held = allocator(ctx.settings)
    waiting = ""
    while True:
        grant = held.acquire(
            job_id=ctx.job_id, count=count, usable=usable, running=lambda j: _job_holds(ctx.engine, j)
        )
        if grant.ids:
            _set_stage(ctx, "")  # the wait, or the launch's "not reported yet" warning, is over
            log.info("job %s: GPUs %s", ctx.job_id, grant.ids)
            return grant.ids
        stage = f"waiting for {count} GPUs ({grant.free} free)"
        if stage != waiting:
            _set_stage(ctx, stage)
            waiting = stage
        until = time.monotonic() + ctx.settings.gpu_wait_interval
        while time.monotonic() < until:
            ctx.check()  # heartbeats, and raises Cancelled on cancel or shutdown
            time.sleep(min(0.5, ctx.settings.gpu_wait_interval))


def placement(ctx: Context, run: Run) -> dict[str, Any]:
    """build_command's device arguments for this run: GPU ids on this host, or the hostfile's nodes."""
    if run.n_gpus == 0:
        return {}
    if run.hostfile:
        try:
            hosts = read_hostfile(run.hostfile)
            check_nodes(hosts, num_nodes=run.num_nodes, n_gpus=run.n_gpus)
        except HostfileError as exc:
            raise JobFailed(str(exc)) from None
        return {"hostfile": run.hostfile, "num_nodes": run.num_nodes, "master_addr": hosts[0].name}
    return {"gpu_ids": wait_for_gpus(ctx, count=run.n_gpus)}


class Train(JobKindSpec):
    kind = "train"
    log_name = LOG_FILE
    events_name = METRICS_FILE
    shutdown_error = "the worker was shut down while training; resume from the latest checkpoint"

    def directory(self, job: Job, settings: Settings) -> Path:
        from app.core.db import get_engine

        assert job.id is not None
        return Path(run_of(get_engine(settings), job.id).run_dir)

    def prepare(self, ctx: Context) -> Command:
        run = run_of(ctx.engine, ctx.job_id)
        with Session(ctx.engine) as session:
            links = session.execute(
                select(col(RunDataset.dataset_id), col(RunDataset.version), col(RunDataset.role)).where(
                    col(RunDataset.run_id) == run.id
                )
            ).all()
        train = sorted((d, v) for d, v, role in links if role == "train")
        evals = [(d, v) for d, v, role in links if role == "eval"]
        devices = placement(ctx, run)  # first: a run that cannot start exports nothing
        root = prepare_run_dir(
            run,
            engine=ctx.engine,
            train=train,
            eval_version=evals[0] if evals else None,
            tick=ctx.execution.beat,
        )
        cmd = build_command(
            config_path=root / RUN_JSON,
            n_gpus=run.n_gpus,
            n_procs=run.n_procs,
            python=sys.executable,
            threads=ctx.settings.trainer_threads,
            master_port=free_port(),
            **devices,
        )
        return Command(cmd.argv, cmd.env, cmd.cwd, marker=str(root / RUN_JSON))

    def sink(self, ctx: Context) -> RunSink:
        run = run_of(ctx.engine, ctx.job_id)
        assert run.id is not None
        return RunSink(run.id, ctx.job_id)

    def outcome(self, ctx: Context, rc: int, tail: str) -> Outcome:
        run = run_of(ctx.engine, ctx.job_id)
        if run.n_gpus > 0 and not run.hostfile:
            allocator(ctx.settings).release(ctx.job_id)
        with ctx.engine.connect() as conn:
            kinds = dict(
                conn.execute(
                    select(col(RunEvent.type), col(RunEvent.data))
                    .where(col(RunEvent.run_id) == run.id, col(RunEvent.type).in_(["done", "error"]))
                    .order_by(col(RunEvent.seq))
                ).all()
            )
        if rc == 0 and "done" in kinds:
            return Outcome(JobStatus.succeeded)
        message = str(json.loads(kinds["error"]).get("message", "")) if "error" in kinds else ""
        return Outcome(JobStatus.failed, failure_reason(rc, message, tail))


register(Train())
