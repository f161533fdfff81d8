"""Sampling backends benchmark: vLLM through sftlab against bare vLLM and against transformers, in one run.

    .venv/bin/python bench/sampling.py                          # 16 prompts: several minutes on 2 CPUs
    .venv/bin/python bench/sampling.py --prompts 4 --n 1 --skip-launch    # a quick run
    .venv/bin/python bench/sampling.py --skip-backends --launch-task generate   # launch -> first answer, 23 prompts
    .venv/bin/python bench/sampling.py --prompts 8 --n 4 --stream-ab 3   # stream() vs LLM.generate, one engine

The embedded SmolLM2-135M-Instruct answers the same pCLUE chat prompts (/work/shared/data/pclue_train_9.jsonl,
the first --prompts rows, max_new_tokens 64, temperature 0.8, seed 0) for each n in --n, three ways:

- sftlab + vLLM: `python -m trainer.sample` with backend vllm in .venv-vllm, as a sampling job runs it.
  Generation time is the program's own: the done event's seconds minus the start event's load_s (tokenizer,
  prompt rendering and engine load), so engine load is reported apart. Wall time of the process is printed too.
- bare vLLM: a script of a few lines in .venv-vllm calling `vllm.LLM.generate` on the same token ids
  (rendered here by trainer.sampling_spec, as the program renders them) with the same SamplingParams (one per
  prompt, with the program's per-prompt seed) and the same engine arguments; timed around generate only.
- sftlab + transformers: `python -m trainer.sample` with backend transformers in this interpreter.

Each (way, n) is a fresh process, so every one pays its first-call costs alike. Printed: output tokens/s
of each, vLLM-through-sftlab / transformers (target >= 1.4x) and sftlab's overhead over bare vLLM
(target <= 10%). Then, unless --skip-launch, the time from launching a sampling job (POST /api/sampling,
what the form's Launch does) to its first stored answer (polling GET /api/sampling/<id>), for both
backends, on a live uvicorn and Celery worker started as bench/load.py starts them. The program writes each
vLLM answer the engine step it ends, and transformers answers a small batch (8 prompts) at a time, so that
time includes the engine load and the first answer only, not the whole first batch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PCLUE = ROOT.parent / "shared" / "data" / "pclue_train_9.jsonl"
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
MAX_NEW_TOKENS = 64
TEMPERATURE = 0.8
SEED = 0
MAX_MODEL_LEN = 2048
# the program's own engine settings on CPU (trainer/sampling_vllm.py), given to bare vLLM as well
ENGINE = {
    "dtype": "float32",
    "max_model_len": MAX_MODEL_LEN,
    "enforce_eager": True,
    "gpu_memory_utilization": 0.3,
    # as trainer/sampling_vllm.py on CPU: seeded requests prefilled in chunks crash vLLM 0.32 there
    "enable_chunked_prefill": False,
}

BARE_VLLM = """
import json, os, sys, time
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
from vllm import LLM, SamplingParams

job = json.load(open(sys.argv[1]))
t0 = time.perf_counter()
llm = LLM(model=job["model"], seed=job["seed"], **job["engine"])
load_s = time.perf_counter() - t0
params = [SamplingParams(n=job["n"], temperature=job["temperature"], top_p=1.0, top_k=-1,
                         max_tokens=p["max_tokens"], seed=p["seed"]) for p in job["prompts"]]
start = time.perf_counter()
outs = llm.generate([{"prompt_token_ids": p["token_ids"]} for p in job["prompts"]], params, use_tqdm=False)
seconds = time.perf_counter() - start
tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)
print(json.dumps({"load_s": load_s, "seconds": seconds, "tokens": tokens}))
"""


# One engine, alternately: LLM.generate on the program's requests (one SamplingParams per prompt with n, how
# the program called vLLM before it streamed) and the program's own stream(), which drives the engine itself.
STREAM_AB = """
import json, os, sys, time
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
from pathlib import Path
from vllm import SamplingParams
from trainer import sampling_vllm
from trainer.sampling_model import load_tokenizer
from trainer.sampling_spec import max_tokens_for, parse_spec, read_prompts, render_prompts

