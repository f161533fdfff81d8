"""Alpha, quadratic kappa and percent agreement match krippendorff, scikit-learn, published and hand figures."""

import itertools
import math

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from app.rating_stats.agreement import (
    HUMAN_PAIRWISE_CEILING,
    SINGLE_VALUE,
    TOO_FEW_PAIRABLE,
    krippendorff_alpha,
    pairwise_kappas,
    percent_agreement,
    quadratic_kappa,
)
from app.rating_stats.scales import Scale

NAN = float("nan")
LEVELS = ("nominal", "ordinal", "interval")

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units, values 1-5.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def generated(seed: int) -> tuple[np.ndarray, Scale]:
    """2-8 raters x 5-60 units on 1-5 or 1-10, raters noisy around a true score, 0-40% missing."""
    rng = np.random.default_rng(seed)
    scale = Scale.one_to_five if seed % 2 else Scale.one_to_ten
    raters, units = int(rng.integers(2, 9)), int(rng.integers(5, 61))
    truth = rng.integers(scale.low, scale.high + 1, size=units)
    noise = rng.normal(0, rng.uniform(0.3, 3.0), size=(raters, units))
    m = np.clip(np.rint(truth + noise), scale.low, scale.high)
    m[rng.random(m.shape) < rng.uniform(0, 0.4)] = NAN
    return m, scale


@pytest.mark.parametrize("seed", range(150))
def test_alpha_matches_krippendorff(seed: int) -> None:
    m, scale = generated(seed)
    for level in LEVELS:
        ours = krippendorff_alpha(m, level=level, domain=scale.values)
        try:
            theirs = krippendorff.alpha(m, value_domain=list(scale.values), level_of_measurement=level)
        except ValueError:  # no unit rated twice
            theirs = NAN
        if math.isnan(theirs):
            assert ours.value is None and ours.reason in (TOO_FEW_PAIRABLE, SINGLE_VALUE)
        else:
            assert ours.value == pytest.approx(theirs, abs=1e-9), level
            assert ours.n == sum(int(c) for c in (~np.isnan(m)).sum(axis=0) if c >= 2)


@pytest.mark.parametrize("seed", range(150))
def test_kappa_matches_scikit_learn(seed: int) -> None:
    m, scale = generated(seed)
    for i, j in [(0, 1), (0, m.shape[0] - 1)][: 1 + (m.shape[0] > 2)]:
        both = ~np.isnan(m[i]) & ~np.isnan(m[j])
        ours = quadratic_kappa(m[i], m[j], labels=scale.values)
        assert ours.n == both.sum()
        if both.sum() < 2:
            assert ours.value is None and ours.reason == TOO_FEW_PAIRABLE
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            theirs = cohen_kappa_score(m[i][both], m[j][both], weights="quadratic", labels=list(scale.values))
        if math.isnan(theirs):
            assert ours.value is None and ours.reason == SINGLE_VALUE
        else:
            assert ours.value == pytest.approx(theirs, abs=1e-9)


def test_alpha_published_figures() -> None:
    # Krippendorff's own results for this data: nominal .743, ordinal .815, interval .849.
    got = {
        level: krippendorff_alpha(KRIPPENDORFF_2011, level=level, domain=range(1, 6)).value
        for level in LEVELS
    }
    assert {k: round(v, 3) for k, v in got.items() if v is not None} == {
        "nominal": 0.743,
        "ordinal": 0.815,
        "interval": 0.849,
    }
    # Wikipedia's example: nominal alpha 0.691358.
    wiki = [
        [None, None, None, None, None, 3, 4, 1, 2, 1, 1, 3, 3, None, 3],
        [1, None, 2, 1, 3, 3, 4, 3, None, None, None, None, None, None, None],
        [None, None, 2, 1, 3, 4, 4, None, 2, 1, 1, 3, 3, None, 4],
    ]
    assert krippendorff_alpha(wiki, level="nominal").value == pytest.approx(0.691358, abs=1e-6)


def test_alpha_hand_computed() -> None:
    # Units (1,1), (2,2), (1,2): o11 = o22 = 2, o12 = o21 = 1, n1 = n2 = 3, n = 6; D_o ~ 2,
    # D_e ~ 2 * 3 * 3 / 5, so alpha = 1 - 2 / (18 / 5) = 4/9 at every level (two values, one distance).
    m = [[1, 2, 1], [1, 2, 2]]
    for level in LEVELS:
        got = krippendorff_alpha(m, level=level, domain=Scale.one_to_five.values)
        assert got.value == pytest.approx(4 / 9) and got.n == 6


def test_ordinal_domain_includes_unused_values() -> None:
    # Only 1, 3 and 5 are used; the unused 2 and 4 add nothing to ordinal distances (their count is 0)
    # but must be accepted, and a value off the scale must not be.
    m = [[1, 3, 5, 5, 1], [1, 5, 5, 3, 3]]
    ours = krippendorff_alpha(m, level="ordinal", domain=Scale.one_to_five.values).value
    assert ours == pytest.approx(
        krippendorff.alpha(m, value_domain=[1, 2, 3, 4, 5], level_of_measurement="ordinal"), abs=1e-12
    )
    with pytest.raises(ValueError, match="value 6 is not on the scale"):
        krippendorff_alpha([[1, 6], [1, 2]], level="ordinal", domain=Scale.one_to_five.values)
    with pytest.raises(ValueError, match="value 2.5 is not on the scale"):
        quadratic_kappa([1, 2.5], [1, 2], labels=Scale.one_to_five.values)


