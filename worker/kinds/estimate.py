"""The `estimate` job kind: the launch form's tokens, steps and packing, by trainer.estimate in a subprocess.

The chosen dataset versions are exported exactly as a run exports them (above `cap` samples, a seeded
uniform sample of `cap` lines), then `python -m trainer.estimate` plans the run on them with the form's
config. Counts measured on a sample are scaled by total/used; the result says so (`sampled`).
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from app.models import JobStatus
from app.runs.rundir import export_versions
from worker.child_env import child_env
from worker.kinds import register
from worker.runner import Command, Context, JobKindSpec, Outcome, failure_reason
from worker.train_command import REPO

SPEC, RESULT, EXPORT = "spec.json", "result.json", "export.json"


def export_lines(engine: Engine, datasets: list[tuple[int, int]], out: Path, keep: set[int] | None) -> int:
    """Concatenate the versions as a run's train.jsonl; with `keep`, only those 0-based line numbers."""
    n = written = 0
    with open(out, "wb") as fh:
        for chunk in export_versions(engine, datasets):
            if keep is None:
                fh.write(chunk)
                written += chunk.count(b"\n")
                continue
            for line in chunk.splitlines(keepends=True):
                if n in keep:
                    fh.write(line)
                    written += 1
                n += 1
    return written


def sample_of(total: int, cap: int, seed: str) -> set[int] | None:
    """The seeded uniform sample of line numbers kept above `cap` (None: keep all)."""
    return set(random.Random(seed).sample(range(total), cap)) if total > cap else None


class Estimate(JobKindSpec):
    kind = "estimate"
    log_name = "estimate.log"
    events_name = None
    time_limit = 600.0

    def prepare(self, ctx: Context) -> Command:
        p = json.loads(ctx.job.params_json)
        root = ctx.root
        datasets = [tuple(d) for d in p["datasets"]]
        total, cap = int(p["total"]), int(p["cap"])
        keep = sample_of(total, cap, f"estimate:{total}")
        used = export_lines(ctx.engine, datasets, root / "train.jsonl", keep)  # type: ignore[arg-type]
        ctx.check()
        eval_file = ""
        if p.get("eval_dataset"):
            n_eval = int(p["eval_total"])
            export_lines(
                ctx.engine,
                [tuple(p["eval_dataset"])],
                root / "eval.jsonl",
                sample_of(n_eval, cap, "estimate:eval"),
            )  # type: ignore[list-item]
            eval_file = str(root / "eval.jsonl")
        cfg = p["config"]
        cfg["data"].update(train_file=str(root / "train.jsonl"), eval_file=eval_file)
        cfg["output_dir"] = str(root / "run")
        cfg["model"]["path"] = p["model_path"]
        (root / SPEC).write_text(
            json.dumps({"config": cfg, "world": p["world"], "tokenizer_dir": p["tokenizer_dir"]}),
            encoding="utf-8",
        )
        (root / EXPORT).write_text(json.dumps({"used": used, "sampled": keep is not None}), encoding="utf-8")
        env = {**child_env(), "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
        env["PYTHONPATH"] = os.pathsep.join(x for x in (str(REPO), env.get("PYTHONPATH", "")) if x)
        argv = [sys.executable, "-m", "trainer.estimate", str(root / SPEC), str(root / RESULT)]
        return Command(argv, env, cwd=str(REPO), marker=str(root / SPEC))

    def outcome(self, ctx: Context, rc: int, tail: str) -> Outcome:
        for name in ("train.jsonl", "eval.jsonl"):  # a copy of the data per click would fill the disk
            (ctx.root / name).unlink(missing_ok=True)
        try:
            raw = json.loads((ctx.root / RESULT).read_text(encoding="utf-8"))
            export = json.loads((ctx.root / EXPORT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            lines = "\n".join(tail.strip().splitlines()[-5:])
            return Outcome(JobStatus.failed, failure_reason(rc, "", lines, program="the estimate"))
        if "error" in raw:
            return Outcome(JobStatus.failed, raw["error"], result=raw)
        return Outcome(JobStatus.succeeded, result=scaled(raw, json.loads(ctx.job.params_json), export))


def scaled(raw: dict[str, Any], params: dict[str, Any], export: dict[str, Any]) -> dict[str, Any]:
    """The plan's numbers for the whole data: counts from a sample scaled by total/used."""
    total, used, sampled = int(params["total"]), int(export["used"]), bool(export["sampled"])
    scale = total / used if used else 1.0
    bins = round(raw["bins"] * scale)
    return {
        "samples": total,
        "used": used,
        "sampled": sampled,
        "train_samples": round(raw["train_samples"] * scale),
        "eval_samples": round(raw["eval_samples"] * (scale if not params.get("eval_dataset") else 1.0)),
        "tokens": round(raw["tokens"] * scale),
        "supervised_tokens": round(raw["supervised_tokens"] * scale),
        "bins": bins,
        "steps": raw["steps"] if not sampled else math.ceil(bins / raw["bins_per_step"]),
        "bins_per_step": raw["bins_per_step"],
        "packing_efficiency": raw["packing_efficiency"],
        "world": params["world"],
        "dropped": round(raw["dropped"] * scale),
    }


register(Estimate())
