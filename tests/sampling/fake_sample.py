"""A stand-in for trainer/sample.py that follows the same contract (spec.json in, generations.jsonl out)
without a model: answers are deterministic functions of the prompt id, index and seed.

Knobs, from the environment (which the worker passes to its children): FAKE_SAMPLE_DELAY, seconds per
prompt (to cancel or kill it mid-way); FAKE_SAMPLE_FAIL, a message to end with as an error event.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path


def answer(prompt_id: str, index: int, seed: int) -> str:
    # Markup on purpose: the results page must show it as text.
    return f"<i>answer</i> {prompt_id}.{index} seed {seed}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    spec = json.loads(Path(parser.parse_args().spec).read_text(encoding="utf-8"))
    out = open(spec["output"], "a", encoding="utf-8")  # noqa: SIM115 - held for the whole run

    def emit(event: dict) -> None:
        out.write(json.dumps(event, ensure_ascii=False) + "\n")
        out.flush()

    try:
        prompts = [
            json.loads(line) for line in Path(spec["prompts_file"]).read_text(encoding="utf-8").splitlines()
        ]
    except (OSError, ValueError) as exc:
        emit({"type": "error", "message": f"cannot read the prompts: {exc}"})
        return 2
    params, skip = spec["params"], set(spec["skip_ids"])
    emit({"type": "start", "backend": spec["backend"], "backend_version": "fake-1.0", "model_dir": spec["model_dir"],
          "params": params, "prompts": len(prompts), "skipped": len(skip & {p["id"] for p in prompts})})  # fmt: skip
    delay = float(os.environ.get("FAKE_SAMPLE_DELAY", "0"))
    done = len(skip & {p["id"] for p in prompts})
    generations = tokens = 0
    started = time.monotonic()
    for prompt in prompts:
        if prompt["id"] in skip:
            continue
        if spec["mode"] == "chat":
            system = [{"role": "system", "content": spec["system_prompt"]}] if spec["system_prompt"] else []
            text = "\n".join(f"{m['role']}: {m['content']}" for m in system + prompt["messages"])
        else:
            text = prompt["text"]
        for k in range(params["n"]):
            body = answer(prompt["id"], k, params["seed"])
            cut = int(prompt["id"]) % 3 == 0
            n_tokens = params["max_new_tokens"] if cut else len(body.split())
            emit({"type": "generation", "id": prompt["id"], "index": k, "prompt_text": text,
                  "prompt_tokens": len(text), "text": body, "tokens": n_tokens,
                  "finish_reason": "length" if cut else "stop", "ttft_s": 0.01, "tpot_s": 0.001, "time_s": 0.02})  # fmt: skip
            generations += 1
            tokens += n_tokens
        done += 1
        emit({"type": "progress", "done": done, "total": len(prompts), "tokens": tokens})
        time.sleep(delay)
    if message := os.environ.get("FAKE_SAMPLE_FAIL"):
        emit({"type": "error", "message": message})
        return 1
    emit({"type": "done", "prompts": done, "generations": generations, "tokens": tokens,
          "seconds": time.monotonic() - started})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
