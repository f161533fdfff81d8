"""Two pairwise verdicts, one per order, -> one outcome; and the judge's position consistency.

LLM judges favour a position: shown (A, B) and then (B, A), a strong judge gives the same answer only
about two times in three, less on writing. So every pair is judged in both orders and MT-Bench's
conservative rule (Zheng et al. 2023, section 3.4) combines them: a win counts only when both orders
prefer the same answer; when the two disagree the case is inconsistent and counts as a tie. How often
the orders agree, per task_type, is the number that says whether to trust the judge's verdicts.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from app.judge.parse import PairJudgement, Side

Outcome = Literal["A", "B", "tie"]


@dataclass(frozen=True)
class PairVerdicts:
    """The judge's verdicts on one case: `ab` with A shown as answer 1, `ba` with B shown as answer 1."""

    task_type: str
    ab: Side
    ba: Side


@dataclass(frozen=True)
class Combined:
    """The case's outcome for A against B, and whether the two orders agreed on it."""

    outcome: Outcome
    consistent: bool


@dataclass(frozen=True)
class Consistency:
    """Position consistency of one task_type (or of all, under task_type "*"): `consistent` of `n` cases
    gave the same verdict in both orders. Of the others, `first` preferred whichever answer was shown
    first both times, `second` whichever was shown second, and `half_tie` called a tie in one order
    only; a large `first` is the position bias the swap is there to catch."""

    task_type: str
    n: int
    consistent: int
    first: int
    second: int
    half_tie: int

    @property
    def share(self) -> float | None:
        return self.consistent / self.n if self.n else None


_SWAP: dict[Side, Outcome] = {"1": "B", "2": "A", "tie": "tie"}
_KEEP: dict[Side, Outcome] = {"1": "A", "2": "B", "tie": "tie"}
ALL = "*"


def combine(ab: Side, ba: Side) -> Combined:
    """Example: combine("1", "2") -> A wins (both orders chose A); combine("1", "1") -> a tie, since
    the judge chose whatever came first; combine("tie", "2") -> a tie, inconsistent."""
    first, second = _KEEP[ab], _SWAP[ba]
    if first == second:
        return Combined(first, True)
    return Combined("tie", False)


def scores_by_answer(
    ab: PairJudgement, ba: PairJudgement
) -> dict[Outcome, tuple[dict[str, int], dict[str, int]]]:
    """Each answer's per-dimension scores from the two orders, un-swapped: A was answer 1 in `ab` and
    answer 2 in `ba`. Kept apart rather than averaged, so each order stays a rating of its own."""
    return {"A": (ab.scores_1, ba.scores_2), "B": (ab.scores_2, ba.scores_1)}


def _bucket(ab: Side, ba: Side) -> int:
    """0 consistent, 1 first position both times, 2 second position both times, 3 a tie in one order."""
    if combine(ab, ba).consistent:
        return 0
    return {("1", "1"): 1, ("2", "2"): 2}.get((ab, ba), 3)


def position_consistency(cases: Iterable[PairVerdicts]) -> dict[str, Consistency]:
    """Consistency per task_type in first-seen order, then all cases together under "*"."""
    counts: dict[str, list[int]] = {}
    overall = [0, 0, 0, 0]
    for case in cases:
        bucket = _bucket(case.ab, case.ba)
        counts.setdefault(case.task_type, [0, 0, 0, 0])[bucket] += 1
        overall[bucket] += 1
    table = {key: Consistency(key, sum(row), *row) for key, row in counts.items()}
    table[ALL] = Consistency(ALL, sum(overall), *overall)
    return table


def outcomes(cases: Iterable[PairVerdicts]) -> dict[str, dict[Outcome, int]]:
    """A wins, B wins and ties per task_type after `combine`, the counts a win rate is drawn from."""
    table: dict[str, dict[Outcome, int]] = {}
    for case in cases:
        row = table.setdefault(case.task_type, {"A": 0, "B": 0, "tie": 0})
        row[combine(case.ab, case.ba).outcome] += 1
    return table
