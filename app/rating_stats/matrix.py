"""From rating rows, as the database returns them, to the raters x cases matrix the agreement functions take.

Ratings are stored one row per (rater, case); alpha, kappa and percent agreement want one row per rater
and one column per case, with a hole where a rater did not rate a case (with overlap N of many raters,
most cells are holes). Keeping the raters and cases in the order first seen lets the page label rows
and map a pair of row indexes from `pairwise_kappas` back to rater names.
"""

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reliability:
    """`matrix[i][j]` is `raters[i]`'s value for `cases[j]`, None where there is none."""

    raters: list[Hashable]
    cases: list[Hashable]
    matrix: list[list[Any]]


def reliability_matrix(rows: Iterable[tuple[Hashable, Hashable, Any]]) -> Reliability:
    """Build from (rater, case, value) rows; a None value (a skipped dimension) leaves the cell empty.

    Two values from one rater for one case are refused: the assignment server never hands a rater a
    case twice, so a second row is a bug upstream, and silently keeping either would bias agreement.
    """
    raters: dict[Hashable, int] = {}
    cases: dict[Hashable, int] = {}
    cells: dict[tuple[int, int], Any] = {}
    for rater, case, value in rows:
        i = raters.setdefault(rater, len(raters))
        j = cases.setdefault(case, len(cases))
        if value is None:
            continue
        if (i, j) in cells:
            raise ValueError(f"rater {rater!r} has two values for case {case!r}")
        cells[(i, j)] = value
    matrix: list[list[Any]] = [[None] * len(cases) for _ in raters]
    for (i, j), value in cells.items():
        matrix[i][j] = value
    return Reliability(raters=list(raters), cases=list(cases), matrix=matrix)
