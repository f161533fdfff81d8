"""Which cases to adjudicate and which raters to look at: the most disputed cases, and each rater
against the researcher's gold cases.

Both go through one flat view of an answer: absolute scores keep their keys; pairwise scores become
"a.<key>" and "b.<key>", and the preference joins them as one more ordinal dimension (B better, tie, A
better on 1, 3, 5 of a 1-5 scale), so a split on the preference is a dispute and a wrong preference
costs gold accuracy as a wrong score does, with "tie" half as far from either side as they are apart.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from app.rating_results.data import Answer, TaskData
from app.rating_stats.quality import far_from_gold, gold_accuracy, most_disputed
from app.rating_stats.rubric import Dimension, Rubric
from app.rating_stats.scales import Scale
from app.rating_stats.usability import Scores

PREFERENCE_KEY = "preference"
PREFERENCE_SCALE = {"b": 1, "tie": 3, "a": 5}
MAX_DISPUTES = 20


def flat_rubric(data: TaskData) -> Rubric:
    if not data.pairwise:
        return data.rubric
    dims = [Dimension(f"{s}.{d.key}", d.scale, d.weight) for s in data.sides for d in data.rubric.dimensions]
    dims.append(Dimension(PREFERENCE_KEY, Scale.one_to_five, 1.0))
    return Rubric(dimensions=tuple(dims), threshold=data.rubric.threshold)


def flat(answer: Answer, data: TaskData) -> dict[str, float]:
    if not data.pairwise:
        return dict(answer.scores.get("a", {}))
    out: dict[str, float] = {f"{s}.{k}": v for s in data.sides for k, v in answer.scores.get(s, {}).items()}
    if answer.preference:
        out[PREFERENCE_KEY] = PREFERENCE_SCALE[answer.preference]
    return out


def disputes(data: TaskData, *, limit: int = MAX_DISPUTES) -> list[dict[str, Any]]:
    """The cases raters disagree on most, with each rater's answer and the adjudication if there is one."""
    by_id = {c.id: c for c in data.cases}
    ranked = most_disputed(
        {c.id: [flat(r, data) for r in c.ratings] for c in data.cases}, flat_rubric(data), limit=limit
    )
    out = []
    for d in ranked:
        case = by_id[int(str(d.case))]
        out.append(
            {
                "case_id": case.id,
                "sample_id": case.sample_id,
                "task_type": case.task_type,
                "dimension": d.dimension,
                "range": d.range,
                "ratings": [
                    {"rater": r.rater, "scores": r.scores, "preference": r.preference, "comment": r.comment}
                    for r in case.ratings
                ],
                "adjudication": (
                    {"scores": case.adjudication.scores, "preference": case.adjudication.preference}
                    if case.adjudication
                    else None
                ),
            }
        )
    return out


def raters_vs_gold(data: TaskData) -> dict[str, Any]:
    """Per rater: cases rated, gold cases among them, accuracy (1 - mean normalised error), exact share,
    and whether they are far from gold compared with the other raters."""
    rubric = flat_rubric(data)
    gold: dict[Hashable, Scores] = {c.id: flat(c.gold, data) for c in data.cases if c.gold is not None}
    by_rater: dict[Hashable, dict[Hashable, Scores]] = {}
    for case in data.cases:
        for r in case.ratings:
            by_rater.setdefault(r.rater, {})[case.id] = flat(r, data)
    accuracy = gold_accuracy(by_rater, gold, rubric)
    flagged = far_from_gold(accuracy)
    rows = []
    for rater in sorted(by_rater, key=str):
        found = accuracy.get(rater)
        rows.append(
            {
                "rater": rater,
                "cases": len(by_rater[rater]),
                "gold_cases": found.cases if found else 0,
                "accuracy": 1 - found.overall.mae if found else None,
                "exact": found.overall.exact if found else None,
                "far_from_gold": rater in flagged,
            }
        )
    return {"gold_cases": len(gold), "raters": rows}
