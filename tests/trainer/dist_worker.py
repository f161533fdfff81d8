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


def dump_gathered_weights(path: str) -> None:
    """At each ZeRO-3 save, also write every parameter as GatheredParameters sees it (the reference the
    consolidated checkpoint must equal); rank 0 writes, keys as in the HF model."""
    import deepspeed
    import torch

    consolidated = dist_.zero3_state_dict

    def with_reference(engine):
        model = engine.module.module
        with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
            if int(os.environ.get("RANK", "0")) == 0:
                torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, path)
        return consolidated(engine)

    dist_.zero3_state_dict = with_reference


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("result")
    ap.add_argument("--stop-after", type=int, default=None)
    ap.add_argument("--grad-dump", default=None)
    ap.add_argument("--record-load", action="store_true")
    ap.add_argument("--dump-gathered", default=None)
    a = ap.parse_args()
    rank = int(os.environ.get("RANK", "0"))
    dump = a.grad_dump if a.grad_dump and rank == 0 else None
    record: dict = {}
    if a.record_load:
        record_load_partitioning(record)
    if a.dump_gathered:
        dump_gathered_weights(a.dump_gathered)
    out = {**run(RunConfig.from_json(a.config), stop_after=a.stop_after, grad_dump=dump), **record}
    if rank == 0:
        with open(a.result, "w") as fh:
            json.dump(out, fh)
