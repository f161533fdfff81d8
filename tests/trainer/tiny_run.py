"""Helpers for the loop tests: a tiny random model directory, small pCLUE messages files, tiny configs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from tests.processes import run_in_group
from trainer.config import RunConfig, tiny_debug

# One intra-op thread for the loop tests: tiny models gain nothing from two, and on a busy 2-core CI box
# (xdist workers, other jobs) spinning OpenMP threads made these tests 3-5x slower (measured 75 s -> 20 s).
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[2]
PCLUE = Path(os.environ.get("SFTLAB_SHARED", REPO.parent / "shared")) / "data" / "pclue_train_9.jsonl"
if not PCLUE.is_file():
    PCLUE = Path("/work/shared/data/pclue_train_9.jsonl")


def tokenizer_dir() -> Path:
    from trainer.embedded import ensure_tokenizer

    return ensure_tokenizer()


def make_tiny_model_dir(out: Path, *, layers: int = 2, hidden: int = 64, seed: int = 0) -> Path:
    """A random Llama with the SmolLM2 tokenizer, saved as an HF directory (what model.path points to)."""
    from transformers import AutoTokenizer

    from trainer.embedded import tiny_model

    if (out / "config.json").is_file():
        return out
    tok_dir = tokenizer_dir()
    model = tiny_model(
        tok_dir, layers=layers, hidden=hidden, heads=4, kv_heads=2, intermediate=2 * hidden, seed=seed
    )
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(tok_dir)).save_pretrained(str(out))
    return out


def pclue_messages(out: Path, n: int, *, start: int = 0, max_chars: int = 70) -> Path:
    """The first n pCLUE rows (input/target/type) as messages JSONL with task_type pclue/<type>."""
    rows = []
    with open(PCLUE, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i < start:
                continue
            r = json.loads(line)
            if len(r["input"]) + len(r["target"]) > max_chars:
                continue
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": r["input"]},
                        {"role": "assistant", "content": r["target"]},
                    ],
                    "task_type": f"pclue/{r['type']}",
                    "tags": [],
                }
            )
            if len(rows) == n:
                break
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return out


def tiny_config(tmp: Path, model_dir: Path, data: Path, **train) -> RunConfig:
    cfg = tiny_debug(str(data), str(tmp / "run"), str(model_dir))
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def torchrun(
    cfg: RunConfig,
    tmp: Path,
    *,
    nproc: int = 2,
    stop_after: int | None = None,
    grad_dump: str | None = None,
    timeout: int = 300,
    record_load: bool = False,
    dump_gathered: str | None = None,
) -> dict:
    """Run the loop under torchrun (gloo, CPU) through dist_worker.py; returns rank 0's result."""
    cfg_path = tmp / "run.json"
    cfg.to_json(cfg_path)
    result = tmp / "result.json"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(nproc),
        str(Path(__file__).with_name("dist_worker.py")),
        str(cfg_path),
        str(result),
    ]
    if stop_after is not None:
        cmd += ["--stop-after", str(stop_after)]
    if grad_dump is not None:
        cmd += ["--grad-dump", grad_dump]
    if record_load:
        cmd += ["--record-load"]
    if dump_gathered is not None:
        cmd += ["--dump-gathered", dump_gathered]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "DS_ACCELERATOR": "cpu"}
    done = run_in_group(cmd, cwd=REPO, env=env, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(
            f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
        )
    return json.loads(result.read_text())
