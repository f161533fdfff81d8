"""Helpers for the sampling program's tests: a tiny model, pCLUE prompts files, specs, and running the program."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.trainer.tiny_run import PCLUE, REPO, make_tiny_model_dir

VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"


def tiny_model(out: Path) -> Path:
    """hidden 256 with 4 heads: head_dim 64, since vLLM's CPU attention refuses head_dim 16 (hidden 64)."""
    return make_tiny_model_dir(out, hidden=256)


def lively_model(out: Path) -> Path:
    """tiny_model with its weights (not norms) tripled: at the default init a random model's greedy answer
    is one token repeated, which two backends agree on trivially; tripled, it wanders (24 different tokens
    in 24), so agreement means the same logits step after step."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (out / "config.json").is_file():
        return out
    base = tiny_model(out.with_name(out.name + "-base"))
    model = AutoModelForCausalLM.from_pretrained(str(base))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.mul_(3.0)
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(out))
    return out


def pclue_prompts(out: Path, n: int, *, mode: str = "chat") -> Path:
    """The first n pCLUE inputs as a prompts file, ids p0..p(n-1)."""
    rows = []
    with open(PCLUE, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i == n:
                break
            text = json.loads(line)["input"]
            body = {"messages": [{"role": "user", "content": text}]} if mode == "chat" else {"text": text}
            rows.append({"id": f"p{i}", **body})
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return out


def spec(model_dir: Path, *, backend: str = "transformers", **overrides) -> dict:
    params = {
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": -1,
        "max_new_tokens": 6,
        "n": 1,
        "seed": 0,
        "stop": [],
    }
    params.update(overrides.pop("params", {}))
    out = {
        "backend": backend,
        "model_dir": str(model_dir),
        "mode": "chat",
        "prompts_file": "prompts.jsonl",
        "chat_template_file": "",
        "system_prompt": None,
        "params": params,
        "skip_ids": [],
        "max_model_len": 512,
        "dtype": "float32",
        "output": "generations.jsonl",
    }
    if backend == "vllm":
        # the worker's budget on CPU (host RAM); the default 0.3 would reserve 7 GB on a shared test box
        out["gpu_memory_utilization"] = 0.1
    out.update(overrides)
    return out


def run_program(
    job: Path, spec_: dict, *, in_process: bool = False, timeout: int = 600
) -> tuple[int, list[dict], str]:
    """Run `python -m trainer.sample` as the worker does (cwd = job dir); (exit code, events, stderr).

    in_process calls its main() here instead (transformers only): the same code path without the 5-20 s
    of importing torch and transformers again on a busy 2-core box.
    """
    (job / "spec.json").write_text(json.dumps(spec_), encoding="utf-8")
    if in_process:
        return _run_in_process(job, spec_)
    python = str(VLLM_PYTHON) if spec_["backend"] == "vllm" else sys.executable
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    p = subprocess.run(
        [python, "-m", "trainer.sample", "--spec", "spec.json"],
        cwd=job,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return p.returncode, _events(job / spec_["output"]), p.stderr


def watch_program(job: Path, spec_: dict, *, timeout: int = 600) -> tuple[int, list[dict], list[int]]:
    """run_program as a subprocess, reading the output file while it runs: (exit code, events, the number of
    generation lines each read found while the process was still alive)."""
    (job / "spec.json").write_text(json.dumps(spec_), encoding="utf-8")
    python = str(VLLM_PYTHON) if spec_["backend"] == "vllm" else sys.executable
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out, seen = job / spec_["output"], []
    with open(job / "stderr.txt", "w") as err:
        proc = subprocess.Popen(
            [python, "-m", "trainer.sample", "--spec", "spec.json"], cwd=job, env=env, stderr=err
        )
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            text = out.read_text(encoding="utf-8") if out.is_file() else ""
            lines = text.splitlines()[: text.count("\n")]  # complete lines only
            count = sum(json.loads(line)["type"] == "generation" for line in lines)
            if proc.poll() is None:  # counted while it still ran
                seen.append(count)
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
    return code, _events(out), seen


def check_progress(events: list[dict], *, total: int, skipped: int, n: int) -> None:
    """Each progress line counts the prompts with all n answers before it (skipped ones too); the last is
    total, and it comes right before done."""
    answers: Counter[str] = Counter()
    complete = skipped
    progress = []
    for e in events:
        if e["type"] == "generation":
            answers[e["id"]] += 1
            complete += answers[e["id"]] == n
        elif e["type"] == "progress":
            assert (e["done"], e["total"]) == (complete, total)
            progress.append(e["done"])
    assert progress == sorted(set(progress)) and progress[-1] == total
    assert [e["type"] for e in events[-2:]] == ["progress", "done"]


def _run_in_process(job: Path, spec_: dict) -> tuple[int, list[dict], str]:
    from trainer import sample

    err, cwd = io.StringIO(), os.getcwd()
    os.chdir(job)
    try:
        with contextlib.redirect_stderr(err):
            code = sample.main(["--spec", "spec.json"])
    finally:
        os.chdir(cwd)
    return code, _events(job / spec_["output"]), err.getvalue()


def _events(path: Path) -> list[dict]:
    return (
        [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []
    )


def generations(events: list[dict]) -> dict[tuple[str, int], dict]:
    return {(e["id"], e["index"]): e for e in events if e["type"] == "generation"}
