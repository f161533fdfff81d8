"""The data pipeline fails early with file:line reasons, and mixes, splits and orders deterministically."""

import doctest
import re
from collections import Counter

import pytest

import trainer.collate
import trainer.data
import trainer.loss
import trainer.packing
from trainer.data import (
    DataError,
    Sample,
    epoch_order,
    mix_samples,
    parse_task_type,
    prepare_data,
    read_samples,
    split_heldout,
)

GOOD = {
    "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    "task_type": "t/x",
}


@pytest.mark.parametrize("module", [trainer.data, trainer.packing, trainer.collate, trainer.loss])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_read_errors_name_file_and_line(tmp_path, write_jsonl):
    rows = [
        GOOD,
        {"messages": GOOD["messages"]},
        {"task_type": "t"},
        {
            "messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "a"}],
            "task_type": "t",
        },
        {"messages": [{"role": "user", "content": "x"}], "task_type": "t"},
        "{not json",
        {"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}], "task_type": "t"},
        {"messages": GOOD["messages"], "task_type": " / x"},
    ]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as err:
        read_samples(path)
    msg = str(err.value)
    assert "7 bad sample(s)" in msg
    assert f"{path}:2: missing field 'task_type'" in msg
    assert f"{path}:3: missing field 'messages'" in msg
    assert f"{path}:4: messages[0]: bad role 'robot'" in msg
    assert f"{path}:5: no assistant turn" in msg
    assert f"{path}:6: invalid JSON" in msg
    assert f"{path}:7: messages[0]: missing field 'content'" in msg
    assert f"{path}:8: task_type ' / x' has an empty level 1" in msg
    with pytest.raises(DataError, match="does not exist"):
        read_samples(tmp_path / "missing.jsonl")


def test_read_good(tmp_path, write_jsonl):
    path = write_jsonl(
        tmp_path / "ok.jsonl", [GOOD, "", {**GOOD, "task_type": "belle/closed\u00a0qa", "tags": ["k"]}]
    )
    samples = read_samples(path)
    assert [(s.task_l1, s.task_l2, s.line) for s in samples] == [("t", "x", 1), ("belle", "closed qa", 3)]
    assert samples[1].tags == ["k"] and samples[1].where == f"{path}:3"


def test_parse_task_type():
    assert parse_task_type("  pclue /  nli  ") == ("pclue", "nli")
    assert parse_task_type("a\tb / c\u3000d") == ("a b", "c d")
    assert parse_task_type("solo") == parse_task_type("solo/") == ("solo", "")
    assert parse_task_type("a/b/c") == ("a", "b/c")


def make(counts: dict[tuple[str, str], int]) -> list[Sample]:
    return [Sample([], l1, l2, line=i) for (l1, l2), n in counts.items() for i in range(n)]


def test_mix_weights():
    samples = make({("a", "x"): 10, ("a", "y"): 4, ("b", ""): 6})
    mixed = mix_samples(samples, {"a": 2, "a/y": "×0.5", "b": "x1.5"}, seed=3)
    assert Counter(s.task_type for s in mixed) == {"a/x": 20, "a/y": 2, "b": 9}
    assert Counter(id(s) for s in mixed if s.task_l1 == "a" and s.task_l2 == "x") == {
        id(s): 2 for s in samples[:10]
    }
    # deterministic per seed, different across seeds
    again = mix_samples(samples, {"a/y": 0.5}, seed=3)
    assert [id(s) for s in again] == [id(s) for s in mix_samples(samples, {"a/y": 0.5}, seed=3)]
    picks = {
        tuple(s.line for s in mix_samples(samples, {"a/y": 0.5}, seed=k) if s.task_l2 == "y")
        for k in range(8)
    }
    assert len(picks) > 1
    assert mix_samples(samples, {"b": 0}, seed=0) == [s for s in samples if s.task_l1 != "b"]


def test_mix_errors():
    samples = make({("a", "x"): 2})
    with pytest.raises(DataError, match="unknown task_type 'c'"):
        mix_samples(samples, {"c": 2}, seed=0)
    with pytest.raises(DataError, match="unknown task_type 'a/z'"):
        mix_samples(samples, {"a/z": 2}, seed=0)
    with pytest.raises(DataError, match="not a number"):
        mix_samples(samples, {"a": "lots"}, seed=0)
    with pytest.raises(DataError, match=">= 0"):
        mix_samples(samples, {"a": -1}, seed=0)


def test_fractional_epochs():
    order = epoch_order(20, 1.1, seed=5)
    assert len(order) == 22
    assert sorted(order[:20]) == list(range(20))
    nxt = epoch_order(20, 2.0, seed=5)
    assert order[20:] == nxt[20:22]  # the first 10% of the next epoch's shuffle
    assert order[:20] != nxt[20:]  # a new shuffle each epoch
    assert epoch_order(20, 1.1, seed=5) == order and epoch_order(20, 1.1, seed=6) != order
    with pytest.raises(DataError):
        epoch_order(5, 0, seed=0)


def test_heldout_split_is_per_task_and_deterministic():
    samples = make({("a", ""): 50, ("b", ""): 10})
    train, held = split_heldout(samples, 0.2, seed=1)
    assert Counter(s.task_l1 for s in held) == {"a": 10, "b": 2}
    assert not {id(s) for s in train} & {id(s) for s in held} and len(train) + len(held) == 60
    assert [s.line for s in split_heldout(samples, 0.2, seed=1)[1]] == [s.line for s in held]
    with pytest.raises(DataError):
        split_heldout(samples, 1.0, seed=0)


def test_prepare_data_counts_and_length_errors(tokenizer, tmp_path, write_jsonl, pclue_messages):
    rows = pclue_messages[:60]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    plan = prepare_data(
        path, tokenizer, max_seq_len=4096, mix={"pclue/nli": 2}, epochs=1.5, seed=0, eval_fraction=0.1
    )
    raw = Counter(s["task_type"] for s in rows)
    per = plan.counts["per_task"]
    assert {k: v["read"] for k, v in per.items()} == dict(raw)
    for name, c in per.items():
        assert c["eval"] == round(0.1 * raw[name])
        expect = (raw[name] - c["eval"]) * (2 if name == "pclue/nli" else 1)
        assert c["train_after_mix"] == expect
    assert len(plan.order) == round(1.5 * len(plan.train)) == plan.counts["train_seen"]
    assert sum(c["train_seen"] for c in per.values()) == len(plan.order)
    assert [t.index for t in plan.train] == list(range(len(plan.train)))
    assert all(t.n_supervised > 0 for t in plan.train + plan.eval)

    median = sorted(len(t) for t in plan.train)[len(plan.train) // 2]
    with pytest.raises(DataError) as err:
        prepare_data(path, tokenizer, max_seq_len=median)
    every = prepare_data(path, tokenizer, max_seq_len=4096).train  # the same samples (no mix, no eval)
    longer = sum(len(t) > median for t in every)
    head, *listed = str(err.value).splitlines()
    assert head.startswith(
        f"{longer:,} of {len(rows):,} samples are longer than data.max_seq_len {median:,} tokens"
    )
    assert "raise data.max_seq_len, or set data.over_length to truncate or drop" in head
    assert len(listed) == 20 + 1 and listed[-1] == f"  ... and {longer - 20:,} more"
    assert re.fullmatch(r"  .*p\.jsonl:\d+ \(pclue/\w+\): [\d,]+ tokens", listed[0])
    # drop leaves exactly those samples out, train and eval alike, counted per task_type
    kept = prepare_data(path, tokenizer, max_seq_len=median, over_length="drop", eval_fraction=0.1)
    dropped, eval_dropped = kept.counts["dropped"], kept.counts["eval_dropped"]
    assert len(dropped) + len(eval_dropped) == longer and eval_dropped
    assert {d["reason"] for d in dropped + eval_dropped} == {"too_long"}
    assert all(d["tokens"] > median for d in dropped + eval_dropped)
    per = kept.counts["per_task"]
    assert sum(c["dropped"] + c["eval_dropped"] for c in per.values()) == longer
    # truncation cuts the tail; pCLUE answers are at the end, so cut samples lose their targets and are
    # reported as dropped rather than trained on without a target
    cut = prepare_data(path, tokenizer, max_seq_len=median, over_length="truncate")
    assert all(len(t) <= median for t in cut.train) and cut.counts["dropped"]
    assert len(cut.train) + len(cut.counts["dropped"]) == len(rows)
    with pytest.raises(DataError, match="unknown task_type 'nope'"):
        prepare_data(path, tokenizer, max_seq_len=4096, mix={"nope": 1})


def test_no_supervised_token_left_says_why_and_which(tokenizer, tmp_path, write_jsonl, pclue_messages):
    rows = [dict(r, id=f"pclue v1 #{i}") for i, r in enumerate(pclue_messages[:30])]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    shortest = min(len(t) for t in prepare_data(path, tokenizer, max_seq_len=4096).train)
    with pytest.raises(DataError) as err:
        prepare_data(path, tokenizer, max_seq_len=shortest // 2, over_length="truncate")
    head, *listed = str(err.value).splitlines()
    assert head.startswith(
        "no training sample has a supervised token (30 read): truncation at data.max_seq_len"
    )
    assert "cut away every answer" in head and "raise data.max_seq_len" in head
    # samples are named as their owner knows them (the export's "id"), with their task_type
    assert re.fullmatch(r"  pclue v1 #\d+ \(pclue/\w+\): [\d,]+ tokens, no_supervised", listed[0])
    assert listed[-1] == "  ... and 10 more"
