"""Both orders combine by MT-Bench's rule (a win only when the orders agree, else a tie), and position consistency is counted per task_type."""

import pytest

from app.judge.pairwise import (
    ALL,
    Combined,
    PairVerdicts,
    combine,
    outcomes,
    position_consistency,
    scores_by_answer,
)
from app.judge.parse import PairJudgement


@pytest.mark.parametrize(
    ("ab", "ba", "expected"),
    [
        ("1", "2", Combined("A", True)),  # A shown first, then second: chosen both times
        ("2", "1", Combined("B", True)),
        ("tie", "tie", Combined("tie", True)),
        ("1", "1", Combined("tie", False)),  # always the first position: no preference for A or B
        ("2", "2", Combined("tie", False)),
        ("1", "tie", Combined("tie", False)),
        ("tie", "1", Combined("tie", False)),
    ],
)
def test_combine(ab, ba, expected):
    assert combine(ab, ba) == expected


def test_position_consistency_per_task_type_with_counts():
    cases = [
        PairVerdicts("写作", "1", "2"),
        PairVerdicts("写作", "1", "1"),
        PairVerdicts("写作", "1", "1"),
        PairVerdicts("写作", "tie", "2"),
        PairVerdicts("逻辑推理", "2", "1"),
        PairVerdicts("逻辑推理", "tie", "tie"),
        PairVerdicts("逻辑推理", "2", "2"),
    ]
    table = position_consistency(cases)
    assert list(table) == ["写作", "逻辑推理", ALL]
    w, r, total = table["写作"], table["逻辑推理"], table[ALL]
    assert (w.n, w.consistent, w.first, w.second, w.half_tie, w.share) == (4, 1, 2, 0, 1, 0.25)
    assert (r.n, r.consistent, r.first, r.second, r.half_tie) == (3, 2, 0, 1, 0)
    assert r.share == pytest.approx(2 / 3)
    assert (total.n, total.consistent, total.first, total.second, total.half_tie) == (7, 3, 2, 1, 1)


def test_no_cases():
    table = position_consistency([])
    assert table[ALL].n == 0 and table[ALL].share is None


def test_outcomes_count_inconsistent_cases_as_ties():
    cases = [PairVerdicts("x", "1", "2"), PairVerdicts("x", "1", "1"), PairVerdicts("x", "2", "1")]
    assert outcomes(cases) == {"x": {"A": 1, "B": 1, "tie": 1}}


def test_scores_by_answer_undoes_the_swap():
    ab = PairJudgement("e", "1", {"clarity": 9}, {"clarity": 4})  # A shown first
    ba = PairJudgement("e", "2", {"clarity": 5}, {"clarity": 8})  # B shown first
    assert scores_by_answer(ab, ba) == {
        "A": ({"clarity": 9}, {"clarity": 8}),
        "B": ({"clarity": 4}, {"clarity": 5}),
    }
