"""The scales a rubric dimension is scored on, and how a score maps onto [0, 1].

Dimensions on different scales (a binary "leaks the system prompt", a 1-5 helpfulness, a 1-10 writing
score) only combine into one usability number, and only compare across raters and gold, once each score
is placed on a common [0, 1] line: lowest point 0, highest 1, linear in between, so a 4 on 1-5 (0.75)
and a 7.75 on 1-10 mean the same distance from the top.
"""

from enum import StrEnum


class Scale(StrEnum):
    """A scale by the name rubrics store in JSON."""

    binary = "binary"
    one_to_five = "1-5"
    one_to_ten = "1-10"

    @property
    def low(self) -> int:
        return 0 if self is Scale.binary else 1

    @property
    def high(self) -> int:
        return {Scale.binary: 1, Scale.one_to_five: 5, Scale.one_to_ten: 10}[self]

    @property
    def values(self) -> tuple[int, ...]:
        """Every point of the scale in order, used or not: ordinal alpha and kappa take this as their domain."""
        return tuple(range(self.low, self.high + 1))


def normalise(score: float, scale: Scale) -> float:
    """`score` on [0, 1]. Fractional scores inside the range are allowed (a mean or an adjudicated value);
    anything outside it is a caller's bug or bad data, and is refused rather than clipped."""
    if not scale.low <= score <= scale.high:
        raise ValueError(f"score {score!r} is outside the {scale.value} scale ({scale.low}..{scale.high})")
    return (score - scale.low) / (scale.high - scale.low)