job = json.load(open(sys.argv[1]))
spec = parse_spec(job["spec"], base=Path.cwd())
tok = load_tokenizer(Path(spec.model_dir))
prompts = render_prompts(spec, read_prompts(spec), tok)
engine = sampling_vllm.load(spec, Path(spec.model_dir), tok)
p = spec.params
for rnd in range(job["rounds"]):
    # alternating which goes first: a later run may find the prompts' blocks in vLLM's prefix cache
    for way in ("generate", "stream") if rnd % 2 == 0 else ("stream", "generate"):
        start = time.perf_counter()
        if way == "generate":
            params = [SamplingParams(n=p.n, temperature=p.temperature, top_p=p.top_p, top_k=p.top_k,
                                     max_tokens=max_tokens_for(spec, pr), seed=pr.seed) for pr in prompts]
            outs = engine.llm.generate([{"prompt_token_ids": pr.token_ids} for pr in prompts], params,
                                       use_tqdm=False)
            first = time.perf_counter() - start  # every answer comes at the end
            texts = {(pr.id, c.index): c.text for pr, o in zip(prompts, outs) for c in o.outputs}
        else:
            texts, first = {}, None
            for g in sampling_vllm.stream(spec, engine, tok, prompts):
                first = first if first is not None else time.perf_counter() - start
                texts[(g["id"], g["index"])] = g["text"]
        seconds = time.perf_counter() - start
        print(json.dumps({"round": rnd, "way": way, "seconds": seconds, "first": first,
                          "texts": sorted(texts.items())}), flush=True)
