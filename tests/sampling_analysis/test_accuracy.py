"""Wilson intervals and pass@k agree with hand computation, the quadratic they solve, and enumeration."""

import math
from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest

from app.sampling_analysis.accuracy import Z95, accuracy_by_task, pass_at_k, pass_at_k_by_task, wilson


def _wilson_by_roots(k: int, n: int, z: float) -> tuple[float, float]:
    # The Wilson bounds are the p with (k/n - p)^2 = z^2 p (1 - p) / n: a quadratic, solved here by numpy.
    p_hat = k / n
    roots = np.roots([1 + z * z / n, -(2 * p_hat + z * z / n), p_hat * p_hat])
    low, high = sorted(float(np.real(r)) for r in roots)
    return low, high


def test_hand_computed() -> None:
    low, high = wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)


@pytest.mark.parametrize(("k", "n"), [(1, 10), (8, 10), (50, 100), (3, 7), (999, 1000), (1, 2)])
def test_matches_the_quadratic(k: int, n: int) -> None:
    assert wilson(k, n) == pytest.approx(_wilson_by_roots(k, n, Z95), abs=1e-12)


def test_edges() -> None:
    z2 = Z95 * Z95
    assert wilson(0, 10) == pytest.approx((0.0, z2 / (10 + z2)))
    assert wilson(0, 10)[0] == 0.0
    assert wilson(10, 10) == pytest.approx((10 / (10 + z2), 1.0))
    assert wilson(10, 10)[1] == 1.0
    assert wilson(0, 0) is None
    low, high = wilson(5, 10, z=1.0)
    assert low < 0.5 < high


@pytest.mark.parametrize(("k", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_rejects_impossible_counts(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson(k, n)


@pytest.mark.parametrize("z", [0.0, -1.0, float("nan")])
def test_rejects_a_non_positive_z(z: float) -> None:
    with pytest.raises(ValueError, match="z must be > 0"):
        wilson(1, 2, z=z)


def test_accuracy_by_task() -> None:
    table = accuracy_by_task(["a", "a", "a", "b", "b"], [True, False, None, True, True])
    assert table["a"]["n"] == 2 and table["a"]["correct"] == 1 and table["a"]["unscored"] == 1
    assert table["a"]["accuracy"] == 0.5
    assert table["a"]["ci95"] == wilson(1, 2)
    assert table["b"]["accuracy"] == 1.0
    only_unscored = accuracy_by_task(["c"], [None])["c"]
    assert only_unscored["accuracy"] is None and only_unscored["ci95"] is None


def test_accuracy_by_task_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 task types for 1 outcomes"):
        accuracy_by_task(["a", "b"], [True])


def _pass_at_k_by_enumeration(n: int, c: int, k: int) -> Fraction:
    # Samples 0..c-1 are the correct ones; count the k-subsets that contain at least one of them.
    subsets = list(combinations(range(n), k))
    return Fraction(sum(1 for s in subsets if min(s) < c), len(subsets))


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_matches_enumeration(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(_pass_at_k_by_enumeration(n, c, k)), abs=1e-12)


def test_pass_at_k_large_n_does_not_overflow() -> None:
    got = pass_at_k(1000, 3, 10)
    expected = 1 - math.comb(997, 10) / math.comb(1000, 10)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 6, 1), (5, 1, 0), (5, 1, 6), (5, -1, 1)])
def test_pass_at_k_rejects(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(n, c, k)


def test_pass_at_k_by_task() -> None:
    gens = (
        [{"task_type": "t", "prompt_id": 1}] * 4
        + [{"task_type": "t", "prompt_id": 2}] * 4
        + [{"task_type": "t", "prompt_id": 3}] * 1
    )
    outcomes = [True, False, False, False] + [False] * 4 + [True]
    table = pass_at_k_by_task(gens, outcomes, k=2)
    # Prompt 1: 1 - C(3,2)/C(4,2) = 1/2; prompt 2: 0; prompt 3 has one sample, fewer than k.
    assert table["t"] == {"prompts": 2, "skipped": 1, "pass_at_k": pytest.approx(0.25)}
