"""The body of the `runs.execute` task: one run from queued to finished, in this worker.

The trainer runs as a subprocess in its own session (so cancel reaches its whole process group) and dies
with the worker thread that started it (PR_SET_PDEATHSIG), so a killed worker leaves no training behind;
the reaper also kills what remains of a lost run on the same host. While it runs, this loop copies
metrics.jsonl into the database, heartbeats, and watches for a cancel request.

Only a queued run is started: the claim is a conditional UPDATE, so a redelivered task (acks late) for a
running, lost or finished run does nothing, and a cancel racing the start has exactly one winner.

Every later write is fenced on the claiming task (`WHERE id = :run AND task_id = :mine`). A run wrongly
marked lost (a reaper with a clock ahead, a long database stall) and then resumed belongs to the new task:
the stale executor can no longer write to it, and when it notices it kills its own trainer, so two
trainers never share the run directory for longer than a heartbeat. A run marked lost whose executor and
trainer are in fact alive is moved back to running by the executor's next heartbeat.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col

from app.core.config import Settings, get_settings
from app.core.db import get_engine
from app.models import Run, RunDataset, RunEvent, RunStatus, utcnow
from app.runs.command import build_command
from app.runs.rundir import LOG_FILE, METRICS_FILE, RUN_JSON, log_tail, prepare
from app.runs.tailer import Superseded, Tailer

log = logging.getLogger("sftlab.runs")

PR_SET_PDEATHSIG = 1
DRAIN_TIMEOUT = 30.0  # seconds the final drain of metrics.jsonl keeps retrying a locked database
try:  # loaded before fork: the child must not load libraries between fork and exec
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
except OSError:
    _LIBC = None


# Set when the worker is asked to stop (Celery's worker_shutting_down): running trainers are stopped as a
# cancel would, instead of Celery's warm shutdown waiting hours for the run to end.
SHUTDOWN = threading.Event()


def _die_with_parent(parent: int) -> None:
    # SIGTERM rather than SIGKILL: torchrun and the deepspeed launcher forward it to their ranks, which
    # they start in sessions of their own. Note the signal fires when the *thread* that forked exits; Celery
    # runs tasks on long-lived pool threads (or the pool process's main thread), so that is the worker.
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the worker died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def run_processes(pgid: int, marker: str | None) -> list[psutil.Process]:
    """Live processes of a run: its process group, plus any process whose command line holds run.json.

    `marker` None: the process group only (another attempt may be using the same run.json).
    """
    found = []
    me = os.getpid()
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        if p.pid == me or p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            in_group = os.getpgid(p.pid) == pgid
        except OSError:
            continue
        if in_group or (marker is not None and marker in (p.info["cmdline"] or [])):
            found.append(p)
    return found


def kill_run_processes(pgid: int, marker: str | None, sig: signal.Signals) -> int:
    """Send `sig` to every process of the run; returns how many were signalled."""
    procs = run_processes(pgid, marker)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.send_signal(sig)
    return len(procs)


def _claim(engine: Engine, run_id: int, task_id: str) -> bool:
    now = utcnow()
    with engine.begin() as conn:
        moved = conn.execute(
            update(Run)
            .where(col(Run.id) == run_id, col(Run.status) == RunStatus.queued)
            .values(
                status=RunStatus.running,
                started_at=now,
                heartbeat_at=now,
                worker=socket.gethostname(),
                task_id=task_id,
                pid=None,
                cancel_requested=False,
            )
        )
    return moved.rowcount == 1


class Execution:
    """One claimed run: prepare, start, watch, finish."""

    def __init__(self, run_id: int, settings: Settings, engine: Engine, *, task_id: str):
        self.run_id, self.settings, self.engine, self.task_id = run_id, settings, engine, task_id
        self.proc: subprocess.Popen | None = None
        self.root: Path | None = None  # kept from the start: abort() must not need the database
        self.last_beat = time.monotonic()
        self.cancel = False
        self.superseded = False  # another task holds the run now (it was lost, then resumed)

    def _mine(self) -> tuple:
        return (col(Run.id) == self.run_id, col(Run.task_id) == self.task_id)

    def beat(self) -> None:
        """Heartbeat (when due) and read the cancel flag and the run's holder in the same round trip."""
        now = time.monotonic()
        if now - self.last_beat < self.settings.heartbeat_interval:
            return
        self.last_beat = now
        with self.engine.begin() as conn:
            beat = conn.execute(
                update(Run)
                .where(*self._mine(), col(Run.status) == RunStatus.running)
                .values(heartbeat_at=utcnow())
            )
            if beat.rowcount != 1 and (self.proc is None or self.proc.poll() is None):
                # The reaper gave up on us (its clock ahead of ours, or a database stall longer than
                # heartbeat_timeout) but this run is alive: take it back before someone resumes it.
                back = conn.execute(
                    update(Run)
                    .where(*self._mine(), col(Run.status) == RunStatus.lost)
                    .values(status=RunStatus.running, error="", finished_at=None, heartbeat_at=utcnow())
                )
                if back.rowcount == 1:
                    log.warning("run %s was marked lost while its trainer ran; running again", self.run_id)
            row = conn.execute(
                select(col(Run.task_id), col(Run.cancel_requested)).where(col(Run.id) == self.run_id)
            ).first()
        holder, self.cancel = (row[0], bool(row[1])) if row else (None, False)  # None: the run was deleted
        if holder != self.task_id and not self.superseded:
            log.warning(
                "run %s is now held by task %s; task %s stops its trainer", self.run_id, holder, self.task_id
            )
            self.superseded = True

    def start(self) -> Path:
        with Session(self.engine, expire_on_commit=False) as session:
            run = session.get_one(Run, self.run_id)
            links = session.execute(
                select(col(RunDataset.dataset_id), col(RunDataset.version), col(RunDataset.role)).where(
                    col(RunDataset.run_id) == self.run_id
                )
            ).all()
        self.root = Path(run.run_dir) if run.run_dir else None
        train = sorted((d, v) for d, v, role in links if role == "train")
        evals = [(d, v) for d, v, role in links if role == "eval"]
        root = self.root = prepare(
            run, engine=self.engine, train=train, eval_version=evals[0] if evals else None, tick=self.beat
        )
        cmd = build_command(
            config_path=root / RUN_JSON,
            n_gpus=run.n_gpus,
            n_procs=run.n_procs,
            python=sys.executable,
            threads=self.settings.trainer_threads,
            master_port=_free_port(),
        )
        with open(root / LOG_FILE, "ab") as log_fh:
            log_fh.write(f"$ {' '.join(cmd.argv)}\n".encode())
            log_fh.flush()
            parent = os.getpid()
            self.proc = subprocess.Popen(
                cmd.argv,
                cwd=cmd.cwd,
                env=cmd.env,
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: _die_with_parent(parent),
            )
        with self.engine.begin() as conn:
            moved = conn.execute(update(Run).where(*self._mine()).values(pid=self.proc.pid))
        self.superseded = self.superseded or moved.rowcount != 1
        return root

    def kill(self, sig: signal.Signals) -> None:
        """Signal this attempt's processes: its process group and descendants, and anything naming its run.json
        unless another attempt (which would name the same file) holds the run now."""
        assert self.proc is not None
        marker = None if self.superseded or self.root is None else str(self.root / RUN_JSON)
        kill_run_processes(self.proc.pid, marker, sig)
        if self.proc.poll() is None:  # not reaped yet, so the pid is still ours
            with contextlib.suppress(psutil.Error):
                for p in psutil.Process(self.proc.pid).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        p.send_signal(sig)

    def watch(self, root: Path) -> int:
        """Tail, heartbeat and honour cancel until the trainer exits; returns its exit code."""
        assert self.proc is not None
        tailer = Tailer(self.engine, self.run_id, root / METRICS_FILE, task_id=self.task_id)
        kill_at: float | None = None
        while True:
            rc = self.proc.poll()
            try:
                if not self.superseded:
                    tailer.poll()
                if rc is None:
                    self.beat()
            except OperationalError as exc:
                # A locked or briefly unreachable database must not end a training run: the tailer
                # resynchronises and the heartbeat is retried on the next tick.
                log.warning("run %s: database error while watching: %s", self.run_id, exc)
                tailer.offset = None
            except Superseded as exc:
                log.warning("%s; task %s stops its trainer", exc, self.task_id)
                self.superseded = True
            if rc is not None:
                break
            if self.superseded:
                # No grace: the attempt that holds the run may already be writing to the same directory.
                self.kill(signal.SIGKILL)
            elif (self.cancel or SHUTDOWN.is_set()) and kill_at is None:
                log.info("run %s: stopping process group %s", self.run_id, self.proc.pid)
                self.kill(signal.SIGTERM)
                kill_at = time.monotonic() + self.settings.cancel_grace
            elif kill_at is not None and time.monotonic() >= kill_at:
                self.kill(signal.SIGKILL)
            time.sleep(self.settings.tail_interval)
        # Ranks or helpers the launcher left behind must not outlive the run.
        self.kill(signal.SIGKILL)
        if not self.superseded:
            try:
                drain(tailer, timeout=DRAIN_TIMEOUT, interval=self.settings.tail_interval)
            except Superseded:
                self.superseded = True
        return rc

    def finish(self, root: Path, rc: int) -> None:
        if self.superseded:
            log.warning(
                "run %s: task %s was superseded; its outcome is not recorded", self.run_id, self.task_id
            )
            return
        tail = log_tail(root / LOG_FILE)
        status, error = self._outcome(rc, tail)
        self._store(status, error, rc, tail)

    def _outcome(self, rc: int, tail: str) -> tuple[RunStatus, str]:
        with self.engine.connect() as conn:
            kinds = dict(
                conn.execute(
                    select(col(RunEvent.type), col(RunEvent.data))
                    .where(col(RunEvent.run_id) == self.run_id, col(RunEvent.type).in_(["done", "error"]))
                    .order_by(col(RunEvent.seq))
                ).all()
            )
        if rc == 0 and "done" in kinds:
            return RunStatus.succeeded, ""
        if self.cancel:
            return RunStatus.cancelled, "cancelled on request"
        if SHUTDOWN.is_set():
            return (
                RunStatus.failed,
                "the worker was shut down while training; resume from the latest checkpoint",
            )
        message = str(json.loads(kinds["error"]).get("message", "")) if "error" in kinds else ""
        return RunStatus.failed, failure_reason(rc, message, tail)

    def _store(self, status: RunStatus, error: str, rc: int | None, tail: str) -> None:
        with self.engine.begin() as conn:
            # `lost` too: the reaper may have given up on a run whose worker only stalled; this is the truth.
            conn.execute(
                update(Run)
                .where(*self._mine(), col(Run.status).in_([RunStatus.running, RunStatus.lost]))
                .values(status=status, error=error, exit_code=rc, log_tail=tail, finished_at=utcnow())
            )

    def abort(self, exc: BaseException) -> None:
        """The worker's own failure (export, spawn, database): stop the trainer, then record why if it can.

        Killing needs nothing from the database, which may be the very reason for the abort.
        """
        if self.proc is not None:
            self.kill(signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()
        try:
            tail = log_tail(self.root / LOG_FILE) if self.root is not None else ""
            self._store(RunStatus.failed, f"worker error: {type(exc).__name__}: {exc}", None, tail)
        except Exception:  # noqa: BLE001 - the trainer is stopped; the reaper will mark the run lost
            log.exception("run %s: could not record the worker error", self.run_id)


def drain(tailer: Tailer, *, timeout: float, interval: float) -> None:
    """Store what is left in metrics.jsonl after the trainer exited, `done` included.

    poll() returns 0 after a resynchronisation with lines still waiting, and a briefly locked database
    must not turn a finished run into a worker error: both are retried until `timeout`.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            stored = tailer.poll()
        except OperationalError as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("run %s: database error while draining metrics: %s", tailer.run_id, exc)
            tailer.offset, stored = None, 0
        else:
            if stored == 0 and not tailer.pending():
                return
        if time.monotonic() >= deadline:
            log.warning("run %s: metrics.jsonl not fully stored after %.0f s", tailer.run_id, timeout)
            return
        if stored == 0:
            time.sleep(interval)


# torchrun's report when one of its ranks died of a signal, e.g. "exitcode  : -9 (pid: 4242)".
_RANK_SIGNAL = re.compile(r"exitcode\s*:\s*-(\d+)\b")


def failure_reason(rc: int, error_event: str, tail: str) -> str:
    """Why a run failed, from the exit code, the trainer's last error event and its log's last lines."""
    if rc < 0:
        sig = signal.Signals(-rc)
        return f"killed by {sig.name} (signal {-rc})" + (": out of memory?" if sig == signal.SIGKILL else "")
    if rc > 0 and (m := _RANK_SIGNAL.search(tail)):
        sig = signal.Signals(int(m.group(1)))
        oom = ": out of memory?" if sig == signal.SIGKILL else ""
        return f"a rank was killed by {sig.name} (signal {sig.value}){oom}; trainer exited with code {rc}"
    reason = f"trainer exited with code {rc}" if rc else "trainer exited without finishing (no done event)"
    if error_event:
        return f"{reason}: {error_event}"
    if lines := [line.strip() for line in tail.splitlines() if line.strip()]:
        # Failed before writing an event (a config the trainer refused): its last word is the reason.
        return f"{reason}: {lines[-1][:500]}"
    return reason


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def execute(run_id: int, *, task_id: str = "") -> bool:
    """Run a queued run to its end in this process; False when it was not queued (nothing done)."""
    settings = get_settings()
    engine = get_engine(settings)
    task_id = task_id or f"local-{uuid.uuid4().hex}"  # the fence needs a name no other attempt has
    if not _claim(engine, run_id, task_id):
        log.info("run %s is not queued; task %s does nothing", run_id, task_id)
        return False
    log.info("run %s: starting", run_id)
    ex = Execution(run_id, settings, engine, task_id=task_id)
    try:
        root = ex.start()
        rc = ex.watch(root)
        ex.finish(root, rc)
    except BaseException as exc:
        log.exception("run %s: worker error", run_id)
        ex.abort(exc)
        if not isinstance(exc, Exception):
            raise
    log.info("run %s: trainer exited with %s", run_id, ex.proc.returncode if ex.proc else None)
    return True
