"""The experiment statistics against published values and against what the methods promise."""

from __future__ import annotations

import numpy as np
import pytest

from supervisor_lib.analytics.experiment_stats import (
    bootstrap_diff,
    bootstrap_mean,
    newcombe_diff,
    runs_needed_rate,
    wilson,
    z_value,
)


def test_wilson_matches_the_textbook_values() -> None:
    # 8 of 10 at 95 %: [0.4902, 0.9433] (Wilson 1927; e.g. Brown, Cai & DasGupta 2001)
    interval = wilson(8, 10)
    assert interval.estimate == 0.8
    assert (interval.low, interval.high) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    # Newcombe 1998, table I: 81 of 263 → [0.2553, 0.3662]; 0 of 10 → [0, 0.2775]; 10 of 10 → [0.7225, 1]
    assert (wilson(81, 263).low, wilson(81, 263).high) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert (wilson(0, 10).low, wilson(0, 10).high) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert (wilson(10, 10).low, wilson(10, 10).high) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(0, 0).estimate is None
    assert wilson(8, 10, 0.99).low < wilson(8, 10).low  # wider at a higher confidence
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_newcombe_difference_matches_his_example() -> None:
    # Newcombe 1998, example (a), method 10: 56/70 - 48/80 = 0.2, 95 % CI [0.0524, 0.3339]
    interval = newcombe_diff((48, 80), (56, 70))
    assert interval.estimate == pytest.approx(0.2)
    assert (interval.low, interval.high) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert interval.excludes_zero()
    swapped = newcombe_diff((56, 70), (48, 80))
    assert (swapped.low, swapped.high) == pytest.approx((-0.3339, -0.0524), abs=1e-4)
    assert not newcombe_diff((5, 6), (4, 6)).excludes_zero()


def test_z_values() -> None:
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_value(0.9) == pytest.approx(1.644854, abs=1e-6)


def test_the_bootstrap_is_reproducible_and_covers_the_mean() -> None:
    values = list(np.random.default_rng(1).normal(10.0, 2.0, size=50))
    first, again = bootstrap_mean(values), bootstrap_mean(values)
    assert first == again  # fixed seed
    assert first.low < first.estimate < first.high
    # close to the normal-theory interval mean ± 1.96 s/√n for 50 normal values
    half = 1.96 * float(np.std(values, ddof=1)) / np.sqrt(50)
    assert first.low == pytest.approx(first.estimate - half, abs=0.2 * half)
    assert first.high == pytest.approx(first.estimate + half, abs=0.2 * half)
    assert bootstrap_mean([3.0]).as_dict() == {"estimate": 3.0, "low": None, "high": None}
    assert bootstrap_mean([]).estimate is None


def test_a_bootstrap_difference_tells_clearly_different_arms_apart() -> None:
    cheap, dear = [0.010, 0.011, 0.012, 0.009, 0.010, 0.011], [0.030, 0.031, 0.029, 0.032, 0.030, 0.028]
    diff = bootstrap_diff(dear, cheap)
    assert diff.estimate == pytest.approx(-0.0195, abs=1e-4)
    assert diff.high < 0
    noisy = bootstrap_diff([1.0, 3.0, 2.0, 5.0], [2.0, 1.0, 4.0, 3.0])
    assert not noisy.excludes_zero()


def test_runs_needed_follows_the_two_sample_formula() -> None:
    # (1.96 + 0.8416)² · (0.5·0.5 + 0.5·0.5) / 0.2² = 98.1 per arm (shrinkage: (x+2)/(n+4) = 0.5 here)
    assert runs_needed_rate((48, 96), (48, 96), 0.2) == 99
    assert runs_needed_rate((8, 10), (8, 10), 0.1) > runs_needed_rate((8, 10), (8, 10), 0.2)
    # 10 of 10 still has a variance: (12/14)(2/14) per arm
    assert runs_needed_rate((10, 10), (10, 10), 0.1) == 193
    with pytest.raises(ValueError):
        runs_needed_rate((1, 2), (1, 2), 0.0)
