"""Usability of a case: the team's weighted formula over its per-dimension scores.

The field's practice is to score each dimension separately, so a drop shows which dimension got worse,
and to combine them by the team's own weighting into one number that decides whether an answer is
usable. Scores are kept raw and usability is recomputed from them, so changing weights in a new rubric
version re-scores every case without re-rating.
"""

from collections.abc import Mapping, Sequence

from app.rating_stats.rubric import Rubric
from app.rating_stats.scales import normalise

Scores = Mapping[str, float | None]  # one rater's (or one case's) scores by dimension key; None = skipped


def usability(scores: Scores, rubric: Rubric) -> float | None:
    """Weighted mean of the normalised scores of the dimensions that were scored, in [0, 1].

    A skipped dimension (absent or None) drops out of both numerator and denominator rather than
    counting as 0, so an unscored "format" does not make an answer unusable. Weight-0 dimensions and
    keys the rubric does not have (a dimension a later version removed) do not count. None when no
    weighted dimension was scored: there is nothing to say, which is not the same as 0.
    """
    total = weight_sum = 0.0
    for dim in rubric.dimensions:
        score = scores.get(dim.key)
        if score is None or dim.weight == 0:
            continue
        total += dim.weight * normalise(score, dim.scale)
        weight_sum += dim.weight
    return total / weight_sum if weight_sum else None


def is_usable(value: float | None, rubric: Rubric) -> bool | None:
    """Whether a usability clears the rubric's threshold (inclusive); None stays unknown."""
    return None if value is None else value >= rubric.threshold


def case_scores(
    ratings: Sequence[Scores], rubric: Rubric, adjudicated: Scores | None = None
) -> dict[str, float]:
    """A case's score per dimension: its raters' mean, or the adjudicated score where a researcher set one.

    Adjudication exists for the disputed cases, where a mean of 1 and 5 is a 3 nobody gave; the
    researcher's score then stands for the case. Dimensions nobody scored are absent, so `usability` of
    the result skips them. Every score is checked against its scale.
    """
    result = {}
    for dim in rubric.dimensions:
        given = (adjudicated or {}).get(dim.key)
        if given is None:
            values = [s for r in ratings if (s := r.get(dim.key)) is not None]
            if not values:
                continue
            given = sum(values) / len(values)
            for value in values:
                normalise(value, dim.scale)
        else:
            normalise(given, dim.scale)
        result[dim.key] = given
    return result
