"""The generic job runner: one job from queued to finished, in this worker.

A job kind is a small spec (worker.kinds): where its directory is, the interpreter and argv of its
subprocess (or a function to run in the worker, for kinds that are database work), where its events go,
and what counts as success. This module does the rest for every kind alike:

- **Claim.** Only a queued job is started: the claim is a conditional UPDATE that records the claiming
  Celery task, so a redelivered or resent message for a running, lost or finished job does nothing, and a
  cancel racing the start has exactly one winner.
- **Fence.** Every later write is fenced on the claiming task (`WHERE id = :job AND task_id = :mine`). A job
  wrongly marked lost (a reaper with a clock ahead, a long database stall) and then resumed belongs to the
  new task: the stale executor can no longer write to it, and when it notices it kills its own subprocess,
  so two attempts never share a directory for longer than a heartbeat. A job marked lost whose executor
  and subprocess are in fact alive is moved back to running by the executor's next heartbeat.
- **Run.** The subprocess starts in its own session and dies with the worker (worker.processes); its
  stdout and stderr go to the job's log. While it runs the executor tails its events file exactly once
  (worker.tailer), heartbeats, and honours cancel: SIGTERM to the group, SIGKILL after `cancel_grace`.
- **Finish.** The exit code, the kind's success rule and the log's tail become the job's status and error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import psutil
from sqlalchemy import func, literal, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col

from app.core.config import Settings, get_settings
from app.core.db import get_engine
from app.jobs.logs import read_tail
from app.models import Job, JobStatus, utcnow
from worker.child_env import child_env
from worker.processes import die_with_parent, kill_job_processes
from worker.tailer import JobEventSink, Sink, Superseded, Tailer

log = logging.getLogger("sftlab.jobs")

DRAIN_TIMEOUT = 30.0  # seconds the final drain of the events file keeps retrying a locked database

# Set when the worker is asked to stop (Celery's worker_shutting_down): running subprocesses are stopped as
# a cancel would, instead of Celery's warm shutdown waiting hours for a run to end.
SHUTDOWN = threading.Event()


@dataclass(frozen=True)
class Command:
    """How to start a job's subprocess. `marker`: a path in argv that names this job's processes."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    marker: str


@dataclass
class Outcome:
    status: JobStatus
    error: str = ""
    result: dict[str, Any] | None = None  # stored as Job.result_json


class Cancelled(Exception):
    """Raised inside an in-process job when its cancel flag is seen."""


class JobFailed(Exception):
    """Raised by an in-process job that ended without doing its work; the message is the job's error."""


@dataclass
class Context:
    """What a kind's spec gets: the job as claimed, and ways to report progress and see cancel."""

    job: Job
    engine: Engine
    settings: Settings
    task_id: str
    root: Path
    execution: Execution = field(repr=False)

    @property
    def job_id(self) -> int:
        assert self.job.id is not None
        return self.job.id

    def progress(self, done: float, total: float | None = None, *, stage: str | None = None) -> None:
        """Record progress (fenced on this task), heartbeat when due, and raise Cancelled if asked to stop."""
        values: dict[str, Any] = {"progress_done": done}
        if total is not None:
            values["progress_total"] = total
        if stage is not None:
            values["stage"] = stage[:100]
        with self.engine.begin() as conn:
            conn.execute(update(Job).where(*self.execution.mine()).values(**values))
        self.check()

    def check(self, *, beat: bool = True) -> None:
        """Heartbeat when due; raise Cancelled when a cancel (or the worker's shutdown) was asked for.

        `beat=False` inside a long write transaction: on SQLite a heartbeat from another connection would
        wait for that transaction's lock. The in-process runner's heartbeat thread keeps the flags fresh.
        """
        if beat:
            self.execution.beat()
        if self.execution.cancel or self.execution.superseded or SHUTDOWN.is_set():
            raise Cancelled


