"""The sampling program's transformers backend keeps the worker contract: events, indexes, seeds, modes, resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tests.sampling.sample_run import (
    check_progress,
    generations,
    pclue_prompts,
    run_program,
    spec,
    tiny_model,
    watch_program,
)
from trainer import sample

N_PROMPTS = 5
MAX_NEW = 6


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("sample-model") / "tiny")


@pytest.fixture(scope="module")
def contract_run(model_dir, tmp_path_factory):
    """One run as the worker starts it: 5 chat prompts, n=3, p1 already answered, batches of 2 prompts."""
    job = tmp_path_factory.mktemp("job")
    pclue_prompts(job / "prompts.jsonl", N_PROMPTS)
    s = spec(model_dir, params={"n": 3, "seed": 1}, skip_ids=["p1"], batch_size=2)
    code, events, stderr = run_program(job, s)  # a subprocess, as the worker starts it
    assert code == 0, stderr
    return job, s, events


def _job(tmp_path: Path, n: int = N_PROMPTS, mode: str = "chat") -> Path:
    pclue_prompts(tmp_path / "prompts.jsonl", n, mode=mode)
    return tmp_path


def test_events_follow_the_contract(contract_run, model_dir):
    _, s, events = contract_run
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert all(list(e)[0] == "type" for e in events)
    start = events[0]
    assert start["backend"] == "transformers" and start["backend_version"]
    assert start["model_dir"] == str(model_dir)
    assert start["params"] == s["params"]
    assert (start["prompts"], start["skipped"]) == (N_PROMPTS, 1)
    # the first prompt done writes progress at once; later ones at most every PROGRESS_EVERY_S, the last always
    assert kinds[1:5] == ["generation"] * 3 + ["progress"]
    assert kinds.count("generation") == 12
    check_progress(events, total=N_PROMPTS, skipped=1, n=3)
    progress = [e for e in events if e["type"] == "progress"]
    gens = [e for e in events if e["type"] == "generation"]
    assert progress[-1]["tokens"] == sum(g["tokens"] for g in gens)
    done = events[-1]
    assert (done["prompts"], done["generations"], done["tokens"]) == (4, 12, progress[-1]["tokens"])
    assert done["seconds"] > 0
    # when the first answer was written, from the program's start: after loading, before the end
    assert done["load_s"] < done["first_answer_s"] <= done["seconds"]


def test_n_gives_indexes_per_prompt_and_skip_ids_are_skipped(contract_run):
    _, _, events = contract_run
    gens = generations(events)
    assert sorted(gens) == [(pid, k) for pid in ("p0", "p2", "p3", "p4") for k in range(3)]
    assert len({gens[("p0", k)]["text"] for k in range(3)}) == 3


def test_generation_fields(contract_run, model_dir):
    job, _, events = contract_run
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    rows = {
        r["id"]: r for r in map(json.loads, (job / "prompts.jsonl").read_text(encoding="utf-8").splitlines())
    }
    for g in generations(events).values():
        expected = tok.apply_chat_template(
            rows[g["id"]]["messages"], add_generation_prompt=True, tokenize=False
        )
        assert g["prompt_text"] == expected
        assert g["prompt_text"].endswith("<|im_start|>assistant\n")
        assert g["prompt_tokens"] == len(tok(expected, add_special_tokens=False)["input_ids"])
        # a random model does not say EOS within 6 tokens: every answer hits max_new_tokens
        assert (g["tokens"], g["finish_reason"]) == (MAX_NEW, "length")
        assert 0 < g["ttft_s"] <= g["time_s"] and g["tpot_s"] > 0


def test_same_seed_same_texts_whatever_the_batch_or_resume(contract_run, model_dir, tmp_path):
    """Resuming (no skip, other batch size) reproduces every answer: each prompt samples with its own seed."""
    _, s, events = contract_run
    code, again, stderr = run_program(_job(tmp_path), {**s, "skip_ids": [], "batch_size": 3}, in_process=True)
    assert code == 0, stderr
    first, second = generations(events), generations(again)
    assert {k: g["text"] for k, g in first.items()} == {k: second[k]["text"] for k in first}


def test_different_seed_different_texts(contract_run, model_dir, tmp_path):
    _, s, events = contract_run
    code, other, stderr = run_program(
        _job(tmp_path), {**s, "params": {**s["params"], "seed": 2}}, in_process=True
    )
    assert code == 0, stderr
    first, second = generations(events), generations(other)
    assert sorted(first) == sorted(second)
    assert all(first[k]["text"] != second[k]["text"] for k in first)


def test_continuation_sends_the_raw_text(model_dir, tmp_path):
    job = _job(tmp_path, 2, mode="continuation")
    code, events, stderr = run_program(job, spec(model_dir, mode="continuation"), in_process=True)
    assert code == 0, stderr
    texts = {
        f"p{i}": json.loads(line)["text"]
        for i, line in enumerate((job / "prompts.jsonl").open(encoding="utf-8"))
    }
    gens = generations(events)
    assert sorted(gens) == [("p0", 0), ("p1", 0)]
    for (pid, _), g in gens.items():
        assert g["prompt_text"] == texts[pid]
        assert "<|im_start|>" not in g["prompt_text"]


def test_system_prompt_override_and_template_file(model_dir, tmp_path):
    job = _job(tmp_path, 1)
    (job / "tpl.jinja").write_text(
        "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}[assistant] ",
        encoding="utf-8",
    )
    s = spec(model_dir, system_prompt="只用一个词回答。", chat_template_file="tpl.jinja")
    code, events, stderr = run_program(job, s, in_process=True)
    assert code == 0, stderr
    (g,) = generations(events).values()
    assert g["prompt_text"].startswith("[system] 只用一个词回答。\n[user] ")
    assert g["prompt_text"].endswith("[assistant] ")
    assert "SmolLM" not in g["prompt_text"]  # the model's default system prompt was replaced


def test_greedy_is_deterministic_and_stop_strings_end_answers(model_dir, tmp_path):
    """temperature 0 is greedy (any seed); a stop string cuts the answer before it, with finish_reason stop."""
    job = _job(tmp_path, 2)
    greedy = spec(model_dir, params={"temperature": 0.0, "max_new_tokens": 12, "seed": 5})
    code, events, stderr = run_program(job, greedy, in_process=True)
    assert code == 0, stderr
    base = generations(events)
    word = base[("p0", 0)]["text"][4:8]
    assert word.strip()
    code, events, stderr = run_program(
        job,
        {**greedy, "output": "stopped.jsonl", "params": {**greedy["params"], "seed": 6, "stop": [word]}},
        in_process=True,
    )
    assert code == 0, stderr
    stopped = generations(events)[("p0", 0)]
    full = base[("p0", 0)]["text"]
    assert stopped["text"] == full[: full.index(word)]
    assert stopped["finish_reason"] == "stop"
    assert stopped["tokens"] < base[("p0", 0)]["tokens"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backend": "tgi"}, "backend must be one of vllm, transformers, got 'tgi'"),
        ({"mode": "dialogue"}, "mode must be one of chat, continuation"),
        ({"params": {"temperature": -1}}, "params.temperature must be >= 0, got -1"),
        ({"params": {"n": 0}}, "params.n must be an integer >= 1, got 0"),
        ({"params": {"temprature": 1}}, "unknown params: temprature"),
        ({"prompts_file": "missing.jsonl"}, "prompts_file not found"),
        ({"model_dir": "relative/model"}, "model_dir must be an absolute path"),
        ({"mode": "continuation"}, "prompts.jsonl line 1: continuation mode needs text, a string"),
        ({"max_model_len": 20}, "prompt p0 has"),
    ],
)
def test_bad_spec_exits_2_with_a_clear_message(model_dir, tmp_path, monkeypatch, capsys, change, message):
    job = _job(tmp_path, 2)
    s = spec(model_dir)
    for key, value in change.items():
        s[key] = {**s["params"], **value} if key == "params" else value
    (job / "spec.json").write_text(json.dumps(s), encoding="utf-8")
    monkeypatch.chdir(job)
    assert sample.main(["--spec", "spec.json"]) == 2
    assert message in capsys.readouterr().err
    events = [
        json.loads(line) for line in (job / "generations.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [e["type"] for e in events] == ["error"]
    assert message in events[0]["message"] and "\n" not in events[0]["message"]


def test_unreadable_spec_exits_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "spec.json").write_text("{not json", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert sample.main(["--spec", "spec.json"]) == 2
    assert "spec.json is not JSON" in capsys.readouterr().err
    assert sample.main(["--spec", "absent.json"]) == 2
    assert "spec not found: absent.json" in capsys.readouterr().err


def test_the_models_generation_config_does_not_change_answers(model_dir, tmp_path):
    """Only the spec's params shape the answer, as in vLLM: a repetition penalty or n-gram ban saved in the
    checkpoint's generation_config.json would otherwise apply in transformers alone."""
    tuned = tmp_path / "tuned"
    shutil.copytree(model_dir, tuned)
    gen_cfg = json.loads((tuned / "generation_config.json").read_text(encoding="utf-8"))
    gen_cfg.update(repetition_penalty=5.0, no_repeat_ngram_size=1, min_new_tokens=12)
    (tuned / "generation_config.json").write_text(json.dumps(gen_cfg), encoding="utf-8")
    job = _job(tmp_path, 2)
    greedy = {"temperature": 0.0, "max_new_tokens": 12}
    texts = []
    for name, m in (("plain", model_dir), ("tuned", tuned)):
        code, events, stderr = run_program(
            job, spec(m, params=greedy, output=f"{name}.jsonl"), in_process=True
        )
        assert code == 0, stderr
        texts.append({k: g["text"] for k, g in generations(events).items()})
    assert texts[0] == texts[1]


def test_small_batches_write_the_first_answers_before_the_last_prompt_ends(model_dir, tmp_path):
    """With the default batch size, answers reach the file a small batch at a time while the program runs
    (one batch of 64 prompts wrote all 12 answers at the very end)."""
    job = _job(tmp_path, 12)
    code, events, seen = watch_program(
        job, spec(model_dir, params={"max_new_tokens": 48}, max_model_len=1024)
    )
    assert code == 0, (job / "stderr.txt").read_text()[-4000:]
    assert len(generations(events)) == 12
    assert any(0 < count < 12 for count in seen), seen
