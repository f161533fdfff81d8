"""Greedy answers of vLLM equal transformers' on the same checkpoint and prompts (first tokens at least)."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tests.sampling.sample_run import VLLM_PYTHON, generations, lively_model, pclue_prompts, run_program, spec

pytestmark = pytest.mark.slow

N_PROMPTS = 6
MAX_NEW = 24
# fp32 on both sides, but different kernels: on a random model two logits can be near ties, and one flip
# changes everything after it. The first tokens must agree; the rest is printed.
MUST_AGREE = 8


def _first_difference(a: list[int], b: list[int]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def test_greedy_vllm_equals_transformers(tmp_path_factory):
    assert VLLM_PYTHON.is_file(), "no .venv-vllm: `make vllm` builds it (make test does first)"
    model_dir: Path = lively_model(tmp_path_factory.mktemp("greedy-model") / "tiny")
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    answers = {}
    for backend in ("vllm", "transformers"):
        job = tmp_path_factory.mktemp(f"greedy-{backend}")
        pclue_prompts(job / "prompts.jsonl", N_PROMPTS)
        s = spec(
            model_dir, backend=backend, params={"temperature": 0.0, "max_new_tokens": MAX_NEW}, batch_size=3
        )
        code, events, stderr = run_program(job, s, in_process=backend == "transformers")
        assert code == 0, stderr[-4000:]
        answers[backend] = generations(events)
    assert (
        sorted(answers["vllm"]) == sorted(answers["transformers"]) == [(f"p{i}", 0) for i in range(N_PROMPTS)]
    )
    for key, v in answers["vllm"].items():
        t = answers["transformers"][key]
        assert v["prompt_text"] == t["prompt_text"] and v["prompt_tokens"] == t["prompt_tokens"]
        # events carry text, not ids: re-tokenized, equal texts give equal ids and the first difference
        # lands at (or within a token of) the first differing generated token
        v_ids = tok(v["text"], add_special_tokens=False)["input_ids"]
        t_ids = tok(t["text"], add_special_tokens=False)["input_ids"]
        diff = _first_difference(v_ids, t_ids)
        print(
            f"{key[0]}: first differing token {diff} of {len(v_ids)}; vllm {v['text']!r} transformers {t['text']!r}"
        )
        assert diff is None or diff >= MUST_AGREE, f"{key[0]} differs at token {diff}"
        assert len(set(v_ids)) > MUST_AGREE  # the model does wander (see lively_model)
