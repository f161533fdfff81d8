"""Rating rows become a raters x cases matrix in first-seen order, with holes, and feed alpha unchanged."""

import pytest

from app.rating_stats.agreement import (
    TOO_FEW_PAIRABLE,
    krippendorff_alpha,
    pairwise_kappas,
    percent_agreement,
)
from app.rating_stats.matrix import reliability_matrix


def test_rows_to_matrix() -> None:
    rows = [("王芳", "c1", 4), ("li", "c2", 2), ("王芳", "c2", 3), ("li", "c1", None), ("zoe", "c3", 5)]
    got = reliability_matrix(rows)
    assert got.raters == ["王芳", "li", "zoe"]
    assert got.cases == ["c1", "c2", "c3"]
    assert got.matrix == [[4, 3, None], [None, 2, None], [None, None, 5]]
    assert krippendorff_alpha(got.matrix, level="ordinal").n == 2


def test_verdicts_feed_percent_agreement() -> None:
    rows = [("a", 1, "A"), ("b", 1, "A"), ("a", 2, "tie"), ("b", 2, "B")]
    matrix = reliability_matrix(rows).matrix
    assert percent_agreement(matrix, ties=True).value == 0.5
    assert percent_agreement(matrix, ties=False).value == 1.0


def test_a_second_value_for_the_same_case_is_refused() -> None:
    with pytest.raises(ValueError, match="rater 'a' has two values for case 'c1'"):
        reliability_matrix([("a", "c1", 1), ("a", "c1", 2)])


def test_no_rows() -> None:
    got = reliability_matrix([])
    assert (got.raters, got.cases, got.matrix) == ([], [], [])
    assert krippendorff_alpha(got.matrix, level="ordinal").reason == TOO_FEW_PAIRABLE
    assert pairwise_kappas(got.matrix, labels=[1, 2, 3]) == {}
    assert percent_agreement(got.matrix, ties=True).reason == TOO_FEW_PAIRABLE
