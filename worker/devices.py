"""This host's GPUs: which exist, which this worker may use, and which a run holds.

`deepspeed --num_gpus N` always takes devices 0..N-1, so two runs on one host shared GPUs. Instead every
run is given physical device ids by `GpuAllocator`, a JSON file per host locked with fcntl, so several
worker processes on one host (one Celery worker per queue, or a worker with several slots) never hand
out the same GPU. A holder is recorded with its worker's pid and that process's start time: a holder
whose worker died (kill -9, OOM, a crashed container) is reclaimed by the next allocation, as is one
whose job is no longer running, so a crash never leaks GPUs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from app.core.config import Settings

# `nvidia-smi -L`: "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5c1b...)"
_SMI_LINE = re.compile(r"^GPU (\d+): (.+?)(?: \(UUID: ([^)]+)\))?$")


@dataclass(frozen=True)
class Gpu:
    index: int  # the physical id, as nvidia-smi and DeepSpeed's --include count them
    name: str
    uuid: str = ""


def parse_smi(text: str) -> list[Gpu]:
    """`nvidia-smi -L` output -> the host's GPUs (MIG lines and anything else are skipped)."""
    out = []
    for line in text.splitlines():
        if m := _SMI_LINE.match(line.strip()):
            out.append(Gpu(int(m.group(1)), m.group(2).strip(), m.group(3) or ""))
    return out


def host_gpus(settings: Settings) -> list[Gpu]:
    """Every GPU of this host. `nvidia-smi -L` rather than torch: no CUDA context, well under a second.

    `settings.fake_gpus` (SFTLAB_FAKE_GPUS, comma-separated names) replaces detection, for tests and
    demos of the GPU pages on a CPU machine.
    """
    if settings.fake_gpus.strip():
        names = [n.strip() for n in settings.fake_gpus.split(",") if n.strip()]
        return [Gpu(i, name) for i, name in enumerate(names)]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        done = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return parse_smi(done.stdout) if done.returncode == 0 else []


def usable_gpus(gpus: list[Gpu], env: Mapping[str, str]) -> list[Gpu]:
    """The GPUs a worker restricted by CUDA_VISIBLE_DEVICES may use, as physical devices.

    CUDA_VISIBLE_DEVICES lists physical indices or UUIDs (or their prefixes); unset means all, empty none.
    The trainer is started with physical ids (--include localhost:2,3) and without the variable, so that
    DeepSpeed's launcher counts the same devices nvidia-smi does.
    """
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return list(gpus)
    out: list[Gpu] = []
    for entry in (e.strip() for e in visible.split(",")):
        if not entry:
            continue
        if entry.isdigit():
            match = [g for g in gpus if g.index == int(entry)]
        else:
            match = [g for g in gpus if g.uuid and g.uuid.startswith(entry)]
        if not match:
            break  # CUDA stops at the first entry it cannot resolve
        if match[0] not in out:
            out.append(match[0])
    return out


def worker_gpus(settings: Settings) -> list[Gpu]:
    """The GPUs this worker process may hand to its runs."""
    return usable_gpus(host_gpus(settings), os.environ)


@dataclass(frozen=True)
class Grant:
    ids: list[int]  # the physical ids given to the job; empty: not enough free
    free: int  # free ids at the time of asking (before this grant)


def _process_start(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


class GpuAllocator:
    """Which job holds which GPU ids on this host, in `<dir>/<hostname>.json` under an fcntl lock.

    The file is keyed by host because the data directory may be shared between hosts (a compose volume,
    NFS); the lock serialises the workers of one host, which is all that shares the devices.
    """

    def __init__(self, directory: Path, host: str | None = None):
        self.path = Path(directory) / f"{host or socket.gethostname()}.json"

    @contextlib.contextmanager
    def _locked(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                try:
                    holders = json.loads(self.path.read_text(encoding="utf-8"))
                except (FileNotFoundError, ValueError):
                    holders = {}  # a torn or hand-edited file: the reclaiming below rebuilds it
                yield holders
                tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(holders, sort_keys=True), encoding="utf-8")
                os.replace(tmp, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def acquire(
        self,
        *,
        job_id: int,
        count: int,
        usable: list[int],
        running: Callable[[int], bool] = lambda _job: True,
        pid: int | None = None,
    ) -> Grant:
        """Give `count` of the `usable` ids that no live holder has to `job_id`, or none (Grant.ids == []).

        `running(job_id)` says whether a holder's job still runs (the database's word); a holder whose
        worker process is gone, or whose job ended without releasing, is dropped first. A job asking
        again (a resumed run on the same host) gives up what it held before.
        """
        pid = pid or os.getpid()
        with self._locked() as holders:
            for key, held in list(holders.items()):
                started = held.get("started")
                alive = started is not None and _process_start(int(held.get("pid", 0))) == started
                if key == str(job_id) or not alive or not running(int(key)):
                    del holders[key]
            taken = {i for held in holders.values() for i in held.get("ids", [])}
            free = [i for i in usable if i not in taken]
            if len(free) < count:
                return Grant([], len(free))
            ids = sorted(free[:count])
            holders[str(job_id)] = {"ids": ids, "pid": pid, "started": _process_start(pid)}
            return Grant(ids, len(free))

    def release(self, job_id: int) -> None:
        with self._locked() as holders:
            holders.pop(str(job_id), None)

    def held(self) -> dict[int, list[int]]:
        """Job id -> GPU ids, as recorded (live or not); for tests and diagnostics."""
        with self._locked() as holders:
            return {int(k): list(v.get("ids", [])) for k, v in holders.items()}


def allocator(settings: Settings) -> GpuAllocator:
    return GpuAllocator(settings.data_dir / "gpus")
