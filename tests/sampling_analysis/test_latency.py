"""The latency fit agrees with numpy.polyfit, recovers known per-band lines, and declines when undetermined."""

import numpy as np
import pytest

from app.sampling_analysis.latency import fit_line, latency_fit


def _gens(tokens, times, prompt_tokens) -> list[dict]:
    return [
        {"tokens": int(t), "time_s": float(s), "prompt_tokens": int(p)}
        for t, s, p in zip(tokens, times, prompt_tokens, strict=True)
    ]


def test_overall_fit_matches_polyfit() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 512, size=500)
    times = 0.02 * tokens + 0.3 + rng.normal(0, 0.05, size=500)
    out = latency_fit(_gens(tokens, times, rng.integers(10, 2000, size=500)))
    k, b = np.polyfit(tokens.astype(float), times, 1)
    fit = out["overall"]
    assert fit["k"] == pytest.approx(k, rel=1e-9)
    assert fit["b"] == pytest.approx(b, rel=1e-9)
    assert fit["r2"] == pytest.approx(np.corrcoef(tokens, times)[0, 1] ** 2, rel=1e-9)
    assert fit["n"] == 500
    assert out["tokens_per_s"] == pytest.approx(tokens.sum() / times.sum())


def test_bands_recover_their_own_lines() -> None:
    tokens = np.tile(np.arange(1, 31), 3)
    prompt = np.repeat([100, 1000, 5000], 30)
    k = np.repeat([0.01, 0.02, 0.04], 30)
    b = np.repeat([0.1, 0.5, 2.0], 30)
    out = latency_fit(_gens(tokens, k * tokens + b, prompt), bands=3)
    got = [
        (band["prompt_tokens"], band["fit"]["k"], band["fit"]["b"], band["fit"]["r2"])
        for band in out["bands"]
    ]
    assert [g[0] for g in got] == [(100, 100), (1000, 1000), (5000, 5000)]
    for (_, gk, gb, r2), ek, eb in zip(got, [0.01, 0.02, 0.04], [0.1, 0.5, 2.0], strict=True):
        assert gk == pytest.approx(ek) and gb == pytest.approx(eb) and r2 == pytest.approx(1.0)
    assert sum(band["fit"]["n"] for band in out["bands"]) == 90


def test_tied_prompt_lengths_give_fewer_bands_not_empty_ones() -> None:
    out = latency_fit(_gens([1, 2, 3, 4], [1, 2, 3, 4], [50, 50, 50, 50]), bands=3)
    assert len(out["bands"]) == 1
    assert out["bands"][0]["fit"]["k"] == pytest.approx(1.0)


def test_undetermined_fits_are_none() -> None:
    assert latency_fit([])["overall"] is None
    assert latency_fit([])["tokens_per_s"] is None
    one = latency_fit(_gens([5], [1.0], [10]))
    assert one["overall"] is None and one["bands"][0]["fit"] is None
    assert one["tokens_per_s"] == 5.0
    # The same token count everywhere: no slope to find.
    assert fit_line(np.array([3.0, 3.0]), np.array([1.0, 2.0])) is None
    # The same time everywhere: slope 0, and R² has nothing to explain.
    flat = fit_line(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0]))
    assert flat == {"k": 0.0, "b": 2.0, "r2": None, "n": 3}


def test_generations_without_time_are_skipped() -> None:
    gens = _gens([1, 2, 3], [1.0, 2.0, 3.0], [1, 1, 1]) + [{"tokens": 9, "time_s": None, "prompt_tokens": 1}]
    assert latency_fit(gens)["overall"]["n"] == 3


def test_bad_band_count() -> None:
    with pytest.raises(ValueError, match="bands must be >= 1"):
        latency_fit([], bands=0)
