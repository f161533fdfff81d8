"""A real worker reports its GPUs when it starts: SFTLAB_FAKE_GPUS stands in for nvidia-smi, and the names
and count reach WorkerPresence, where the launch form's GPU check reads them."""

import time

from sqlmodel import Session, select

from app.jobs.workers import queue_gpu_counts
from app.models import WorkerPresence

H100 = "NVIDIA H100 80GB HBM3"


def test_a_worker_reports_its_gpus(engine, workers, monkeypatch):
    monkeypatch.setitem(workers.extra_env, "SFTLAB_FAKE_GPUS", f"{H100},{H100}")
    workers.start("gpu-q")
    deadline = time.monotonic() + 60
    row = None
    while row is None and time.monotonic() < deadline:
        with Session(engine) as s:
            row = s.exec(select(WorkerPresence).where(WorkerPresence.queues == "gpu-q")).first()
        time.sleep(0.2)
    assert row is not None, workers.logs()
    assert (row.gpu_count, row.gpu_names) == (2, f"{H100},{H100}")
    with Session(engine) as s:
        assert queue_gpu_counts(s, "gpu-q") == [2]
