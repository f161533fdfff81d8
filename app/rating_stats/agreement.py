"""Inter-rater agreement: Krippendorff's alpha, quadratic-weighted Cohen's kappa, pairwise percent agreement.

These tell a researcher whether scores from several raters (an LLM judge being one) can be trusted
before averaging them. Alpha is the headline for a dimension: it takes any number of raters, missing
ratings (overlap N out of many raters leaves most cells empty) and the ordinal nature of a 1-5 scale.
Kappa is per rater pair, to find the rater who disagrees with everyone. Percent agreement is what
pairwise-preference studies report, so it is what compares against their ceilings.

Input is a reliability matrix: one row per rater, one column per unit (case), None or NaN where the rater
did not rate the case. A statistic that is undefined on the data (too few overlapping ratings, everyone
using one value) comes back as value None with a `reason` code the page translates, never NaN and never
an exception: a new task with two ratings so far is normal, not an error.
"""

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

TOO_FEW_PAIRABLE = "too_few_pairable"  # fewer than 2 values that have a partner on the same unit
SINGLE_VALUE = "single_value"  # every pairable value is the same: expected disagreement is 0

# Human-human agreement on pairwise preference in MT-Bench (Zheng et al. 2023, "Judging LLM-as-a-Judge
# with MT-Bench and Chatbot Arena", agreement table on the MT-bench human judgments): 63% when a tie is
# a valid vote (their setup S1), 81% when votes with a tie are left out (S2). Raters rarely agree more
# than experts did there, so these are ceilings to read agreement against, not targets.
HUMAN_PAIRWISE_CEILING = {"with_ties": 0.63, "without_ties": 0.81}

Level = Literal["nominal", "ordinal", "interval"]
LEVELS = ("nominal", "ordinal", "interval")


@dataclass(frozen=True)
class Agreement:
    """A statistic, how much data it rests on (`n`, defined by each function), and why it is missing."""

    value: float | None
    n: int
    reason: str | None = None


