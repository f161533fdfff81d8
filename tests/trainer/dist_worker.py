"""Runs trainer.train.run() under torchrun for the multi-rank tests; rank 0 writes the result as JSON."""

import argparse
import json
import os

from trainer import distributed as dist_
from trainer.config import RunConfig
from trainer.train import run


def record_load_partitioning(record: dict) -> None:
    """Note whether the model reached deepspeed.initialize already partitioned (ZeRO-3 at load time)."""
    build = dist_.build_engine

    def recording(cfg, model, param_groups, world):
        record["partitioned_at_load"] = all(hasattr(p, "ds_id") for p in model.parameters())
        return build(cfg, model, param_groups, world)

    dist_.build_engine = recording


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("result")
    ap.add_argument("--stop-after", type=int, default=None)
    ap.add_argument("--grad-dump", default=None)
    ap.add_argument("--record-load", action="store_true")
    a = ap.parse_args()
    rank = int(os.environ.get("RANK", "0"))
    dump = a.grad_dump if a.grad_dump and rank == 0 else None
    record: dict = {}
    if a.record_load:
        record_load_partitioning(record)
    out = {**run(RunConfig.from_json(a.config), stop_after=a.stop_after, grad_dump=dump), **record}
    if rank == 0:
        with open(a.result, "w") as fh:
            json.dump(out, fh)
