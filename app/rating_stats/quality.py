"""Where raters disagree, and how far each rater is from gold.

Agreement statistics say whether a dimension is reliable overall; these say which cases and which
raters to look at. The disputed-case list feeds adjudication (a researcher's score then replaces the
mean), and gold accuracy makes a careless or miscalibrated rater visible. All distances are on the
normalised [0, 1] line, so a 1-10 dimension and a binary one compare.
"""

import statistics
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

from app.rating_stats.rubric import Rubric
from app.rating_stats.scales import normalise
from app.rating_stats.usability import Scores

DEFAULT_MIN_GOLD_CASES = 5
DEFAULT_GOLD_MARGIN = 0.1  # 0.4 points on a 1-5 scale, 0.9 on 1-10


@dataclass(frozen=True)
class Spread:
    """How far apart a case's raters are on one dimension: max - min and the population standard
    deviation of their normalised scores, over `n` raters."""

    range: float
    std: float
    n: int


@dataclass(frozen=True)
class Dispute:
    """A case for adjudication: its widest dimension and the spreads of all its dimensions."""

    case: Hashable
    dimension: str
    range: float
    std: float
    spreads: dict[str, Spread]


@dataclass(frozen=True)
class GoldScore:
    """Against gold on `n` (case, dimension) scores: mean absolute normalised error, share exactly equal."""

    mae: float
    exact: float
    n: int


@dataclass(frozen=True)
class GoldAccuracy:
    """One rater against gold: over `cases` gold cases they rated, overall and per dimension."""

    cases: int
    overall: GoldScore
    dimensions: dict[str, GoldScore]


def case_spread(ratings: Sequence[Scores], rubric: Rubric) -> dict[str, Spread]:
    """Per dimension scored by at least 2 of this case's raters, their spread; others are absent."""
    spreads = {}
    for dim in rubric.dimensions:
        values = [normalise(s, dim.scale) for r in ratings if (s := r.get(dim.key)) is not None]
        if len(values) >= 2:
            spreads[dim.key] = Spread(max(values) - min(values), statistics.pstdev(values), len(values))
    return spreads


def most_disputed(
    cases: Mapping[Hashable, Sequence[Scores]], rubric: Rubric, *, limit: int = 20
) -> list[Dispute]:
    """The cases whose raters are furthest apart, most disputed first, at most `limit`.

    A case ranks by its widest dimension's normalised range (one rater saying 1 and another 5 on any
    dimension is what needs a second look), then by that dimension's standard deviation (one outlier
    among five raters is less of a dispute than a split panel). Cases where every rater agreed on every
    dimension, or that fewer than 2 raters scored, are not listed. Ties keep the input order.
    """
    disputes = []
    for case, ratings in cases.items():
        spreads = case_spread(ratings, rubric)
        if not spreads:
            continue
        key = max(spreads, key=lambda k: (spreads[k].range, spreads[k].std))
        worst = spreads[key]
        if worst.range > 0:
            disputes.append(Dispute(case, key, worst.range, worst.std, spreads))
    disputes.sort(key=lambda d: (-d.range, -d.std))
    return disputes[:limit]


def gold_accuracy(
    ratings: Mapping[Hashable, Mapping[Hashable, Scores]],
    gold: Mapping[Hashable, Scores],
    rubric: Rubric,
) -> dict[Hashable, GoldAccuracy]:
    """Each rater's accuracy on the gold cases they rated (`ratings[rater][case]`), against `gold[case]`.

    Only (case, dimension) pairs both sides scored count. Overall pools every such pair, whatever its
    dimension's weight: this measures the rater, not the usability formula. A rater with no gold pair is
    absent from the result.
    """
    result = {}
    for rater, by_case in ratings.items():
        errors: dict[str, list[float]] = {dim.key: [] for dim in rubric.dimensions}
        cases = 0
        for case, scores in by_case.items():
            truth = gold.get(case)
            if truth is None:
                continue
            compared = False
            for dim in rubric.dimensions:
                given, expected = scores.get(dim.key), truth.get(dim.key)
                if given is not None and expected is not None:
                    errors[dim.key].append(abs(normalise(given, dim.scale) - normalise(expected, dim.scale)))
                    compared = True
            cases += compared
        pooled = [e for errs in errors.values() for e in errs]
        if pooled:
            per_dim = {key: _gold_score(errs) for key, errs in errors.items() if errs}
            result[rater] = GoldAccuracy(cases=cases, overall=_gold_score(pooled), dimensions=per_dim)
    return result


def far_from_gold(
    accuracies: Mapping[Hashable, GoldAccuracy],
    *,
    min_cases: int = DEFAULT_MIN_GOLD_CASES,
    margin: float = DEFAULT_GOLD_MARGIN,
) -> set[Hashable]:
    """Raters whose overall gold error exceeds the median rater's by more than `margin`.

    Relative on purpose: gold is one researcher's judgement and some task types are hard for everyone,
    so the question is who is far from gold compared with their peers. Only raters with at least
    `min_cases` gold cases take part, as flagged and as the median, because two or three cases say
    little about a rater. With a single eligible rater nobody is flagged (they are their own median).
    """
    eligible = {r: a.overall.mae for r, a in accuracies.items() if a.cases >= min_cases}
    if not eligible:
        return set()
    median = statistics.median(eligible.values())
    return {r for r, mae in eligible.items() if mae > median + margin}


def _gold_score(errors: list[float]) -> GoldScore:
    # An error of 0 on the normalised line is an exact match on the scale (same point, same scale).
    return GoldScore(
        mae=sum(errors) / len(errors), exact=sum(e == 0 for e in errors) / len(errors), n=len(errors)
    )