def krippendorff_alpha(matrix: Any, *, level: Level, domain: Sequence[float] | None = None) -> Agreement:
    """Krippendorff's alpha, 1 - D_o / D_e over the coincidence matrix of pairable values.

    `domain` is the scale's ordered values (`Scale.values`), used or not, as `krippendorff.alpha(...,
    value_domain=...)` takes it; a value outside it is a ValueError. Without it the values that occur are
    the domain. `n` is the number of pairable values (ratings on units that at least 2 raters rated).
    Computed from per-unit value counts with one matrix product, so 20 raters x 5,000 cases is milliseconds.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be nominal, ordinal or interval, got {level!r}")
    m = _matrix(matrix, "reliability matrix")
    present = ~np.isnan(m)
    dom = np.unique(m[present]) if domain is None else _domain(domain)
    if dom.size == 0:
        return Agreement(None, 0, TOO_FEW_PAIRABLE)
    idx = _indexes(m[present], dom)
    n_units, n_values = m.shape[1], dom.size
    units = np.nonzero(present)[1]
    counts = np.bincount(units * n_values + idx, minlength=n_units * n_values).reshape(n_units, n_values)
    per_unit = counts.sum(axis=1)
    pairable = per_unit >= 2
    counts, per_unit = counts[pairable].astype(float), per_unit[pairable]
    # o[c, k] = sum over units of c_u,c * (c_u,k - [c = k]) / (m_u - 1): each ordered pair of values within
    # a unit, weighted so that every unit contributes its m_u values in all.
    scaled = counts / (per_unit - 1)[:, None]
    coincidences = scaled.T @ counts - np.diag(scaled.sum(axis=0))
    n_v = coincidences.sum(axis=0)
    n = float(n_v.sum())
    if n < 2:
        return Agreement(None, int(round(n)), TOO_FEW_PAIRABLE)
    if np.count_nonzero(n_v) < 2:
        return Agreement(None, int(round(n)), SINGLE_VALUE)
    delta = _distances(dom, n_v, level)
    expected = (np.outer(n_v, n_v) - np.diag(n_v)) / (n - 1)
    return Agreement(float(1 - (coincidences * delta).sum() / (expected * delta).sum()), int(round(n)))


def quadratic_kappa(a: Sequence[Any], b: Sequence[Any], *, labels: Sequence[float]) -> Agreement:
    """Cohen's kappa with quadratic weights for two raters, over the units both rated.

    Weights are squared distances between label positions in `labels` (the scale's values, used or not,
    as scikit-learn's `labels=`), so a 2-vs-5 disagreement costs nine times a 4-vs-5. `n` is the number of
    units both rated; fewer than 2 gives no kappa (one unit is always 0 or undefined).
    """
    x, y = _vector(a, "a"), _vector(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"the two raters' vectors differ in length ({x.size} and {y.size})")
    dom = _domain(labels)
    both = ~np.isnan(x) & ~np.isnan(y)
    n = int(both.sum())
    if n < 2:
        return Agreement(None, n, TOO_FEW_PAIRABLE)
    size = dom.size
    ix, iy = _indexes(x[both], dom), _indexes(y[both], dom)
    observed = np.bincount(ix * size + iy, minlength=size * size).reshape(size, size).astype(float)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    positions = np.arange(size, dtype=float)
    weights = (positions[:, None] - positions[None, :]) ** 2
    denominator = (weights * expected).sum()
    if denominator == 0:
        return Agreement(None, n, SINGLE_VALUE)
    return Agreement(float(1 - (weights * observed).sum() / denominator), n)


def pairwise_kappas(matrix: Any, *, labels: Sequence[float]) -> dict[tuple[int, int], Agreement]:
    """Quadratic kappa for every pair of rows (raters) i < j of a reliability matrix."""
    m = _matrix(matrix, "reliability matrix")
    return {
        (i, j): quadratic_kappa(m[i], m[j], labels=labels)
        for i in range(m.shape[0])
        for j in range(i + 1, m.shape[0])
    }


def percent_agreement(
    verdicts: Sequence[Sequence[Hashable | None]], *, ties: bool, tie: Hashable = "tie"
) -> Agreement:
    """Share of rater pairs that gave the same pairwise verdict, averaged over units (raters x units input).

    As in MT-Bench: the chance that two raters picked at random agree on a unit picked at random, so each
    unit weighs the same however many raters it had. With `ties=False` a pair where either rater said
    `tie` is left out (MT-Bench's setup without ties). `n` is the number of units with at least one pair.
    """
    if len({len(row) for row in verdicts}) > 1:
        raise ValueError("every rater's row must have one verdict (or None) per unit")
    shares = []
    for column in zip(*verdicts, strict=True):
        votes = [v for v in column if v is not None and (ties or v != tie)]
        pairs = len(votes) * (len(votes) - 1) // 2
        if pairs:
            agreeing = sum(c * (c - 1) // 2 for c in Counter(votes).values())
            shares.append(agreeing / pairs)
    if not shares:
        return Agreement(None, 0, TOO_FEW_PAIRABLE)
    return Agreement(sum(shares) / len(shares), len(shares))


def _distances(dom: np.ndarray, n_v: np.ndarray, level: Level) -> np.ndarray:
    """Squared distance between every two domain values under the level of measurement."""
    if level == "nominal":
        return 1.0 - np.eye(dom.size)
    if level == "interval":
        return (dom[:, None] - dom[None, :]) ** 2
    # Ordinal (Krippendorff's): the pairable values from c through k, less half of c's and k's own,
    # squared. Values of the domain nobody used add 0 to the sum.
    cum = np.concatenate([[0.0], np.cumsum(n_v)])
    positions = np.arange(dom.size)
    lo, hi = np.minimum.outer(positions, positions), np.maximum.outer(positions, positions)
    return (cum[hi + 1] - cum[lo] - (n_v[lo] + n_v[hi]) / 2) ** 2


def _matrix(data: Any, what: str) -> np.ndarray:
    try:
        m = np.array(data, dtype=float)  # None becomes NaN
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a rectangular raters x units array of numbers or None") from None
    if m.shape == (0,):  # no raters yet: a new task, not a malformed matrix
        return m.reshape(0, 0)
    if m.ndim != 2:
        raise ValueError(f"{what} must be 2-D (raters x units), got shape {m.shape}")
    return m


def _vector(data: Any, what: str) -> np.ndarray:
    try:
        v = np.array(data, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"rater {what} must be a list of numbers or None") from None
    if v.ndim != 1:
        raise ValueError(f"rater {what} must be 1-D, got shape {v.shape}")
    return v


def _domain(values: Sequence[float]) -> np.ndarray:
    dom = np.asarray(values, dtype=float)
    if dom.ndim != 1 or dom.size == 0 or np.isnan(dom).any() or (np.diff(dom) <= 0).any():
        raise ValueError(
            f"the value domain must be a non-empty increasing list of numbers, got {list(values)}"
        )
    return dom


def _indexes(values: np.ndarray, dom: np.ndarray) -> np.ndarray:
    """Position of each value in the domain; a value not on it is bad data, named in the error."""
    idx = np.minimum(np.searchsorted(dom, values), dom.size - 1)
    off = dom[idx] != values
    if off.any():
        raise ValueError(f"value {values[off][0]:g} is not on the scale {dom.tolist()}")
    return idx