class JobKindSpec:
    """A job kind. Subprocess kinds override `prepare` to return a Command; in-process kinds override
    `run`. The defaults: a directory under data_dir/jobs, events into JobEvent, success = exit code 0."""

    kind: ClassVar[str] = ""
    log_name: ClassVar[str] = "job.log"
    events_name: ClassVar[str | None] = "events.jsonl"
    shutdown_error: ClassVar[str] = "the worker was shut down while the job ran; launch it again"
    time_limit: ClassVar[float | None] = None  # seconds a subprocess may run before it is stopped
    uses_directory: ClassVar[bool] = True  # False: an in-process kind that writes no files

    def directory(self, job: Job, settings: Settings) -> Path:
        return (settings.data_dir / "jobs" / str(job.id)).resolve()

    def prepare(self, ctx: Context) -> Command | None:
        """Write what the subprocess needs into ctx.root and return how to start it; None: in-process."""
        return None

    def run(self, ctx: Context) -> dict[str, Any] | None:
        """An in-process job's body; its return value is stored as the job's result."""
        raise NotImplementedError(f"job kind {self.kind!r} has neither a command nor a body")

    def sink(self, ctx: Context) -> Sink:
        return JobEventSink(ctx.job_id)

    def outcome(self, ctx: Context, rc: int, tail: str) -> Outcome:
        """What an exit means; the default: 0 succeeded, else failed with the reason from code and log."""
        if rc == 0:
            return Outcome(JobStatus.succeeded)
        return Outcome(JobStatus.failed, failure_reason(rc, "", tail, program="the job"))


_TIME = Job.__table__.c.started_at.type  # type: ignore[attr-defined]  # the column's UTC datetime type


def _claim(engine: Engine, job_id: int, task_id: str) -> bool:
    now = utcnow()
    with engine.begin() as conn:
        moved = conn.execute(
            update(Job)
            .where(col(Job.id) == job_id, col(Job.status) == JobStatus.queued)
            .values(
                status=JobStatus.running,
                # A resumed run keeps its first start: its duration is the whole run's, not the last attempt's.
                started_at=func.coalesce(col(Job.started_at), literal(now, type_=_TIME)),
                heartbeat_at=now,
                worker=socket.gethostname(),
                task_id=task_id,
                pid=None,
                cancel_requested=False,
            )
        )
    return moved.rowcount == 1


