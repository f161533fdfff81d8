"""GPU detection, CUDA_VISIBLE_DEVICES mapping and the per-host allocator: two runs never share a GPU, and a
crashed holder's GPUs come back."""

import multiprocessing
import subprocess
import sys

from app.core.config import Settings
from worker.devices import Gpu, GpuAllocator, host_gpus, parse_smi, usable_gpus

# GPU 0 is the line of a real H100 host; the MIG line is skipped.
SMI = """GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-4667ea9b-4951-9301-07f5-4b2b950ce668)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bbbb2222-0000)
  MIG 1g.10gb     Device  0: (UUID: MIG-cccc)
GPU 2: NVIDIA H100 80GB HBM3 (UUID: GPU-dddd3333-0000)
GPU 3: NVIDIA H100 80GB HBM3 (UUID: GPU-eeee4444-0000)
"""
FOUR = parse_smi(SMI)


def test_nvidia_smi_lines_become_gpus():
    assert [g.index for g in FOUR] == [0, 1, 2, 3]
    assert FOUR[1] == Gpu(1, "NVIDIA H100 80GB HBM3", "GPU-bbbb2222-0000")


def test_fake_gpus_replace_detection(tmp_path):
    settings = Settings(data_dir=tmp_path, secret_key="k", fake_gpus="NVIDIA A100, NVIDIA A100")
    assert host_gpus(settings) == [Gpu(0, "NVIDIA A100"), Gpu(1, "NVIDIA A100")]


def test_visible_devices_map_to_physical_ids():
    assert [g.index for g in usable_gpus(FOUR, {})] == [0, 1, 2, 3]
    assert [g.index for g in usable_gpus(FOUR, {"CUDA_VISIBLE_DEVICES": "2,3"})] == [2, 3]
    assert [g.index for g in usable_gpus(FOUR, {"CUDA_VISIBLE_DEVICES": "3,1"})] == [3, 1]
    assert [g.index for g in usable_gpus(FOUR, {"CUDA_VISIBLE_DEVICES": "GPU-dddd"})] == [2]
    assert usable_gpus(FOUR, {"CUDA_VISIBLE_DEVICES": ""}) == []
    # CUDA stops at the first entry it cannot resolve.
    assert [g.index for g in usable_gpus(FOUR, {"CUDA_VISIBLE_DEVICES": "1,9,2"})] == [1]


def test_two_allocations_never_overlap_and_release_frees(tmp_path):
    alloc = GpuAllocator(tmp_path, host="h")
    a = alloc.acquire(job_id=1, count=2, usable=[0, 1, 2, 3])
    b = alloc.acquire(job_id=2, count=2, usable=[0, 1, 2, 3])
    assert a.ids and b.ids and not set(a.ids) & set(b.ids)
    c = alloc.acquire(job_id=3, count=1, usable=[0, 1, 2, 3])
    assert c.ids == [] and c.free == 0
    alloc.release(1)
    assert alloc.acquire(job_id=3, count=1, usable=[0, 1, 2, 3]).ids[0] in a.ids


def test_only_the_usable_ids_are_given(tmp_path):
    alloc = GpuAllocator(tmp_path, host="h")
    assert alloc.acquire(job_id=1, count=2, usable=[1, 3]).ids == [1, 3]
    assert alloc.acquire(job_id=2, count=1, usable=[1, 3]).free == 0


def test_a_dead_holders_gpus_are_reclaimed(tmp_path):
    alloc = GpuAllocator(tmp_path, host="h")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert alloc.acquire(job_id=1, count=2, usable=[0, 1], pid=dead.pid).ids == [0, 1]
    assert alloc.acquire(job_id=2, count=2, usable=[0, 1]).ids == [0, 1]
    assert alloc.held() == {2: [0, 1]}


def test_a_finished_jobs_gpus_are_reclaimed(tmp_path):
    alloc = GpuAllocator(tmp_path, host="h")
    alloc.acquire(job_id=1, count=1, usable=[0])
    # The worker lives on, but the job ended without releasing (a worker error after the grant).
    grant = alloc.acquire(job_id=2, count=1, usable=[0], running=lambda job: job != 1)
    assert grant.ids == [0]


def test_hosts_sharing_a_directory_do_not_share_gpus(tmp_path):
    assert GpuAllocator(tmp_path, host="a").acquire(job_id=1, count=1, usable=[0]).ids == [0]
    assert GpuAllocator(tmp_path, host="b").acquire(job_id=2, count=1, usable=[0]).ids == [0]


def _grab(directory: str, job_id: int, out, done) -> None:
    out.put(GpuAllocator(directory, host="h").acquire(job_id=job_id, count=1, usable=list(range(8))).ids)
    done.wait(30)  # a holder that exits is reclaimed: stay alive until every process has its GPU


def test_worker_processes_on_one_host_never_get_the_same_gpu(tmp_path):
    ctx = multiprocessing.get_context("fork")
    out, done = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_grab, args=(str(tmp_path), job, out, done)) for job in range(1, 9)]
    for p in procs:
        p.start()
    try:
        got = [out.get(timeout=30) for _ in procs]
    finally:
        done.set()
        for p in procs:
            p.join(timeout=30)
    assert sorted(i for ids in got for i in ids) == list(range(8))
