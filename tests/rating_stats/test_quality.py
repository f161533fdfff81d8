"""Case spreads, the disputed-case ranking, gold accuracy and the far-from-gold rule, by hand computation."""

import math

import pytest

from app.rating_stats.quality import (
    GoldAccuracy,
    GoldScore,
    Spread,
    case_spread,
    far_from_gold,
    gold_accuracy,
    most_disputed,
)
from app.rating_stats.rubric import Dimension, Rubric
from app.rating_stats.scales import Scale

RUBRIC = Rubric(
    dimensions=(
        Dimension("h", Scale.one_to_five, 1.0),
        Dimension("leak", Scale.binary, 0.0),
        Dimension("w", Scale.one_to_ten, 1.0),
    ),
    threshold=0.5,
)


def test_case_spread() -> None:
    spreads = case_spread([{"h": 1, "w": 10}, {"h": 5, "leak": 1}, {"h": 3, "w": 10}], RUBRIC)
    assert set(spreads) == {"h", "w"}  # "leak" has one score only
    assert spreads["h"].range == 1.0 and spreads["h"].n == 3
    assert spreads["h"].std == pytest.approx(math.sqrt(1 / 6))  # normalised 0, 1, 0.5
    assert spreads["w"] == Spread(0.0, 0.0, 2)
    assert case_spread([{"h": 2}], RUBRIC) == {}


def test_most_disputed_ranking() -> None:
    cases = {
        "agreed": [{"h": 4}, {"h": 4}],
        "alone": [{"h": 1}],
        "split": [{"h": 1}, {"h": 5}, {"h": 1}, {"h": 5}],  # range 1, std 0.5
        "outlier": [{"h": 1}, {"h": 5}, {"h": 5}, {"h": 5}],  # range 1, std ~0.433
        "leak": [{"leak": 0, "h": 3}, {"leak": 1, "h": 4}],  # binary 0 vs 1 is range 1 too
        "mild": [{"w": 4}, {"w": 7}],  # range 1/3
    }
    ranked = most_disputed(cases, RUBRIC)
    assert [d.case for d in ranked] == ["split", "leak", "outlier", "mild"]
    assert ranked[0].dimension == "h" and ranked[0].range == 1.0 and ranked[0].std == 0.5
    assert ranked[1].dimension == "leak" and set(ranked[1].spreads) == {"h", "leak"}
    assert ranked[3].range == pytest.approx(1 / 3)
    assert [d.case for d in most_disputed(cases, RUBRIC, limit=2)] == ["split", "leak"]


def test_gold_accuracy_hand_computed() -> None:
    gold = {"c1": {"h": 4, "leak": 1}, "c2": {"h": 2, "leak": 0, "w": None}}
    ratings = {
        "x": {"c1": {"h": 4, "leak": 0}, "c2": {"h": 3, "leak": 0, "w": 5}, "c3": {"h": 1}},
        "y": {"c3": {"h": 5}},  # no gold case rated
        "z": {"c1": {"w": 3}},  # a gold case, but no dimension in common
    }
    got = gold_accuracy(ratings, gold, RUBRIC)
    assert set(got) == {"x"}
    x = got["x"]
    assert x.cases == 2
    assert x.dimensions["h"] == GoldScore(mae=0.125, exact=0.5, n=2)  # errors 0 and 0.25
    assert x.dimensions["leak"] == GoldScore(mae=0.5, exact=0.5, n=2)  # errors 1 and 0
    assert "w" not in x.dimensions
    assert x.overall == GoldScore(mae=(0 + 0.25 + 1 + 0) / 4, exact=0.5, n=4)


def _acc(mae: float, cases: int) -> GoldAccuracy:
    return GoldAccuracy(cases=cases, overall=GoldScore(mae=mae, exact=0.0, n=cases), dimensions={})


def test_far_from_gold_rule() -> None:
    accuracies = {
        "a": _acc(0.10, 8),
        "b": _acc(0.12, 5),
        "c": _acc(0.15, 6),  # the median of the five eligible raters
        "d": _acc(0.30, 9),  # 0.15 above the median: flagged
        "e": _acc(0.25, 7),  # exactly the margin above: not flagged
        "new": _acc(0.90, 4),  # far off, but too few gold cases to say
    }
    assert far_from_gold(accuracies) == {"d"}
    assert far_from_gold(accuracies, margin=0.05) == {"d", "e"}
    # Six eligible: the median is (0.15 + 0.25) / 2 = 0.2, so "d" at 0.30 is no longer beyond it.
    assert far_from_gold(accuracies, min_cases=4) == {"new"}
    assert far_from_gold({"only": _acc(0.9, 10)}) == set()
    assert far_from_gold({}) == set()
