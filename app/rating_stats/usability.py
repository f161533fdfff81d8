"""Usability of a case: the team's weighted formula over its per-dimension scores.

The field's practice is to score each dimension separately, so a drop shows which dimension got worse,
and to combine them by the team's own weighting into one number that decides whether an answer is
usable. Scores are kept raw and usability is recomputed from them, so changing weights in a new rubric
version re-scores every case without re-rating.
"""

from collections.abc import Mapping

from app.rating_stats.rubric import Rubric
from app.rating_stats.scales import normalise


def usability(scores: Mapping[str, float | None], rubric: Rubric) -> float | None:
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
