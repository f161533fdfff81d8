"""choice_extract finds the one label an answer picks and refuses to guess between two."""

import pytest

from app.sampling_analysis.choice import choice_extract

LETTERS = ["A", "B", "C", "D"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("B", "B"),
        ("Ｃ", "C"),
        ("选A", "A"),
        ("我选择 D", "D"),
        ("答案是B", "B"),
        ("答案：Ｄ。", "D"),
        ("答案应该是 C", "C"),
        ("(C)", "C"),
        ("我认为是（A）", "A"),
        ("The answer is D.", "D"),
        ("Answer: b", None),  # a lowercase letter is a word, not a pick
        ("B. Paris is the capital.", "B"),
        # Listing the options names every letter; the explicit "答案是" decides.
        ("(A) 北京 (B) 上海 (C) 广州\n答案是B", "B"),
        ("I would pick C here", "C"),
        ("the answer is a cat", None),
        ("A or B, hard to say", None),
        ("no idea", None),
        ("", None),
    ],
)
def test_letters(answer: str, expected: str | None) -> None:
    assert choice_extract(answer, LETTERS) == expected


def test_full_width_labels_are_returned_as_given() -> None:
    assert choice_extract("答案是B", ["Ａ", "Ｂ"]) == "Ｂ"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("是", "是"),
        ("否。", "否"),
        ("是的，没错", "是"),
        ("不是", "否"),  # in a two-label set, the negation of one names the other
        ("不是，是", None),
        ("是还是否呢", None),
    ],
)
def test_yes_no(answer: str, expected: str | None) -> None:
    assert choice_extract(answer, ["是", "否"]) == expected


NLI = ["蕴含", "中性", "矛盾"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("蕴含", "蕴含"),
        ("这两句话的关系是矛盾。", "矛盾"),
        ("关系：中性", "中性"),
        ("不矛盾，是蕴含", "蕴含"),
        ("既蕴含又矛盾", None),
    ],
)
def test_nli_labels(answer: str, expected: str | None) -> None:
    assert choice_extract(answer, NLI) == expected


@pytest.mark.parametrize(
    ("answer", "labels", "expected"),
    [
        # Leftmost-longest: the longer label wins where one contains the other.
        ("这是不可能的", ["必然的", "可能的", "不可能"], "不可能"),
        ("可能的", ["必然的", "可能的", "不可能"], "可能的"),
        ("不是的", ["是的", "不是", "也许"], "不是"),
        ("这是一条娱乐新闻", ["故事", "文化", "娱乐"], "娱乐"),
        ("文化和娱乐", ["故事", "文化", "娱乐"], None),
        ("这两句话语义不同", ["相同", "不同"], "不同"),
        ("不相同", ["相同", "不同"], "不同"),
        ("说法不正确", ["正确", "错误"], "错误"),
        # With three labels a negation names none of them.
        ("不矛盾", NLI, None),
        ("Yes, it does.", ["yes", "no"], "yes"),
        ("I know nothing", ["yes", "no"], None),  # "no" inside "know"/"nothing" is not the label
        ("NO", ["yes", "no"], "no"),
    ],
)
def test_word_labels(answer: str, labels: list[str], expected: str | None) -> None:
    assert choice_extract(answer, labels) == expected
