"""The vLLM backend (runs inside .venv-vllm; vllm is imported only here, when the backend loads).

The engine core runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0): a checkpoint vLLM refuses then
raises here with vLLM's own reason, instead of "engine core initialization failed" while the reason goes to
a child's stderr; offline batch generation gains nothing from the extra process.

Streaming: `stream` drives the engine itself (add_request, then step() until nothing is left) instead of
calling LLM.generate, which returns only when its last request ends. The engine still batches every
request in flight at each step, so throughput is generate()'s, but each answer is yielded the step it
finishes. Requests are fed WINDOW at a time so a large set starts generating at once rather than after
all of it was queued.

Each (prompt, index) is its own n=1 request seeded with the prompt's seed + index: exactly what vLLM does
for the children of an n>1 request (ParentRequest gives child k seed + k), but each child is reported when
it ends instead of when all n have. A prompt's answers therefore do not depend on the batch it lands in.
Timing comes from the engine's per-request stats (log stats on): ttft_s is vLLM's first token latency
(from the request's arrival, queueing included), tpot_s the mean gap between output tokens, time_s the two
together. Without stats, see _timing.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import torch

from trainer.sampling_spec import Prompt, SampleSpec, max_tokens_for

NAME = "vllm"
# Requests handed to the engine ahead of its running batch: enough to keep every slot busy (vLLM's own
# max_num_seqs is 256 at most on these machines) without queueing tens of thousands before the first step.
WINDOW = 1024


class EngineRefused(RuntimeError):
    """vLLM would not load the checkpoint; the message is vLLM's reason on one line."""


def version() -> str:
    import vllm

    return vllm.__version__


class Engine:
    def __init__(self, llm: Any, cleanup: Any):
        self.llm, self.cleanup = llm, cleanup

    def close(self) -> None:
        if self.cleanup is not None:
            shutil.rmtree(self.cleanup, ignore_errors=True)


def load(spec: SampleSpec, model_dir: Any, tokenizer: Any) -> Engine:
    from trainer.sampling_model import merged_dir

    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM

    path, cleanup = merged_dir(model_dir, spec.dtype, tokenizer)
    gmu = spec.gpu_memory_utilization
    if gmu is None:
        # on CPU this is the share of host RAM kept for the KV cache; vLLM's default 0.92 refuses to start
        gmu = 0.85 if torch.cuda.is_available() else 0.3
    try:
        llm = LLM(
            model=str(path),
            dtype=spec.dtype,
            max_model_len=spec.max_model_len,
            enforce_eager=True,
            gpu_memory_utilization=gmu,
            seed=spec.params.seed,
            disable_log_stats=False,
            # vLLM 0.32 on CPU crashes ("CPU Generator does not use offset") when a seeded request's
            # prompt is prefilled in chunks, which happens once a batch's prompts exceed the step's token
            # budget (8 prompts x n=10 did): prefill whole prompts there. CUDA generators take offsets.
            enable_chunked_prefill=torch.cuda.is_available(),
        )
    except Exception as exc:
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
        reason = " ".join(str(exc).split())
        # an unknown architecture lists every supported one: a few hundred characters say enough
        reason = reason if len(reason) <= 400 else reason[:400] + "..."
        raise EngineRefused(f"vLLM refused {model_dir}: {reason}") from exc
    return Engine(llm, cleanup)


def _timing(metrics: Any, tokens: int, elapsed_s: float) -> tuple[float, float, float]:
    """(ttft_s, tpot_s, time_s) from vLLM's RequestStateStats.

    Without stats (a vLLM that does not fill them), the time since streaming began spread over the tokens.
    """
    if metrics is None or not metrics.first_token_ts:
        tpot = elapsed_s / max(tokens, 1)
        return round(tpot, 6), round(tpot, 6), round(elapsed_s, 6)
    ttft = metrics.first_token_latency
    decode = max(metrics.last_token_ts - metrics.first_token_ts, 0.0)
    tpot = decode / (tokens - 1) if tokens > 1 else 0.0
    return round(ttft, 6), round(tpot, 6), round(ttft + decode, 6)


def _requests(spec: SampleSpec, prompts: list[Prompt]) -> Iterator[tuple[str, Prompt, Any]]:
    """(request id, prompt, SamplingParams) per (prompt, index), in prompt then index order."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    p = spec.params
    for i, pr in enumerate(prompts):
        for k in range(p.n):
            params = SamplingParams(
                n=1,
                temperature=p.temperature,
                top_p=p.top_p,
                top_k=p.top_k,
                max_tokens=max_tokens_for(spec, pr),
                seed=pr.seed + k,
                stop=list(p.stop),
                # as LLM.generate sets it: no per-step outputs (and detokenized text) for unfinished requests
                output_kind=RequestOutputKind.FINAL_ONLY,
            )
            yield f"{i}:{k}", pr, params


def stream(spec: SampleSpec, engine: Engine, tokenizer: Any, prompts: list[Prompt]) -> Iterator[dict]:
    """Every (prompt, index) answer, each yielded as soon as the engine finishes it (see module doc)."""
    llm_engine = engine.llm.llm_engine
    pending = _requests(spec, prompts)
    inflight: dict[str, tuple[Prompt, int]] = {}
    start = time.perf_counter()
    while True:
        while len(inflight) < WINDOW and (req := next(pending, None)) is not None:
            rid, pr, params = req
            llm_engine.add_request(rid, {"prompt_token_ids": pr.token_ids}, params)
            inflight[rid] = (pr, int(rid.rsplit(":", 1)[1]))
        if not inflight:
            return
        if not llm_engine.has_unfinished_requests():
            raise RuntimeError(f"vLLM dropped {len(inflight)} requests without finishing them")
        for out in llm_engine.step():
            if not out.finished:
                continue
            pr, index = inflight.pop(out.request_id)
            (comp,) = out.outputs
            tokens = len(comp.token_ids)
            ttft, tpot, total = _timing(out.metrics, tokens, time.perf_counter() - start)
            yield {
                "id": pr.id,
                "index": index,
                "prompt_text": pr.text,
                "prompt_tokens": len(pr.token_ids),
                "text": comp.text,
                "tokens": tokens,
                "finish_reason": "stop" if comp.finish_reason == "stop" else "length",
                "ttft_s": ttft,
                "tpot_s": tpot,
                "time_s": total,
            }
