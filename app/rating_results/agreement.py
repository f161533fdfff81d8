"""Agreement per dimension and per task_type: Krippendorff's alpha (ordinal), quadratic kappa per rater
pair, and for pairwise preference the share of agreeing pairs with and without ties next to the
human ceilings. Raw ratings only: adjudication settles a case, it is not one more rater.

An LLM judge is read against the human raters, never counted among them: per judge, its agreement with
each rater on the cases both rated (quadratic kappa per dimension the rubric and the judge share,
preference agreement pooled over judge-rater pairs), next to the raters' agreement among themselves.

A statistic the data cannot give (too few ratings share a case, or everyone gave one value) carries the
reason code of app.rating_stats.agreement, which the page words as "not enough overlap" and why.
"""

from __future__ import annotations

from collections import defaultdict
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
    quadratic_kappa,
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


def _judge_against_raters(cases: Sequence[Case], judge: str, data: TaskData) -> dict[str, Any]:
    """One judge against every human rater it shares cases with."""
    humans: dict[str, dict[int, Any]] = defaultdict(dict)
    mine: dict[int, Any] = {}
    for case in cases:
        for r in case.ratings:
            humans[r.rater][case.id] = r
        for r in case.judged:
            if r.rater == judge:
                mine[case.id] = r
    dimensions = []
    for side in data.sides:
        for d in data.rubric.dimensions:
            pairs = []
            for rater, theirs in sorted(humans.items()):
                shared = [c for c in mine if c in theirs]
                kappa = quadratic_kappa(
                    [mine[c].scores.get(side, {}).get(d.key) for c in shared],
                    [theirs[c].scores.get(side, {}).get(d.key) for c in shared],
                    labels=d.scale.values,
                )
                if kappa.n:
                    pairs.append({"rater": rater, **_stat(kappa)})
            if pairs:
                defined = [p["value"] for p in pairs if p["value"] is not None]
                dimensions.append(
                    {
                        "side": side,
                        "key": d.key,
                        "kappa_mean": sum(defined) / len(defined) if defined else None,
                        "pairs": pairs,
                    }
                )
    entry: dict[str, Any] = {"judge": judge, "cases": len(mine), "dimensions": dimensions}
    if data.pairwise:
        entry["preference"] = {
            ties: _pooled_preference(mine, humans, ties=ties == "with_ties")
            for ties in ("with_ties", "without_ties")
        }
    return entry


def _pooled_preference(
    mine: dict[int, Any], humans: dict[str, dict[int, Any]], *, ties: bool
) -> dict[str, Any]:
    """The share of (judge, rater) verdict pairs that agree, over every rater and shared case: each pair
    is one judgement of the judge against one person, so a case rated by three people weighs three."""
    agreeing = total = 0
    for theirs in humans.values():
        for case_id, rating in theirs.items():
            judged = mine.get(case_id)
            if judged is None or judged.preference is None or rating.preference is None:
                continue
            if not ties and "tie" in (judged.preference, rating.preference):
                continue
            total += 1
            agreeing += judged.preference == rating.preference
    if not total:
        return {"value": None, "n": 0, "reason": "too_few_pairable"}
    return {"value": agreeing / total, "n": total, "reason": None}


def judges_table(data: TaskData) -> list[dict[str, Any]]:
    """Per judge and task_type group ("" for all, then level 1): its agreement with the human raters."""
    judges = sorted({r.rater for c in data.cases for r in c.judged})
    groups: dict[str, list[Case]] = {ALL: data.cases}
    for case in data.cases:
        groups.setdefault(task_level1(case.task_type), []).append(case)
    return [
        {"task_type": key, **_judge_against_raters(groups[key], judge, data)}
        for judge in judges
        for key in [ALL, *sorted(k for k in groups if k != ALL)]
    ]
