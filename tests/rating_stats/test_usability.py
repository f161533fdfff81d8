"""Normalising scores and the weighted usability formula agree with hand computation."""

import pytest

from app.rating_stats.rubric import Dimension, Rubric
from app.rating_stats.scales import Scale, normalise
from app.rating_stats.usability import case_scores, is_usable, usability

RUBRIC = Rubric(
    dimensions=(
        Dimension("helpfulness", Scale.one_to_five, 2.0),
        Dimension("leak", Scale.binary, 1.0),
        Dimension("writing", Scale.one_to_ten, 1.0),
        Dimension("format", Scale.one_to_five, 0.0),
    ),
    threshold=0.7,
)


def test_normalise() -> None:
    assert [normalise(s, Scale.one_to_five) for s in (1, 2, 3, 4, 5)] == [0, 0.25, 0.5, 0.75, 1]
    assert normalise(1, Scale.one_to_ten) == 0 and normalise(10, Scale.one_to_ten) == 1
    assert normalise(7.75, Scale.one_to_ten) == pytest.approx(0.75)
    assert (normalise(0, Scale.binary), normalise(1, Scale.binary)) == (0, 1)
    assert normalise(3.5, Scale.one_to_five) == 0.625
    assert Scale.one_to_ten.values == tuple(range(1, 11)) and Scale.binary.values == (0, 1)


@pytest.mark.parametrize(
    ("score", "scale"),
    [
        (0, Scale.one_to_five),
        (6, Scale.one_to_five),
        (11, Scale.one_to_ten),
        (2, Scale.binary),
        (float("nan"), Scale.one_to_five),
    ],
)
def test_normalise_refuses_off_scale(score: float, scale: Scale) -> None:
    with pytest.raises(ValueError, match="outside the"):
        normalise(score, scale)


def test_hand_computed() -> None:
    # (2 * 0.75 + 1 * 1 + 1 * 4/9) / 4; "format" has weight 0 and does not count even when scored.
    scores = {"helpfulness": 4, "leak": 1, "writing": 5, "format": 1}
    expected = (2 * 0.75 + 1.0 + 4 / 9) / 4
    assert usability(scores, RUBRIC) == pytest.approx(expected)
    assert is_usable(expected, RUBRIC) is True
    assert is_usable(0.69, RUBRIC) is False
    assert is_usable(0.7, RUBRIC) is True  # the threshold is inclusive


def test_unscored_dimensions_drop_out_rather_than_count_as_zero() -> None:
    assert usability({"helpfulness": 5, "leak": None}, RUBRIC) == 1.0
    assert usability({"leak": 0, "writing": 10}, RUBRIC) == 0.5


def test_nothing_scored_is_none() -> None:
    assert usability({}, RUBRIC) is None
    assert usability({"format": 5, "helpfulness": None}, RUBRIC) is None
    assert is_usable(None, RUBRIC) is None


def test_new_weights_rescore_without_rerating() -> None:
    scores = {"helpfulness": 5, "leak": 0, "removed_in_v2": 3}
    v1 = Rubric(
        dimensions=(Dimension("helpfulness", Scale.one_to_five, 1.0), Dimension("leak", Scale.binary, 1.0)),
        threshold=0.5,
    )
    v2 = Rubric(
        dimensions=(Dimension("helpfulness", Scale.one_to_five, 3.0), Dimension("leak", Scale.binary, 1.0)),
        threshold=0.5,
    )
    assert usability(scores, v1) == 0.5
    assert usability(scores, v2) == 0.75


def test_an_off_scale_score_is_an_error() -> None:
    with pytest.raises(ValueError, match="outside the 1-5 scale"):
        usability({"helpfulness": 6}, RUBRIC)


def test_case_scores_average_raters_unless_adjudicated() -> None:
    ratings = [{"helpfulness": 1, "writing": 6}, {"helpfulness": 5, "writing": None}, {"leak": None}]
    assert case_scores(ratings, RUBRIC) == {"helpfulness": 3.0, "writing": 6.0}
    adjudicated = case_scores(ratings, RUBRIC, adjudicated={"helpfulness": 5, "leak": None})
    assert adjudicated == {"helpfulness": 5, "writing": 6.0}
    assert usability(adjudicated, RUBRIC) == pytest.approx((2 * 1.0 + 5 / 9) / 3)
    assert case_scores([], RUBRIC, adjudicated={"leak": 1}) == {"leak": 1}
    assert case_scores([], RUBRIC) == {}


def test_case_scores_check_the_scale() -> None:
    with pytest.raises(ValueError, match="outside the 1-5 scale"):
        case_scores([{"helpfulness": 7}, {"helpfulness": 1}], RUBRIC)  # the mean, 4, would pass
    with pytest.raises(ValueError, match="outside the binary scale"):
        case_scores([], RUBRIC, adjudicated={"leak": 3})
