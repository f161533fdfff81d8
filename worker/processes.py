"""Process plumbing for job subprocesses: start them so they die with the worker, find and signal them.

A job's process runs in its own session (so cancel reaches its whole process group) and receives SIGTERM
when the worker thread that started it exits (PR_SET_PDEATHSIG), so a killed worker leaves nothing behind.
Launchers such as torchrun start their ranks in sessions of their own; those are found through the job's
marker, a path every process of the job names on its command line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys

import psutil

PR_SET_PDEATHSIG = 1
try:  # loaded before fork: the child must not load libraries between fork and exec
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
except OSError:
    _LIBC = None


def die_with_parent(parent: int) -> None:
    """preexec_fn: SIGTERM this child when the thread that forked it exits.

    SIGTERM rather than SIGKILL: torchrun and the deepspeed launcher forward it to their ranks. The signal
    fires when the *thread* that forked exits; Celery runs tasks on long-lived pool threads (or the pool
    process's main thread), so that is the worker.
    """
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the worker died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def job_processes(pgid: int, marker: str | None) -> list[psutil.Process]:
    """Live processes of a job: its process group, plus any process whose command line holds `marker`.

    `marker` None: the process group only (another attempt may be using the same marker).
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


def kill_job_processes(pgid: int, marker: str | None, sig: signal.Signals) -> int:
    """Send `sig` to every process of the job; returns how many were signalled."""
    procs = job_processes(pgid, marker)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.send_signal(sig)
    return len(procs)


def kill_leftovers(pgid: int, marker: str) -> int:
    """SIGKILL what is left of a lost job on this host; returns how many were killed.

    Only when one of them still names the job's marker: after a reboot the group id may be reused.
    """
    procs = job_processes(pgid, marker)
    ours = False
    for p in procs:
        with contextlib.suppress(psutil.Error):
            ours = ours or marker in p.cmdline()
    if not ours:
        return 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.send_signal(signal.SIGKILL)
    return len(procs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
