"""The trainer's command line and environment for a run's resources; a pure function, unit-tested.

    1 CPU rank:   python -m trainer.train --config run.json
    N CPU ranks:  python -m torch.distributed.run --standalone --nproc_per_node N -m trainer.train --config run.json
    N GPUs:       python -m deepspeed.launcher.runner --include localhost:1,3 --master_port P --module trainer.train --config run.json
    K nodes:      python -m deepspeed.launcher.runner --hostfile F --num_nodes K --num_gpus N --master_addr A
                      --master_port P --module trainer.train --config run.json

On one host the GPUs are the physical ids the worker's allocator gave the run (worker.devices), never
`--num_gpus`, which always takes 0..N-1 and so put two runs on the same devices; CUDA_VISIBLE_DEVICES is
dropped from the trainer's environment because the ids are physical ones and DeepSpeed's launcher counts
devices through it. On several nodes the hostfile's first K hosts are the run's, N GPUs each, and the run
directory (the cwd every node's ranks start in, and where they write checkpoints) must be on a filesystem
all of them share.

The launchers are started as `python -m` of the worker's own interpreter rather than as `torchrun` or
`deepspeed` found on PATH, so the trainer always runs in the worker's environment. Every command holds the
run.json path, which is how the reaper recognises a run's processes (torchrun starts its ranks in new
sessions, so the process group alone does not reach them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from worker.child_env import child_env

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class TrainerCommand:
    argv: list[str]
    env: dict[str, str]
    cwd: str


def build_command(
    *,
    config_path: str | Path,
    n_gpus: int,
    n_procs: int,
    python: str,
    threads: int = 0,
    master_port: int = 29500,
    base_env: Mapping[str, str] | None = None,
    gpu_ids: list[int] | None = None,
    hostfile: str = "",
    num_nodes: int = 1,
    master_addr: str = "",
) -> TrainerCommand:
    """argv + env + cwd (the run directory) to start the trainer for these resources.

    `gpu_ids`: the physical GPUs of a one-host GPU run (as many as n_gpus). `hostfile` (with num_nodes and
    master_addr, the first host's name): a run over several nodes, n_gpus on each.
    """
    config = str(config_path)
    tail = ["--config", config]
    launcher = [python, "-m", "deepspeed.launcher.runner"]
    module = ["--master_port", str(master_port), "--module", "trainer.train", *tail]
    if n_gpus > 0 and hostfile:
        argv = [
            *launcher, "--hostfile", hostfile, "--num_nodes", str(num_nodes), "--num_gpus", str(n_gpus),
            "--master_addr", master_addr, *module,
        ]  # fmt: skip
    elif n_gpus > 0:
        if gpu_ids is None or len(gpu_ids) != n_gpus:
            raise ValueError(f"a run on {n_gpus} GPUs needs as many device ids, got {gpu_ids}")
        argv = [*launcher, "--include", "localhost:" + ",".join(map(str, gpu_ids)), *module]
    elif n_procs > 1:
        argv = [
            python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n_procs),
            "-m", "trainer.train", *tail,
        ]  # fmt: skip
    else:
        argv = [python, "-m", "trainer.train", *tail]
    env = child_env(base_env)  # never the secret key, the database or the broker
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + path if path else "")
    env["PYTHONUNBUFFERED"] = "1"  # train.log follows the run live
    if n_gpus > 0:
        env.pop("CUDA_VISIBLE_DEVICES", None)
    else:
        # A CPU run on a GPU host must not grab the GPUs; DeepSpeed needs telling it has none.
        env["CUDA_VISIBLE_DEVICES"] = ""
        env["DS_ACCELERATOR"] = "cpu"
    if threads > 0:
        # torch sizes its intra-op pool from OMP_NUM_THREADS; ranks sharing a box must not oversubscribe it.
        for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[key] = str(threads)
    return TrainerCommand(argv=argv, env=env, cwd=str(Path(config).parent))
