"""Usability and each dimension per task_type (level 1, with its level-2 rows under it), and pairwise
win/tie/loss, each with a 95% bootstrap interval over cases.

A case is the unit: its score on a dimension is the mean of its raters, or the adjudicated score when
the researcher settled it and `use_adjudicated` is on; its usability is the rubric's formula over those
scores. Rows are "all" first, then each level-1 type followed by its level-2 types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.rating_results.data import VERDICT, Case, TaskData
from app.rating_stats.intervals import Interval, bootstrap_mean, task_level1, win_tie_loss
from app.rating_stats.scales import Scale, normalise
from app.rating_stats.usability import case_scores, is_usable, usability

ALL = ""  # the row of every case


@dataclass
class Row:
    """A task_type row: `key` is "" for all cases, "l1" or "l1/l2"; `level` 0, 1 or 2."""

    key: str
    level: int
    cases: list[Case]


@dataclass
class CaseResult:
    """One case on one side: its scores per dimension, usability and whether it is usable."""

    scores: dict[str, float]
    usability: float | None
    usable: bool | None
    adjudicated: bool


def rows_of(cases: Sequence[Case]) -> list[Row]:
    """ "all", then each level-1 type in name order with its level-2 types (when it has any) under it."""
    rows = [Row(ALL, 0, list(cases))]
    by_l1: dict[str, dict[str, list[Case]]] = {}
    for case in cases:
        by_l1.setdefault(task_level1(case.task_type), {}).setdefault(case.task_type, []).append(case)
    for l1 in sorted(by_l1):
        rows.append(Row(l1, 1, [c for group in by_l1[l1].values() for c in group]))
        level2 = sorted(k for k in by_l1[l1] if k != l1)
        rows.extend(Row(k, 2, by_l1[l1][k]) for k in level2)
    return rows


def case_result(data: TaskData, case: Case, side: str, *, use_adjudicated: bool) -> CaseResult:
    adjudicated = use_adjudicated and case.adjudication is not None
    settled = case.adjudication.scores.get(side) if adjudicated and case.adjudication else None
    scores = case_scores([r.scores.get(side, {}) for r in case.ratings], data.rubric, settled)
    value = usability(scores, data.rubric)
    return CaseResult(scores, value, is_usable(value, data.rubric), adjudicated)


def _interval(values: Sequence[float | None], scale: Scale | None = None) -> dict[str, Any] | None:
    """A bootstrap interval as the page draws it: values, and their positions on [0, 1] for the bars
    (`scale` places a dimension's scores; usability and shares are on [0, 1] already)."""
    found: Interval | None = bootstrap_mean(values)
    if found is None:
        return None

    def to_unit(v: float) -> float:
        return normalise(v, scale) if scale is not None else v

    return {
        "mean": found.mean,
        "low": found.low,
        "high": found.high,
        "n": found.n,
        "x": to_unit(found.mean),
        "x_low": to_unit(found.low),
        "x_high": to_unit(found.high),
    }


def scores_table(data: TaskData, *, use_adjudicated: bool) -> dict[str, list[dict[str, Any]]]:
    """Per side, one entry per row: cases, adjudicated cases, usability, usable share, each dimension."""
    table: dict[str, list[dict[str, Any]]] = {}
    for side in data.sides:
        results = {c.id: case_result(data, c, side, use_adjudicated=use_adjudicated) for c in data.cases}
        out = []
        for row in rows_of(data.cases):
            rs = [results[c.id] for c in row.cases]
            dims = {
                d.key: _interval([r.scores.get(d.key) for r in rs], d.scale) for d in data.rubric.dimensions
            }
            out.append(
                {
                    "task_type": row.key,
                    "level": row.level,
                    "cases": len(row.cases),
                    "rated": sum(1 for c in row.cases if c.ratings),
                    "adjudicated": sum(r.adjudicated for r in rs),
                    "usability": _interval([r.usability for r in rs]),
                    "usable": _interval([None if r.usable is None else float(r.usable) for r in rs]),
                    "dimensions": dims,
                }
            )
        table[side] = out
    return table


def case_verdicts(case: Case, *, use_adjudicated: bool) -> list[str]:
    """A's verdicts on a case (win, tie, loss), one per rater, or the adjudicated one alone."""
    if use_adjudicated and case.adjudication is not None and case.adjudication.preference:
        return [VERDICT[case.adjudication.preference]]
    return [VERDICT[r.preference] for r in case.ratings if r.preference]


def pairwise_table(data: TaskData, *, use_adjudicated: bool) -> list[dict[str, Any]]:
    """Win/tie/loss of A against B per row, each share with its interval; empty for an absolute task."""
    if not data.pairwise:
        return []
    out = []
    for row in rows_of(data.cases):
        verdicts = [case_verdicts(c, use_adjudicated=use_adjudicated) for c in row.cases]
        found = win_tie_loss(verdicts)
        counts = {v: sum(vs.count(v) for vs in verdicts) for v in ("win", "tie", "loss")}
        shares = None
        if found is not None:
            shares = {k: {"mean": i.mean, "low": i.low, "high": i.high, "n": i.n} for k, i in found.items()}
        out.append({"task_type": row.key, "level": row.level, "counts": counts, "shares": shares})
    return out
