"""What a run would be, without training: samples, tokens, bins, steps and packing from the trainer's own
data pipeline and bin plan, on data files and a config exactly as a run gets them.

    python -m trainer.estimate spec.json result.json

spec.json: {"config": <RunConfig dict>, "world": <ranks>, "tokenizer_dir": <the embedded model's dir,
used when model.path is empty>}. result.json gets the numbers, or {"error": message, "field": form field,
"longest": tokens of the longest sample when samples are over max_seq_len, "problems": how many problem
samples there are} when the trainer refuses the data or config (a sample longer than max_seq_len, an
unknown mix key): the same refusals a run would meet at start, caught before it is launched. Every problem
sample (the message names the first 20) goes to data_problems.jsonl beside result.json, which the launch
form offers as a CSV.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def plan_numbers(spec: dict) -> dict:
    """The trainer's own data pipeline and bin plan on the files the config names."""
    from trainer.config import RunConfig
    from trainer.embedded import ensure_tokenizer
    from trainer.model import load_tokenizer
    from trainer.plan import build_plan, load_data

    cfg = RunConfig.from_dict(spec["config"])
    model_dir = cfg.model.path or str(ensure_tokenizer(Path(spec["tokenizer_dir"])))
    tokenizer = load_tokenizer(cfg, model_dir)
    data = load_data(cfg, tokenizer)
    plan = build_plan(cfg, data, world=spec["world"])
    return {
        "train_samples": len(data.train),
        "eval_samples": len(data.eval),
        "tokens": sum(len(data.train[i]) for i in data.order),
        "supervised_tokens": sum(data.train[i].n_supervised for i in data.order),
        "bins": len(plan.bins),
        "steps": plan.total_steps,
        "bins_per_step": plan.G,
        "packing_efficiency": plan.packing_efficiency,
        "dropped": len(data.counts.get("dropped", [])),
    }


def error_field(message: str) -> str:
    """The launch-form field a refusal concerns."""
    if "max_seq_len" in message:
        return "data.max_seq_len"
    if message.startswith("mix") or "the mix leaves" in message:
        return "mix"
    return "estimate"


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        out = plan_numbers(spec)
    except (ValueError, OSError) as exc:  # DataError, ConfigError, RenderError are ValueErrors
        from trainer.data import PROBLEMS_FILE, write_problems

        message = str(exc)
        problems = getattr(exc, "problems", [])
        out = {
            "error": message[:4000],
            "field": error_field(message),
            "longest": getattr(exc, "longest", None),
            "problems": len(problems),
        }
        if problems:
            write_problems(Path(argv[1]).parent / PROBLEMS_FILE, problems)
    tmp = Path(argv[1]).with_suffix(".tmp")
    tmp.write_text(json.dumps(out), encoding="utf-8")
    tmp.replace(argv[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