"""


class Failed(RuntimeError):
    """One (way, n) did not finish; the message is the last line of its error."""


@dataclass
class Measure:
    tokens: int
    seconds: float  # generation only
    load_s: float
    wall_s: float

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


def write_prompts(path: Path, count: int) -> None:
    """The first `count` pCLUE rows as single-turn chat prompts, in the program's prompts-file format."""
    rows = []
    with open(PCLUE, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i == count:
                break
            rows.append({"id": f"p{i}", "messages": [{"role": "user", "content": json.loads(line)["input"]}]})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def spec_for(backend: str, model_dir: Path, n: int) -> dict:
    return {"backend": backend, "model_dir": str(model_dir), "mode": "chat", "prompts_file": "prompts.jsonl",
            "params": {"temperature": TEMPERATURE, "max_new_tokens": MAX_NEW_TOKENS, "n": n, "seed": SEED},
            "max_model_len": MAX_MODEL_LEN, "dtype": "float32", "output": f"{backend}-n{n}.jsonl"}  # fmt: skip


def last_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def run_program(tmp: Path, backend: str, model_dir: Path, n: int) -> Measure:
    """trainer.sample as a sampling job runs it; generation time from its start and done events."""
    spec = spec_for(backend, model_dir, n)
    spec_path = tmp / f"spec-{backend}-n{n}.json"
    spec_path.write_text(json.dumps(spec))
    python = VLLM_PYTHON if backend == "vllm" else Path(sys.executable)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([str(python), "-m", "trainer.sample", "--spec", str(spec_path)], cwd=tmp, env=env,
                          capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - start
    events = [json.loads(line) for line in (tmp / spec["output"]).read_text(encoding="utf-8").splitlines()]
    done = [e for e in events if e["type"] == "done"]
    if proc.returncode != 0 or not done:
        raise Failed(f"exit {proc.returncode}: {last_line(proc.stderr)}")
    first = events[0]
    assert first["type"] == "start", first
    return Measure(done[0]["tokens"], done[0]["seconds"] - first["load_s"], first["load_s"], wall)


def run_bare(tmp: Path, model_dir: Path, n: int) -> Measure:
    """vllm.LLM.generate alone, on the token ids and seeds the program computes for the same prompts."""
    from trainer.sampling_model import load_tokenizer
    from trainer.sampling_spec import max_tokens_for, parse_spec, read_prompts, render_prompts

    spec = parse_spec(spec_for("vllm", model_dir, n), base=tmp)
    prompts = render_prompts(spec, read_prompts(spec), load_tokenizer(model_dir))
    job = {"model": str(model_dir), "seed": SEED, "engine": ENGINE, "n": n, "temperature": TEMPERATURE,
           "prompts": [{"token_ids": p.token_ids, "seed": p.seed, "max_tokens": max_tokens_for(spec, p)}
                       for p in prompts]}  # fmt: skip
    (tmp / "bare.py").write_text(BARE_VLLM)
    (tmp / f"bare-n{n}.json").write_text(json.dumps(job))
    start = time.perf_counter()
    proc = subprocess.run([str(VLLM_PYTHON), "bare.py", f"bare-n{n}.json"], cwd=tmp, capture_output=True,
                          text=True)  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise Failed(f"exit {proc.returncode}: {last_line(proc.stderr)}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return Measure(out["tokens"], out["seconds"], out["load_s"], wall)


WAYS = ("sftlab + vLLM", "bare vLLM", "sftlab + transformers")


def measure(way: str, tmp: Path, model_dir: Path, n: int) -> Measure:
    if way == "bare vLLM":
        return run_bare(tmp, model_dir, n)
    return run_program(tmp, "vllm" if way == "sftlab + vLLM" else "transformers", model_dir, n)


def backends(tmp: Path, model_dir: Path, ns: list[int]) -> list[str]:
    lines = []
    for n in ns:
        ways = {}
        for name in WAYS:
            try:
                m = ways[name] = measure(name, tmp, model_dir, n)
            except Failed as exc:  # one way failing leaves the others' figures standing
                lines.append(f"n={n:<2} {name:<22} FAILED: {exc}")
                print(lines[-1], flush=True)
                continue
            lines.append(
                f"n={n:<2} {name:<22} {m.tokens:>6,} tokens in {m.seconds:6.1f} s = {m.rate:7.1f} tokens/s"
                f"  (load {m.load_s:5.1f} s, process wall {m.wall_s:5.1f} s)"
            )
            print(lines[-1], flush=True)
        if len(ways) < 3:
            continue
        sftlab, bare, hf = (ways[name] for name in WAYS)
        lines.append(
            f"n={n:<2} vLLM through sftlab / transformers: x{sftlab.rate / hf.rate:.2f} (target >= 1.4);"
            f" sftlab's overhead over bare vLLM: {(bare.rate / sftlab.rate - 1) * 100:+.1f}% (target <= 10%)"
        )
        print(lines[-1], flush=True)
    return lines


def first_answer_s(c, dataset_id: int, backend: str, task: str, limit: float = 600) -> float:  # noqa: ANN001
    """Seconds from POST /api/sampling to the first answer GET /api/sampling/<id> shows."""
    body = {"model": "embedded", "dataset_id": dataset_id, "version": 1, "backend": backend,
            "filter": {"task": task},
            "params": {"temperature": TEMPERATURE, "max_new_tokens": MAX_NEW_TOKENS, "n": 1, "seed": SEED}}  # fmt: skip
    start = time.perf_counter()
    r = c.post("/api/sampling", json=body)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    while time.perf_counter() - start < limit:
        detail = c.get(f"/api/sampling/{sid}").json()
        if sum(detail["counts"].values()):
            return time.perf_counter() - start
        if detail["summary"]["status"] in ("failed", "cancelled", "lost"):
            raise SystemExit(
                f"sampling job {sid} ({backend}) {detail['summary']['status']}: {detail['summary']['error']}"
            )
        time.sleep(0.1)
    raise SystemExit(f"no answer from sampling job {sid} ({backend}) after {limit} s")


def launch(tmp: Path, task: str) -> list[str]:
    """A live server and worker (bench/load.py's), pCLUE imported, then one job per backend."""
    import httpx

    from bench.load import start, token_for

    (tmp / "live").mkdir()
    # one worker on the default queue runs sampling jobs too
    srv = start(
        ROOT, tmp / "live", "", {"SFTLAB_SAMPLING_QUEUE": "default", "SFTLAB_VLLM_PYTHON": str(VLLM_PYTHON)}
    )
    try:
        headers = token_for(srv.base)
        code = ("from sqlmodel import Session, select\nfrom app.core.db import get_engine\nfrom app.models import User\n"
                "from tests.runs.conftest import import_pclue\n"
                "with Session(get_engine()) as s:\n    owner = s.exec(select(User).where(User.username == 'admin')).one().id\n"
                "print(import_pclue(owner, name='pclue').dataset_id)\n")  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("SFTLAB_")}
        env.update(SFTLAB_DATA_DIR=str(tmp / "live" / "data"), PYTHONPATH=str(ROOT), SFTLAB_SECRET_KEY="bench",
                   SFTLAB_DATABASE_URL=f"sqlite:///{tmp / 'live' / 'data' / 'sftlab.db'}")  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        dataset_id = int(out.stdout.strip().splitlines()[-1])
        lines = []
        with httpx.Client(base_url=srv.base, headers=headers, timeout=30) as c:
            for backend in ("vllm", "transformers"):
                seconds = first_answer_s(c, dataset_id, backend, task)
                lines.append(
                    f"launch -> first stored answer, {backend:<12}: {seconds:5.1f} s"
                    f" (embedded model, pCLUE's {task} prompts, n=1)"
                )
                print(lines[-1], flush=True)
        return lines
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"importing pCLUE failed: {exc.stderr[-3000:]}") from None
    finally:
        srv.stop()


def stream_ab(tmp: Path, model_dir: Path, n: int, rounds: int) -> list[str]:
    """LLM.generate against the program's stream() in one engine, alternating, `rounds` times each: the
    throughput cost of driving the engine step by step, and when each way has its first answer."""
    spec = {**spec_for("vllm", model_dir, n), "gpu_memory_utilization": ENGINE["gpu_memory_utilization"]}
    (tmp / "stream_ab.py").write_text(STREAM_AB)
    (tmp / f"ab-n{n}.json").write_text(json.dumps({"spec": spec, "rounds": rounds}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(VLLM_PYTHON), "stream_ab.py", f"ab-n{n}.json"], cwd=tmp, env=env,
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"stream A/B failed: {last_line(proc.stderr)}")
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    lines, texts = [], {}
    for r in results:
        texts.setdefault(r["way"], json.dumps(r["texts"]))
        lines.append(
            f"n={n:<2} round {r['round']} {r['way']:<8} {r['seconds']:6.1f} s, first answer after {r['first']:6.1f} s"
        )
        print(lines[-1], flush=True)
    total = {w: sum(r["seconds"] for r in results if r["way"] == w) for w in ("generate", "stream")}
    first = {w: sum(r["first"] for r in results if r["way"] == w) / rounds for w in ("generate", "stream")}
    lines.append(
        f"n={n:<2} stream / LLM.generate: time x{total['stream'] / total['generate']:.2f},"
        f" first answer x{first['stream'] / first['generate']:.2f}; same texts: {texts['stream'] == texts['generate']}"
    )
    print(lines[-1], flush=True)
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=16, help="pCLUE prompts answered by each backend")
    ap.add_argument("--n", type=int, nargs="+", default=[1, 4, 10], help="answers per prompt (each measured)")
    ap.add_argument("--skip-launch", action="store_true", help="skip the launch -> first answer measurement")
    ap.add_argument(
        "--skip-backends", action="store_true", help="only the launch -> first answer measurement"
    )
    ap.add_argument(
        "--launch-task",
        default="anaphora_resolution",
        help="pCLUE task whose prompts the launched jobs answer (anaphora_resolution: 5, generate: 23)",
    )
    ap.add_argument(
        "--stream-ab", type=int, default=0, metavar="ROUNDS",
        help="only: LLM.generate against the program's stream() in one engine, alternating ROUNDS times",
    )  # fmt: skip
    args = ap.parse_args()
    if not VLLM_PYTHON.exists():
        raise SystemExit(f"{VLLM_PYTHON} is missing: `make vllm` builds it")
    from trainer.embedded import ensure_model

    model_dir = Path(ensure_model())
    tmp = Path(tempfile.mkdtemp(prefix="sftlab-bench-sampling-"))
    write_prompts(tmp / "prompts.jsonl", args.prompts)
    print(
        f"settings: {os.cpu_count()} CPUs; {model_dir.name}; {args.prompts} pCLUE chat prompts,"
        f" max_new_tokens {MAX_NEW_TOKENS}, temperature {TEMPERATURE}, seed {SEED}; n in {args.n}; {tmp}",
        flush=True,
    )
    if args.stream_ab:
        for n in args.n:
            stream_ab(tmp, model_dir, n, args.stream_ab)
        return 0
    if not args.skip_backends:
        backends(tmp, model_dir, args.n)
    if not args.skip_launch:
        launch(tmp, args.launch_task)
    return 0


if __name__ == "__main__":
    sys.exit(main())