def test_kappa_hand_computed() -> None:
    # O: (1,1), (2,2), (3,2); rows 1,1,1 and columns 1,2,0 give E; sum w*O = 1, sum w*E = 3: 1 - 1/3.
    got = quadratic_kappa([1, 2, 3, None], [1, 2, 2, 4], labels=Scale.one_to_five.values)
    assert got.value == pytest.approx(2 / 3) and got.n == 3
    assert quadratic_kappa([1, 2, 3, 4], [1, 2, 3, 4], labels=Scale.one_to_five.values).value == 1.0
    kappas = pairwise_kappas([[1, 2, 3], [1, 2, 2], [1, 2, 3]], labels=Scale.one_to_five.values)
    assert set(kappas) == {(0, 1), (0, 2), (1, 2)}
    assert kappas[(0, 2)].value == 1.0 and kappas[(0, 1)].value == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("matrix", "reason"),
    [
        ([[1, None, None], [None, 2, None]], TOO_FEW_PAIRABLE),  # nobody shares a unit
        ([[None, None], [None, None]], TOO_FEW_PAIRABLE),
        ([[], []], TOO_FEW_PAIRABLE),
        ([[3, 3, 3], [3, 3, None]], SINGLE_VALUE),
        ([[3, 3, 1], [3, 3, None]], SINGLE_VALUE),  # the 1 has no partner, so only 3 is pairable
    ],
)
def test_alpha_degenerate(matrix: list, reason: str) -> None:
    for level in LEVELS:
        got = krippendorff_alpha(matrix, level=level, domain=Scale.one_to_five.values)
        assert got.value is None and got.reason == reason
        assert krippendorff_alpha(matrix, level=level).reason == reason


def test_kappa_degenerate() -> None:
    labels = Scale.one_to_five.values
    assert quadratic_kappa([3], [3], labels=labels).reason == TOO_FEW_PAIRABLE
    assert quadratic_kappa([3, None], [None, 3], labels=labels).reason == TOO_FEW_PAIRABLE
    assert quadratic_kappa([4, 4, 4], [4, 4, 4], labels=labels).reason == SINGLE_VALUE
    # Each constant but on different values: defined (kappa 0), as in scikit-learn.
    assert quadratic_kappa([4, 4], [5, 5], labels=labels).value == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: krippendorff_alpha([1, 2, 3], level="ordinal"), "2-D"),
        (lambda: krippendorff_alpha([[1, 2], [1]], level="ordinal"), "rectangular"),
        (lambda: krippendorff_alpha([["a", 2]], level="ordinal"), "rectangular"),
        (lambda: krippendorff_alpha([[1, 2], [1, 2]], level="ratio"), "level must be"),  # type: ignore[arg-type]
        (lambda: krippendorff_alpha([[None]], level="ordinl"), "level must be"),  # type: ignore[arg-type]
        (lambda: krippendorff_alpha([[1, 2], [1, 2]], level="ordinal", domain=[3, 2, 1]), "increasing"),
        (lambda: quadratic_kappa([1, 2], [1, 2, 3], labels=[1, 2, 3]), "differ in length"),
        (lambda: percent_agreement([["a", "b"], ["a"]], ties=True), "one verdict"),
    ],
)
def test_bad_input_is_a_clear_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_percent_agreement_hand_computed() -> None:
    verdicts = [["A", "tie", "B"], ["A", "A", None], ["B", "A", "B"]]
    # With ties: unit 1 A,A,B 1/3; unit 2 tie,A,A 1/3; unit 3 B,B 1. Without: unit 2 keeps A,A only: 1.
    with_ties = percent_agreement(verdicts, ties=True)
    assert with_ties.value == pytest.approx(5 / 9) and with_ties.n == 3
    assert percent_agreement(verdicts, ties=False).value == pytest.approx(7 / 9)
    only_ties = percent_agreement([["tie", "A"], ["tie", None]], ties=False)
    assert only_ties.value is None and only_ties.reason == TOO_FEW_PAIRABLE
    assert percent_agreement([], ties=True).reason == TOO_FEW_PAIRABLE


@pytest.mark.parametrize("seed", range(20))
def test_percent_agreement_matches_pair_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    raters, units = int(rng.integers(2, 9)), 25
    options = np.array(["A", "B", "tie", None], dtype=object)
    verdicts = options[rng.choice(4, size=(raters, units), p=[0.35, 0.3, 0.15, 0.2])].tolist()
    for ties in (True, False):
        shares = []
        for u in range(units):
            pairs = [
                (verdicts[i][u], verdicts[j][u])
                for i, j in itertools.combinations(range(raters), 2)
                if verdicts[i][u] is not None
                and verdicts[j][u] is not None
                and (ties or "tie" not in (verdicts[i][u], verdicts[j][u]))
            ]
            if pairs:
                shares.append(sum(a == b for a, b in pairs) / len(pairs))
        assert percent_agreement(verdicts, ties=ties).value == pytest.approx(np.mean(shares), abs=1e-12)


def test_ceilings_are_the_mt_bench_figures() -> None:
    assert HUMAN_PAIRWISE_CEILING == {"with_ties": 0.63, "without_ties": 0.81}
