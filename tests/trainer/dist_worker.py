"""Runs trainer.train.run() under torchrun for the multi-rank tests; rank 0 writes the result as JSON."""

import argparse
import json
import os

from trainer.config import RunConfig
from trainer.train import run

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("result")
    ap.add_argument("--stop-after", type=int, default=None)
    ap.add_argument("--grad-dump", default=None)
    a = ap.parse_args()
    rank = int(os.environ.get("RANK", "0"))
    dump = a.grad_dump if a.grad_dump and rank == 0 else None
    out = run(RunConfig.from_json(a.config), stop_after=a.stop_after, grad_dump=dump)
    if rank == 0:
        with open(a.result, "w") as fh:
            json.dump(out, fh)
