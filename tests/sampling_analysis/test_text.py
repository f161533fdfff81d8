"""Answer normalisation and last-number extraction read what a grader would read."""

import pytest

from app.sampling_analysis.normalize import normalize_answer
from app.sampling_analysis.numerals import is_number, last_number, parse_chinese_numeral


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Ｂｅｉｊｉｎｇ， 北京！ ", "beijing 北京"),
        ("ＡＢＣ１２３", "abc123"),
        ("「蕴含」。", "蕴含"),
        ("Hello,\n\t  World!!", "hello world"),
        ("don't", "dont"),
        ("1,000", "1000"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
        ("", ""),
        ("。？！", ""),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize(
    ("text", "value", "percent"),
    [
        ("The answer is 42.", 42.0, False),
        ("first 3, then 7", 7.0, False),
        ("total 1,250.5 dollars", 1250.5, False),
        ("-17 degrees", -17.0, False),
        ("it is \u221217", -17.0, False),
        ("pages 3-5", 5.0, False),
        ("about 3/4 of it", 0.75, False),
        ("-3/4", -0.75, False),
        ("rate: 12.5%", 0.125, True),
        ("５０％", 0.5, True),
        ("答案是１２３", 123.0, False),
        ("x 1/0 y 7", 7.0, False),
        ("答案是三十五", 35.0, False),
        ("一共有一百零五个", 105.0, False),
        ("约为三点一四", 3.14, False),
        ("温度是负五度", -5.0, False),
        ("增长了百分之五十", 0.5, True),
        ("零点五", 0.5, False),
        # Arabic digits win over a later Chinese numeral such as the 一 of "一样".
        ("答案是42，和上次一样", 42.0, False),
    ],
)
def test_last_number(text: str, value: float, percent: bool) -> None:
    got = last_number(text)
    assert got is not None
    assert got.value == pytest.approx(value)
    assert got.percent is percent


def test_no_number() -> None:
    assert last_number("no digits here") is None
    assert last_number("") is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("十", 10),
        ("十二", 12),
        ("二十", 20),
        ("三十五", 35),
        ("一百零五", 105),
        ("两千", 2000),
        ("两万三千", 23000),
        ("一亿两千万", 120_000_000),
        ("零", 0),
    ],
)
def test_parse_chinese_numeral(text: str, value: int) -> None:
    assert parse_chinese_numeral(text) == value


def test_is_number() -> None:
    assert all(is_number(t) for t in ["42", " -3.5 ", "1,000", "3/4", "50%", "１２"])
    assert not any(is_number(t) for t in ["42 apples", "a", "", "1.2.3"])


def test_punctuation_beyond_the_basic_plane_is_removed() -> None:
    # U+1144B NEWA DANDA is category Po, outside the precomputed Basic Multilingual Plane class.
    assert normalize_answer("ok\U0001144b yes") == "ok yes"
    assert normalize_answer("emoji \U0001f600 stays") == "emoji \U0001f600 stays"
