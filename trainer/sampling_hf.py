"""The transformers backend: `generate` on left-padded batches, one row per (prompt, sample index).

Reproducibility: rows do not share the global RNG. `RowSampler` applies temperature, top-k and top-p
itself and draws each row's token with that row's own torch.Generator (seeded from the prompt's seed and
the sample index), then hands `generate` a one-hot score so its greedy step picks exactly that token. A
prompt's answers are therefore the same whatever batch it lands in, and after a resume with skip_ids.

Timing: `RowStopper` is called once per decoding step, after the step's token is appended, and records the
time. A row's ttft_s is the time from the batch's start to the step that produced its first token (the
batch's prefill included), time_s to the step of its last token, tpot_s the mean time per token between.
Rows in one batch share those clocks, as requests in one vLLM batch do.

Streaming: generate() returns a batch only when its longest row ends, so answers reach the events file a
batch at a time. `stream` therefore cuts the prompts into small batches (spec.batch_size, 8 by default):
the first answers come after one small batch instead of after 64 prompts, at the price of fewer rows per
forward pass (on a GPU, lower throughput; on a CPU, where a batch's rows cost nearly their sum anyway,
little) and of each batch waiting for its own longest row. Use vLLM where both matter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from trainer.sampling_spec import Prompt, SampleSpec, max_tokens_for

NAME = "transformers"


def version() -> str:
    import transformers

    return transformers.__version__


@dataclass
class Row:
    prompt: Prompt
    index: int
    limit: int


class RowSampler:
    """Logits processor: per-row temperature/top-k/top-p sampling with per-row generators (see module doc)."""

    def __init__(self, rows: list[Row], temperature: float, top_p: float, top_k: int, device: torch.device):
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.generators = []
        for row in rows:
            g = torch.Generator(device=device)
            g.manual_seed(row.prompt.seed * 1009 + row.index)
            self.generators.append(g)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        logits = scores.float() / self.temperature
        if self.top_k > 0:
            kth = torch.topk(logits, min(self.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            probs = sorted_logits.softmax(dim=-1)
            # drop a token once the tokens before it already reach top_p (the first token always stays)
            drop = probs.cumsum(dim=-1) - probs >= self.top_p
            logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
        probs = logits.softmax(dim=-1)
        chosen = torch.cat(
            [torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self.generators)]
        )
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(-1, chosen[:, None], 0.0)


class RowStopper:
    """Stopping criterion: ends each row at EOS, a stop string or its own token limit; stamps every step."""

    def __init__(
        self, rows: list[Row], prompt_width: int, eos_ids: set[int], stop: list[str], tokenizer: Any
    ):
        self.rows, self.width, self.eos, self.stop, self.tok = rows, prompt_width, eos_ids, stop, tokenizer
        self.ends: list[int | None] = [None] * len(rows)
        self.reasons: list[str] = ["length"] * len(rows)
        self.stamps: list[float] = []
        # enough tokens to hold the longest stop string, whatever the tokenization
        self.tail = max((len(s) for s in stop), default=0) + 8

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        self.stamps.append(time.perf_counter())
        gen = input_ids[:, self.width :]
        step = gen.shape[1]
        for i, row in enumerate(self.rows):
            if self.ends[i] is not None:
                continue
            last = int(gen[i, -1])
            if last in self.eos:
                self.ends[i], self.reasons[i] = step, "stop"
            elif self.stop and any(s in self.tok.decode(gen[i, -self.tail :]) for s in self.stop):
                self.ends[i], self.reasons[i] = step, "stop"
            elif step >= row.limit:
                self.ends[i] = step
        done = [e is not None for e in self.ends]
        return torch.tensor(done, device=input_ids.device)


def load(spec: SampleSpec, model_dir: Any, tokenizer: Any) -> Any:
    """The model, with a bare generation config holding only its EOS ids.

    generate() fills whatever its caller leaves unset from model.generation_config, so a repetition
    penalty or n-gram ban saved with the checkpoint would shape answers here but not in vLLM, which
    samples with exactly the SamplingParams it is given.
    """
    from transformers import GenerationConfig

    from trainer.sampling_model import load_model

    model = load_model(model_dir, spec.dtype)
    model.generation_config = GenerationConfig(eos_token_id=sorted(_eos_ids(model, tokenizer)) or None)
    return model


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def _cut_at_stop(text: str, stop: list[str]) -> str:
    hits = [text.index(s) for s in stop if s in text]
    return text[: min(hits)] if hits else text


def generate(spec: SampleSpec, model: Any, tokenizer: Any, prompts: list[Prompt]) -> list[dict]:
    """Every (prompt, index) answer of this batch of prompts, in prompt then index order."""
    from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

    p = spec.params
    rows = [Row(pr, k, max_tokens_for(spec, pr)) for pr in prompts for k in range(p.n)]
    width = max(len(r.prompt.token_ids) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):  # left padding: every row's last prompt token sits at the same position
        n = len(r.prompt.token_ids)
        ids[i, width - n :] = torch.tensor(r.prompt.token_ids)
        mask[i, width - n :] = 1
    device = model.device
    eos = _eos_ids(model, tokenizer)
    stopper = RowStopper(rows, width, eos, p.stop, tokenizer)
    processors = [] if p.temperature == 0 else [RowSampler(rows, p.temperature, p.top_p, p.top_k, device)]
    config = GenerationConfig(
        max_new_tokens=max(r.limit for r in rows),
        do_sample=False,
        num_beams=1,
        pad_token_id=pad,
        eos_token_id=sorted(eos) or None,
    )
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            generation_config=config,
            logits_processor=LogitsProcessorList(processors),
            stopping_criteria=StoppingCriteriaList([stopper]),
        )
    gen = out[:, width:].cpu()
    results = []
    for i, r in enumerate(rows):
        end = stopper.ends[i] or gen.shape[1]
        tokens = gen[i, :end].tolist()
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        first, last = stopper.stamps[0], stopper.stamps[end - 1]
        results.append(
            {
                "id": r.prompt.id,
                "index": r.index,
                "prompt_text": r.prompt.text,
                "prompt_tokens": len(r.prompt.token_ids),
                "text": _cut_at_stop(text, p.stop),
                "tokens": len(tokens),
                "finish_reason": stopper.reasons[i],
                "ttft_s": round(first - start, 6),
                "tpot_s": round((last - first) / (end - 1), 6) if end > 1 else 0.0,
                "time_s": round(last - start, 6),
            }
        )
    return results


def stream(spec: SampleSpec, model: Any, tokenizer: Any, prompts: list[Prompt]) -> Iterator[dict]:
    """Every (prompt, index) answer, a batch of spec.batch_size prompts at a time (see module doc)."""
    for i in range(0, len(prompts), spec.batch_size):
        yield from generate(spec, model, tokenizer, prompts[i : i + spec.batch_size])
