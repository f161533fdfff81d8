"""The sampling program: answer a prompts file with a model, as a job the worker starts.

    .venv-vllm/bin/python -m trainer.sample --spec spec.json      # backend "vllm" (its own venv, `make vllm`)
    .venv/bin/python -m trainer.sample --spec spec.json           # backend "transformers"

Run with cwd = the job's directory and PYTHONPATH = the repository root. spec.json (trainer.sampling_spec)
names the backend, the model directory (a LoRA adapter is merged into its base first), the mode (chat:
the messages through the chat template; continuation: the raw text), the prompts file and the output.

Events are appended to the output, one JSON object a line, flushed per line: `start`, then each
`generation` line as soon as that answer is finished (vLLM: the engine step that ends it; transformers: the
end of its small batch), a `progress` line when a prompt has all n answers (at most one per
PROGRESS_EVERY_S, and always the last), then `done`; or an `error` line and a non-zero exit. Generation
lines come in the order answers finish, not the prompts' order. progress.done counts skipped prompts too,
so it reaches total. done.seconds, load_s and first_answer_s count from the program's start (imports
excluded); the launch form's estimate (app.sampling.estimate) reads them. Exit codes: 0 success, 2 bad input (spec,
model directory, prompts), 1 anything else (vLLM refusing a checkpoint included).

This module imports only torch, transformers and the stdlib at module level, so that it loads inside
.venv-vllm, which has none of the platform's packages; vllm itself is imported by its backend only. The
engine is built inside main(): vLLM may start worker processes by spawn, which re-import __main__.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

from trainer.sampling_spec import SampleSpec, SpecError, parse_spec, read_prompts, render_prompts

# Each progress line becomes a JobEvent row (and a job update): one per finished prompt would be thousands.
PROGRESS_EVERY_S = 0.5


class Events:
    """The output file, appended to and flushed line by line (the worker tails it)."""

    def __init__(self, path: Path):
        self.fh: IO[str] = open(path, "a", encoding="utf-8")

    def write(self, kind: str, **fields: Any) -> None:
        self.fh.write(json.dumps({"type": kind, **fields}, ensure_ascii=False) + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def _backend(name: str) -> Any:
    if name == "vllm":
        from trainer import sampling_vllm

        return sampling_vllm
    from trainer import sampling_hf

    return sampling_hf


def run(spec: SampleSpec, events: Events) -> None:
    """Load, then answer the prompts not in skip_ids, writing each answer as the backend finishes it."""
    from trainer.sampling_model import load_tokenizer

    t0 = time.perf_counter()
    model_dir = Path(spec.model_dir)
    tokenizer = load_tokenizer(model_dir)
    rows = read_prompts(spec)
    skip = set(spec.skip_ids)
    todo = render_prompts(spec, [r for r in rows if r["id"] not in skip], tokenizer)
    skipped = len(rows) - len(todo)
    backend = _backend(spec.backend)
    engine = backend.load(spec, model_dir, tokenizer)
    try:
        load_s = time.perf_counter() - t0
        events.write(
            "start",
            backend=backend.NAME,
            backend_version=backend.version(),
            model_dir=spec.model_dir,
            mode=spec.mode,
            params=spec.params_dict(),
            prompts=len(rows),
            skipped=skipped,
            load_s=round(load_s, 3),
        )
        generations = tokens = 0
        done = skipped
        answers: Counter[str] = Counter()
        last_progress = -PROGRESS_EVERY_S
        first_answer_s = None
        for g in backend.stream(spec, engine, tokenizer, todo):
            events.write("generation", **g)
            if first_answer_s is None:
                first_answer_s = round(time.perf_counter() - t0, 3)
            generations += 1
            tokens += g["tokens"]
            answers[g["id"]] += 1
            if answers[g["id"]] < spec.params.n:
                continue
            done += 1
            now = time.perf_counter()
            if done == len(rows) or now - last_progress >= PROGRESS_EVERY_S:
                events.write("progress", done=done, total=len(rows), tokens=tokens)
                last_progress = now
        events.write(
            "done",
            prompts=len(todo),
            generations=generations,
            tokens=tokens,
            seconds=round(time.perf_counter() - t0, 3),
            load_s=round(load_s, 3),
            first_answer_s=first_answer_s,
        )
    finally:
        close = getattr(engine, "close", None)
        if close is not None:
            close()


def _fail(events: Events | None, message: str, code: int) -> int:
    line = " ".join(message.split())
    print(f"trainer.sample: {line}", file=sys.stderr)
    if events is not None:
        events.write("error", message=line)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.sample", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="spec.json (relative paths inside are taken from cwd)")
    args = parser.parse_args(argv)
    events = None
    try:
        spec_path = Path(args.spec)
        try:
            raw = json.loads(spec_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SpecError(f"spec not found: {spec_path}") from None
        except json.JSONDecodeError as exc:
            raise SpecError(f"{spec_path} is not JSON: {exc.msg} (line {exc.lineno})") from None
        if isinstance(raw, dict) and isinstance(raw.get("output"), str) and raw["output"]:
            events = Events(Path.cwd() / raw["output"])
        spec = parse_spec(raw, base=Path.cwd())
        assert events is not None  # parse_spec requires output
        run(spec, events)
    except SpecError as exc:
        return _fail(events, str(exc), 2)
    except Exception as exc:
        return _fail(events, str(exc) or type(exc).__name__, 1)
    finally:
        if events is not None:
            events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
