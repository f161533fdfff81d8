"""Length histograms and quantiles, cut share, repeated answers and distinct answers per prompt."""

import pytest

from app.sampling_analysis.accuracy import wilson
from app.sampling_analysis.stats import cut_share, distinct_answers, length_distribution, repeated_answers


def _gen(task_type: str = "t", **fields) -> dict:
    return {"task_type": task_type, **fields}


def test_length_distribution_hand_computed() -> None:
    gens = [_gen("a", tokens=t) for t in [1, 2, 3, 4, 10]] + [_gen("b", tokens=t) for t in [5, 5]]
    out = length_distribution(gens, bins=[0, 5, 10])
    assert out["edges"] == [0.0, 5.0, 10.0]
    a = out["tasks"]["a"]
    # numpy's bins are half-open except the last, which keeps its right edge: 10 lands in [5, 10].
    assert a["counts"] == [4, 1]
    assert a["n"] == 5
    assert a["p50"] == 3.0
    # p90 by linear interpolation: position 0.9 * 4 = 3.6 between 4 and 10 -> 4 + 0.6 * 6.
    assert a["p90"] == pytest.approx(7.6)
    assert a["max"] == 10
    assert out["tasks"]["b"]["counts"] == [0, 2]


def test_length_distribution_shares_equal_width_edges() -> None:
    gens = [_gen("a", tokens=t) for t in [0, 10, 20]] + [_gen("b", tokens=40)]
    out = length_distribution(gens, bins=4)
    assert out["edges"] == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert out["tasks"]["a"]["counts"] == [1, 1, 1, 0]
    assert out["tasks"]["b"]["counts"] == [0, 0, 0, 1]


def test_length_distribution_empty_and_bad_bins() -> None:
    assert length_distribution([]) == {"edges": [], "tasks": {}}
    with pytest.raises(ValueError, match="strictly increasing"):
        length_distribution([_gen(tokens=1)], bins=[5, 5])
    with pytest.raises(ValueError, match="bins must be >= 1"):
        length_distribution([_gen(tokens=1)], bins=0)


def test_cut_share() -> None:
    gens = [_gen("a", finish_reason=r) for r in ["length", "stop", "stop", "length"]] + [
        _gen("b", finish_reason="stop")
    ]
    table = cut_share(gens)
    assert table["a"] == {"n": 4, "cut": 2, "share": 0.5, "ci95": wilson(2, 4)}
    assert table["b"]["cut"] == 0 and table["b"]["share"] == 0.0


def test_repeated_answers_count_prompts_not_samples() -> None:
    gens = [_gen(prompt_id=i, text=f"answer {i}") for i in range(100)]
    # Three prompts answered the same way, written differently.
    gens += [
        _gen(prompt_id=100, text="I don't know."),
        _gen(prompt_id=101, text="i dont know"),
        _gen(prompt_id=102, text="I DON'T KNOW!"),
    ]
    # Many samples of one prompt do not make a repeat across prompts.
    gens += [_gen(prompt_id=103, text="same") for _ in range(5)] + [_gen(prompt_id=104, text="same")]
    groups = repeated_answers(gens)
    assert [g["text"] for g in groups] == ["i dont know"]
    assert groups[0]["prompts"] == 3
    assert groups[0]["prompt_ids"] == [100, 101, 102]
    assert groups[0]["example"] == "I don't know."


def test_repeated_answers_share_floor_and_order() -> None:
    # 300 prompts: 2% is 6 prompts, so a group of 5 is not reported even though 5 >= min_count.
    gens = [_gen(prompt_id=i, text=f"unique {i}") for i in range(300)]
    for i in range(5):
        gens[i]["text"] = "five"
    for i in range(5, 15):
        gens[i]["text"] = "ten"
    for i in range(15, 22):
        gens[i]["text"] = "seven"
    groups = repeated_answers(gens)
    assert [(g["text"], g["prompts"]) for g in groups] == [("ten", 10), ("seven", 7)]
    assert [g["text"] for g in repeated_answers(gens, min_share=0.0)] == ["ten", "seven", "five"]


def test_empty_answers_are_a_group_too() -> None:
    gens = [_gen(prompt_id=i, text=t) for i, t in enumerate(["", "  ", "。", "real"])]
    assert [(g["text"], g["prompts"]) for g in repeated_answers(gens)] == [("", 3)]


def test_distinct_answers() -> None:
    gens = [
        _gen(prompt_id="p", text="Yes."),
        _gen(prompt_id="p", text="yes"),
        _gen(prompt_id="p", text="No"),
        _gen(prompt_id="q", text="x"),
    ]
    assert distinct_answers(gens) == {"p": {"samples": 3, "distinct": 2}, "q": {"samples": 1, "distinct": 1}}
