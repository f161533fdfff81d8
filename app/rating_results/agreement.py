"""Agreement per dimension and per task_type: Krippendorff's alpha (ordinal), quadratic kappa per rater
pair, and for pairwise preference the share of agreeing pairs with and without ties next to the
human ceilings. Raw ratings only: adjudication settles a case, it is not one more rater.

A statistic the data cannot give (too few ratings share a case, or everyone gave one value) carries the
reason code of app.rating_stats.agreement, which the page words as "not enough overlap" and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.rating_results.data import Case, TaskData
from app.rating_results.summary import ALL
from app.rating_stats.agreement import (
    HUMAN_PAIRWISE_CEILING,
    Agreement,
    krippendorff_alpha,
    pairwise_kappas,
    percent_agreement,
)
from app.rating_stats.intervals import task_level1
from app.rating_stats.matrix import reliability_matrix


def _stat(found: Agreement) -> dict[str, Any]:
    return {"value": found.value, "n": found.n, "reason": found.reason}


def _dimension(cases: Sequence[Case], side: str, key: str, domain: Sequence[int]) -> dict[str, Any]:
    rel = reliability_matrix(
        (r.rater, c.id, r.scores.get(side, {}).get(key)) for c in cases for r in c.ratings
    )
    alpha = krippendorff_alpha(rel.matrix, level="ordinal", domain=domain)
    pairs = []
    for (i, j), kappa in pairwise_kappas(rel.matrix, labels=domain).items():
        if kappa.n:  # pairs who never rated the same case say nothing; listing them would drown the rest
            pairs.append({"raters": [rel.raters[i], rel.raters[j]], **_stat(kappa)})
    # Lowest first: the pair to look at (a rater who disagrees with everyone shows in every low pair).
    pairs.sort(key=lambda p: (p["value"] is None, p["value"] or 0.0))
    defined = [p["value"] for p in pairs if p["value"] is not None]
    return {
        "alpha": _stat(alpha),
        "kappa_mean": sum(defined) / len(defined) if defined else None,
        "kappa_pairs": pairs,
    }


def _preference(cases: Sequence[Case]) -> dict[str, Any]:
    rel = reliability_matrix((r.rater, c.id, r.preference) for c in cases for r in c.ratings)
    return {
        "with_ties": _stat(percent_agreement(rel.matrix, ties=True)),
        "without_ties": _stat(percent_agreement(rel.matrix, ties=False)),
    }


def agreement_table(data: TaskData) -> list[dict[str, Any]]:
    """One entry per task_type group ("" for all, then level 1): per side and dimension, and preference."""
    groups: dict[str, list[Case]] = {ALL: data.cases}
    for case in data.cases:
        groups.setdefault(task_level1(case.task_type), []).append(case)
    out = []
    for key in [ALL, *sorted(k for k in groups if k != ALL)]:
        cases = groups[key]
        entry: dict[str, Any] = {
            "task_type": key,
            "cases": len(cases),
            "dimensions": [
                {"side": side, "key": d.key, **_dimension(cases, side, d.key, d.scale.values)}
                for side in data.sides
                for d in data.rubric.dimensions
            ],
        }
        if data.pairwise:
            entry["preference"] = {**_preference(cases), "ceiling": HUMAN_PAIRWISE_CEILING}
        out.append(entry)
    return out
