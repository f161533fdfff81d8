"""The vLLM backend (run by .venv-vllm's python, as the worker does) keeps the same contract and seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tests.sampling.sample_run import (
    VLLM_PYTHON,
    check_progress,
    generations,
    pclue_prompts,
    run_program,
    spec,
    tiny_model,
    watch_program,
)

pytestmark = pytest.mark.slow

N_PROMPTS = 5
MAX_NEW = 6


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    assert VLLM_PYTHON.is_file(), "no .venv-vllm: `make vllm` builds it (make test does first)"
    return tiny_model(tmp_path_factory.mktemp("vllm-model") / "tiny")


@pytest.fixture(scope="module")
def runs(model_dir, tmp_path_factory):
    """Two engine runs of one sampled spec: p1 skipped, then all prompts (batch_size is transformers')."""
    job = tmp_path_factory.mktemp("vllm-job")
    pclue_prompts(job / "prompts.jsonl", N_PROMPTS)
    s = spec(model_dir, backend="vllm", params={"n": 3, "seed": 7}, skip_ids=["p1"], batch_size=2)
    code, first, stderr = run_program(job, s)
    assert code == 0, stderr[-4000:]
    code, second, stderr = run_program(
        job, {**s, "skip_ids": [], "batch_size": 64, "output": "resumed.jsonl"}
    )
    assert code == 0, stderr[-4000:]
    return job, s, first, second


def test_events_follow_the_contract(runs, model_dir):
    _, s, events, _ = runs
    kinds = [e["type"] for e in events]
    start = events[0]
    assert start["type"] == "start" and start["backend"] == "vllm" and start["backend_version"] == "0.32.0"
    assert (start["prompts"], start["skipped"], start["params"]) == (N_PROMPTS, 1, s["params"])
    assert kinds.count("generation") == 12 and kinds[-1] == "done"
    check_progress(events, total=N_PROMPTS, skipped=1, n=3)
    done = events[-1]
    assert (done["prompts"], done["generations"], done["tokens"]) == (4, 12, 12 * MAX_NEW)


def test_generations(runs, model_dir):
    job, _, events, _ = runs
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    rows = {
        r["id"]: r for r in map(json.loads, (job / "prompts.jsonl").read_text(encoding="utf-8").splitlines())
    }
    gens = generations(events)
    assert sorted(gens) == [(pid, k) for pid in ("p0", "p2", "p3", "p4") for k in range(3)]
    assert len({gens[("p0", k)]["text"] for k in range(3)}) == 3
    for g in gens.values():
        expected = tok.apply_chat_template(
            rows[g["id"]]["messages"], add_generation_prompt=True, tokenize=False
        )
        assert g["prompt_text"] == expected
        assert g["prompt_tokens"] == len(tok(expected, add_special_tokens=False)["input_ids"])
        assert (g["tokens"], g["finish_reason"]) == (MAX_NEW, "length")
        # vLLM's own request stats (disable_log_stats=False), not zeros
        assert 0 < g["ttft_s"] <= g["time_s"] and g["tpot_s"] > 0


def test_same_seed_same_texts_after_resume(runs):
    """Seeds are per prompt: a run with other batches and no skip repeats every answer of the first."""
    _, _, first, second = runs
    a, b = generations(first), generations(second)
    assert len(b) == N_PROMPTS * 3
    assert {k: g["text"] for k, g in a.items()} == {k: b[k]["text"] for k in a}


def test_a_checkpoint_vllm_refuses_is_one_error_line(model_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in model_dir.iterdir():
        (bad / f.name).symlink_to(f)
    (bad / "config.json").unlink()
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    (bad / "config.json").write_text(
        json.dumps({**config, "architectures": ["NoSuchForCausalLM"]}), encoding="utf-8"
    )
    pclue_prompts(tmp_path / "prompts.jsonl", 1)
    code, events, stderr = run_program(tmp_path, spec(bad, backend="vllm"))
    assert code == 1
    assert [e["type"] for e in events] == ["error"]
    message = events[0]["message"]
    assert message.startswith(f"vLLM refused {bad}: ")
    assert "['NoSuchForCausalLM'] are not supported" in message
    assert "\n" not in message and len(message) < 600


def test_many_seeded_answers_in_one_batch_each_written_when_it_ends(model_dir, tmp_path):
    """12 prompts x n=10 in one engine run exceed a step's token budget; vLLM 0.32 on CPU then prefilled
    seeded requests in chunks and crashed ("CPU Generator does not use offset"). Whole prompts are prefilled
    now. And each answer is written the step it ends: p9 (809 prompt tokens) has room for 4 tokens within
    max_model_len, the others get 48, so p9's ten answers are the first lines, written while the program
    still runs, where LLM.generate wrote every line, in prompt order, after the last request."""
    pclue_prompts(tmp_path / "prompts.jsonl", 12)
    s = spec(
        model_dir,
        backend="vllm",
        params={"n": 10, "seed": 1, "max_new_tokens": 48},
        max_model_len=813,
    )
    code, events, seen = watch_program(tmp_path, s)
    assert code == 0, (tmp_path / "stderr.txt").read_text()[-4000:]
    gens = [e for e in events if e["type"] == "generation"]
    assert len(generations(events)) == 120
    assert {g["id"] for g in gens[:10]} == {"p9"} and all(g["tokens"] == 4 for g in gens[:10])
    assert all(g["tokens"] == 48 for g in gens[10:])
    assert any(0 < count < 120 for count in seen), seen
    check_progress(events, total=12, skipped=0, n=10)