class Execution:
    """One claimed job: prepare, start, watch, finish."""

    def __init__(self, job: Job, spec: JobKindSpec, settings: Settings, engine: Engine, *, task_id: str):
        assert job.id is not None
        self.job_id, self.spec, self.settings, self.engine, self.task_id = (
            job.id,
            spec,
            settings,
            engine,
            task_id,
        )
        self.root = spec.directory(job, settings)  # kept from the start: abort() must not need the database
        self.ctx = Context(job, engine, settings, task_id, self.root, self)
        self.proc: subprocess.Popen | None = None
        self.marker: str | None = None
        self.last_beat = time.monotonic()
        self.cancel = False
        self.timed_out = False
        self.superseded = False  # another task holds the job now (it was lost, then resumed)
        self._beat_lock = threading.Lock()

    def mine(self) -> tuple:
        return (col(Job.id) == self.job_id, col(Job.task_id) == self.task_id)

    def beat(self, *, force: bool = False) -> None:
        """Heartbeat (when due) and read the cancel flag and the job's holder in the same round trip."""
        with self._beat_lock:
            now = time.monotonic()
            if not force and now - self.last_beat < self.settings.heartbeat_interval:
                return
            self.last_beat = now
            with self.engine.begin() as conn:
                beat = conn.execute(
                    update(Job)
                    .where(*self.mine(), col(Job.status) == JobStatus.running)
                    .values(heartbeat_at=utcnow())
                )
                if beat.rowcount != 1 and (self.proc is None or self.proc.poll() is None):
                    # The reaper gave up on us (its clock ahead of ours, or a database stall longer than
                    # heartbeat_timeout) but this job is alive: take it back before someone resumes it.
                    back = conn.execute(
                        update(Job)
                        .where(*self.mine(), col(Job.status) == JobStatus.lost)
                        .values(status=JobStatus.running, error="", finished_at=None, heartbeat_at=utcnow())
                    )
                    if back.rowcount == 1:
                        log.warning("job %s was marked lost while it ran; running again", self.job_id)
                row = conn.execute(
                    select(col(Job.task_id), col(Job.cancel_requested)).where(col(Job.id) == self.job_id)
                ).first()
            holder, self.cancel = (row[0], bool(row[1])) if row else (None, False)  # None: deleted
            if holder != self.task_id and not self.superseded:
                log.warning("job %s is now held by task %s; task %s stops", self.job_id, holder, self.task_id)
                self.superseded = True

    # -- subprocess kinds -------------------------------------------------------------------------------

    def place(self) -> None:
        """Create the job's directory and record it and its log on the job, for its page and the reaper."""
        if not self.spec.uses_directory:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with self.engine.begin() as conn:
            conn.execute(
                update(Job)
                .where(*self.mine())
                .values(job_dir=str(self.root), log_file=str(self.root / self.spec.log_name))
            )

    def start(self, cmd: Command) -> None:
        self.marker = cmd.marker
        with open(self.root / self.spec.log_name, "ab") as log_fh:
            log_fh.write(f"$ {' '.join(cmd.argv)}\n".encode())
            log_fh.flush()
            parent = os.getpid()
            self.proc = subprocess.Popen(
                cmd.argv,
                cwd=cmd.cwd,
                env=child_env(cmd.env),  # whatever the kind passed, no secrets reach the child
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: die_with_parent(parent),
            )
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(Job).where(*self.mine()).values(pid=self.proc.pid, marker=cmd.marker[:1000])
            )
        self.superseded = self.superseded or moved.rowcount != 1

    def kill(self, sig: signal.Signals) -> None:
        """Signal this attempt's processes: its process group and descendants, and anything naming its
        marker unless another attempt (which would name the same path) holds the job now."""
        assert self.proc is not None
        marker = None if self.superseded else self.marker
        kill_job_processes(self.proc.pid, marker, sig)
        if self.proc.poll() is None:  # not reaped yet, so the pid is still ours
            with contextlib.suppress(psutil.Error):
                for p in psutil.Process(self.proc.pid).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        p.send_signal(sig)

    def watch(self) -> int:
        """Tail, heartbeat and honour cancel until the subprocess exits; returns its exit code."""
        assert self.proc is not None
        tailer = self.tailer()
        kill_at: float | None = None
        limit = self.spec.time_limit
        deadline = time.monotonic() + limit if limit else None
        while True:
            rc = self.proc.poll()
            try:
                if not self.superseded and tailer is not None:
                    tailer.poll()
                if rc is None:
                    self.beat()
            except OperationalError as exc:
                # A locked or briefly unreachable database must not end a job: the tailer resynchronises
                # and the heartbeat is retried on the next tick.
                log.warning("job %s: database error while watching: %s", self.job_id, exc)
                if tailer is not None:
                    tailer.offset = None
            except Superseded as exc:
                log.warning("%s; task %s stops its job", exc, self.task_id)
                self.superseded = True
            if rc is not None:
                break
            if self.superseded:
                # No grace: the attempt that holds the job may already be writing to the same directory.
                self.kill(signal.SIGKILL)
            elif deadline is not None and time.monotonic() >= deadline and kill_at is None:
                log.info("job %s: over its time limit; stopping process group %s", self.job_id, self.proc.pid)
                self.timed_out = True
                self.kill(signal.SIGTERM)
                kill_at = time.monotonic() + self.settings.cancel_grace
            elif (self.cancel or SHUTDOWN.is_set()) and kill_at is None:
                log.info("job %s: stopping process group %s", self.job_id, self.proc.pid)
                self.kill(signal.SIGTERM)
                kill_at = time.monotonic() + self.settings.cancel_grace
            elif kill_at is not None and time.monotonic() >= kill_at:
                self.kill(signal.SIGKILL)
            time.sleep(self.settings.tail_interval)
        # Ranks or helpers a launcher left behind must not outlive the job.
        self.kill(signal.SIGKILL)
        if not self.superseded and tailer is not None:
            try:
                drain(tailer, timeout=DRAIN_TIMEOUT, interval=self.settings.tail_interval)
            except Superseded:
                self.superseded = True
        return rc

    def tailer(self) -> Tailer | None:
        if self.spec.events_name is None:
            return None
        return Tailer(
            self.engine,
            self.job_id,
            self.root / self.spec.events_name,
            self.spec.sink(self.ctx),
            task_id=self.task_id,
        )

    def decide(self, rc: int) -> tuple[Outcome, str]:
        """The kind's verdict on an exit, unless cancel or shutdown explain a failure; and the log's tail."""
        tail = read_tail(self.root / self.spec.log_name)
        out = self.spec.outcome(self.ctx, rc, tail)
        if out.status != JobStatus.succeeded:
            if self.cancel:
                out = Outcome(JobStatus.cancelled, "cancelled on request")
            elif self.timed_out:
                out = Outcome(
                    JobStatus.failed, f"stopped after its time limit of {self.spec.time_limit:.0f} s"
                )
            elif SHUTDOWN.is_set():
                out = Outcome(JobStatus.failed, self.spec.shutdown_error)
        return out, tail

    # -- in-process kinds -------------------------------------------------------------------------------

    def run_inline(self) -> Outcome:
        """Run the kind's body here, heartbeating from a second thread so a long database step stays alive."""
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(self.settings.heartbeat_interval):
                try:
                    self.beat(force=True)
                except OperationalError as exc:
                    log.warning("job %s: heartbeat failed: %s", self.job_id, exc)

        thread = threading.Thread(target=heartbeat, name=f"sftlab-job-{self.job_id}-beat", daemon=True)
        thread.start()
        try:
            result = self.spec.run(self.ctx)
        except Cancelled:
            return self.stopped()
        except JobFailed as exc:
            return Outcome(JobStatus.failed, str(exc)[:4000])
        except Exception as exc:  # noqa: BLE001 - the job's own failure, recorded as its error
            log.exception("job %s failed", self.job_id)
            return Outcome(JobStatus.failed, f"{type(exc).__name__}: {exc}"[:4000])
        finally:
            stop.set()
            thread.join(timeout=10)
        return Outcome(JobStatus.succeeded, result=result)

    # -- both -------------------------------------------------------------------------------------------

    def stopped(self) -> Outcome:
        """The outcome of a job that stopped at a cancel check: cancelled, or failed by the shutdown."""
        if self.cancel:
            return Outcome(JobStatus.cancelled, "cancelled on request")
        return Outcome(JobStatus.failed, self.spec.shutdown_error)

    def store(self, out: Outcome, rc: int | None, tail: str) -> bool:
        """Record the outcome, fenced on this task; False when another task holds the job."""
        if self.superseded:
            log.warning(
                "job %s: task %s was superseded; its outcome is not recorded", self.job_id, self.task_id
            )
            return False
        values: dict[str, Any] = {
            "status": out.status,
            "error": out.error,
            "exit_code": rc,
            "log_tail": tail,
            "finished_at": utcnow(),
        }
        if out.result is not None:
            values["result_json"] = json.dumps(out.result, ensure_ascii=False)
        if out.status == JobStatus.succeeded:
            values["progress_done"] = col(Job.progress_total)
        with self.engine.begin() as conn:
            # `lost` too: the reaper may have given up on a job whose worker only stalled; this is the truth.
            moved = conn.execute(
                update(Job)
                .where(*self.mine(), col(Job.status).in_([JobStatus.running, JobStatus.lost]))
                .values(**values)
            )
        return moved.rowcount == 1

    def abort(self, exc: BaseException) -> None:
        """The worker's own failure (prepare, spawn, database): stop the subprocess, then record why if it can.

        Killing needs nothing from the database, which may be the very reason for the abort.
        """
        if self.proc is not None:
            self.kill(signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()
        try:
            tail = read_tail(self.root / self.spec.log_name)
            self.store(Outcome(JobStatus.failed, f"worker error: {type(exc).__name__}: {exc}"), None, tail)
        except Exception:  # noqa: BLE001 - the process is stopped; the reaper will mark the job lost
            log.exception("job %s: could not record the worker error", self.job_id)


def drain(tailer: Tailer, *, timeout: float, interval: float) -> None:
    """Store what is left in the events file after the subprocess exited.

    poll() returns 0 after a resynchronisation with lines still waiting, and a briefly locked database
    must not turn a finished job into a worker error: both are retried until `timeout`.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            stored = tailer.poll()
        except OperationalError as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("job %s: database error while draining events: %s", tailer.job_id, exc)
            tailer.offset, stored = None, 0
        else:
            if stored == 0 and not tailer.pending():
                return
        if time.monotonic() >= deadline:
            log.warning("job %s: events not fully stored after %.0f s", tailer.job_id, timeout)
            return
        if stored == 0:
            time.sleep(interval)


def signal_name(number: int) -> str:
    """SIGKILL for 9; a real-time signal, which has no name of its own, as SIGRTMIN+n."""
    try:
        return signal.Signals(number).name
    except ValueError:
        if signal.SIGRTMIN < number < signal.SIGRTMAX:
            return f"SIGRTMIN+{number - signal.SIGRTMIN}"
        return "an unknown signal"


# torchrun's report when one of its ranks died of a signal, e.g. "exitcode  : -9 (pid: 4242)".
_RANK_SIGNAL = re.compile(r"exitcode\s*:\s*-(\d+)\b")


def failure_reason(rc: int, error_event: str, tail: str, *, program: str = "trainer") -> str:
    """Why a job failed, from the exit code, its last error event and its log's last lines."""
    if rc < 0:
        oom = ": out of memory?" if -rc == signal.SIGKILL else ""
        return f"killed by {signal_name(-rc)} (signal {-rc}){oom}"
    if rc > 0 and (m := _RANK_SIGNAL.search(tail)):
        number = int(m.group(1))
        oom = ": out of memory?" if number == signal.SIGKILL else ""
        rank = f"a rank was killed by {signal_name(number)} (signal {number}){oom}"
        return f"{rank}; {program} exited with code {rc}"
    reason = (
        f"{program} exited with code {rc}" if rc else f"{program} exited without finishing (no done event)"
    )
    if error_event:
        return f"{reason}: {error_event}"
    if lines := [line.strip() for line in tail.splitlines() if line.strip()]:
        # Failed before writing an event (a config it refused): its last word is the reason.
        return f"{reason}: {lines[-1][:500]}"
    return reason


def execute(job_id: int, *, task_id: str = "", settings: Settings | None = None) -> bool:
    """Run a queued job to its end in this process; False when it was not queued (nothing done)."""
    from worker.kinds import spec_for

    settings = settings or get_settings()
    engine = get_engine(settings)
    task_id = task_id or f"local-{uuid.uuid4().hex}"  # the fence needs a name no other attempt has
    if not _claim(engine, job_id, task_id):
        log.info("job %s is not queued (or does not exist); task %s does nothing", job_id, task_id)
        return False
    with Session(engine, expire_on_commit=False) as session:
        job = session.get_one(Job, job_id)
    log.info("job %s (%s): starting", job_id, job.kind)
    try:
        spec = spec_for(job.kind)
    except Exception as exc:  # noqa: BLE001 - no such kind, or a module of SFTLAB_JOB_KINDS that fails to import
        # Claimed already: recorded here, or the job would sit running until the reaper calls it lost.
        unknown = isinstance(exc, KeyError)
        reason = str(exc.args[0]) if unknown else f"{type(exc).__name__}: {exc}"
        log.error("job %s: %s", job_id, reason, exc_info=not unknown)
        ex = Execution(job, JobKindSpec(), settings, engine, task_id=task_id)
        ex.store(Outcome(JobStatus.failed, reason[:4000]), None, "")
        return True
    ex = Execution(job, spec, settings, engine, task_id=task_id)
    try:
        ex.place()
        try:
            cmd = spec.prepare(ex.ctx)
        except Cancelled:  # a kind waiting in prepare (a run waiting for GPUs) was cancelled or shut down
            ex.store(ex.stopped(), None, "")
            return True
        except JobFailed as exc:  # a kind's own refusal (a host without the GPUs asked for): its message
            ex.store(Outcome(JobStatus.failed, str(exc)[:4000]), None, "")
            return True
        if cmd is None:
            ex.store(ex.run_inline(), None, "")
        else:
            ex.start(cmd)
            rc = ex.watch()
            out, tail = ex.decide(rc)
            ex.store(out, rc, tail)
    except BaseException as exc:
        log.exception("job %s: worker error", job_id)
        ex.abort(exc)
        if not isinstance(exc, Exception):
            raise
    log.info("job %s: finished (exit %s)", job_id, ex.proc.returncode if ex.proc else None)
    return True
