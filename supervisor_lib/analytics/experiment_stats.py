"""The statistics of model experiments (A/B arms): pure maths, no store, no Airflow.

- pass rate: the **Wilson score interval** (good at small n and at 0 % or 100 %, where the normal interval fails);
- a difference of two pass rates: **Newcombe's hybrid score interval** (his method 10), built from the two Wilson
  intervals;
- mean cost, tokens, latency, iterations and their differences: a **percentile bootstrap** with a fixed seed, so a
  report is reproducible;
- runs needed: the normal-approximation sample size of a two-proportion comparison at 80 % power (two-sided 5 %):
  ``n = (z(1 - alpha/2) + z(power))^2 * (v1 + v2) / d^2`` per arm, with ``v`` the Bernoulli variance ``p(1-p)``
  (Agresti-Coull shrinkage, so an arm at 0 % or 100 % still has a variance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = [
    "BOOTSTRAP_SAMPLES",
    "SEED",
    "Interval",
    "bootstrap_diff",
    "bootstrap_mean",
    "newcombe_diff",
    "runs_needed_rate",
    "wilson",
    "z_value",
]

#: resamples of every bootstrap interval (the percentiles move by well under a percent between seeds at this size)
BOOTSTRAP_SAMPLES = 4000
#: the bootstrap's seed: the same rows always give the same report
SEED = 20260115
#: the power a "runs needed" estimate aims for
POWER = 0.8


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval (``low``/``high`` ``None`` when there is no data to bound it)."""

    estimate: float | None
    low: float | None
    high: float | None

    def excludes_zero(self) -> bool:
        """Whether the whole interval lies on one side of 0 (a measurable difference)."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def as_dict(self) -> dict[str, float | None]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


EMPTY = Interval(None, None, None)


def z_value(confidence: float) -> float:
    """The two-sided standard normal quantile of ``confidence`` (1.959964 for 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """The Wilson score interval of a rate ``successes / n`` (8 of 10 at 95 %: 0.80 in [0.490, 0.943])."""
    if n <= 0:
        return EMPTY
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..{n}, got {successes}")
    z = z_value(confidence)
    p = successes / n
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / scale
    low = 0.0 if successes == 0 else centre - half  # exactly the bounds, not 1e-17 off them
    high = 1.0 if successes == n else centre + half
    return Interval(p, low, high)


def newcombe_diff(base: tuple[int, int], other: tuple[int, int], confidence: float = 0.95) -> Interval:
    """The difference ``other - base`` of two rates given as ``(successes, n)``, with Newcombe's hybrid score
    interval (56/70 vs 48/80 at 95 %: -0.200 in [-0.334, -0.052], Newcombe 1998, method 10)."""
    a, b = wilson(*base, confidence), wilson(*other, confidence)
    if a.estimate is None or b.estimate is None:
        return EMPTY
    assert a.low is not None and a.high is not None and b.low is not None and b.high is not None
    diff = b.estimate - a.estimate
    low = diff - math.sqrt((b.estimate - b.low) ** 2 + (a.high - a.estimate) ** 2)
    high = diff + math.sqrt((b.high - b.estimate) ** 2 + (a.estimate - a.low) ** 2)
    return Interval(diff, low, high)


def _resampled_means(values: np.ndarray, rng: np.random.Generator, samples: int) -> np.ndarray:
    picks = rng.integers(0, len(values), size=(samples, len(values)))
    return np.asarray(values[picks].mean(axis=1))


def _percentiles(means: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_mean(
    values: Sequence[float], confidence: float = 0.95, *, samples: int = BOOTSTRAP_SAMPLES, seed: int = SEED
) -> Interval:
    """The mean of ``values`` with a percentile bootstrap interval (one value: the mean, no interval)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return EMPTY
    mean = float(data.mean())
    if data.size == 1:
        return Interval(mean, None, None)
    low, high = _percentiles(_resampled_means(data, np.random.default_rng(seed), samples), confidence)
    return Interval(mean, low, high)


def bootstrap_diff(
    base: Sequence[float], other: Sequence[float], confidence: float = 0.95, *,
    samples: int = BOOTSTRAP_SAMPLES, seed: int = SEED,
) -> Interval:  # fmt: skip
    """``mean(other) - mean(base)`` with a percentile bootstrap interval (each arm resampled on its own: the arms'
    runs are treated as independent, which is conservative when they ran on the same inputs)."""
    a, b = np.asarray(base, dtype=float), np.asarray(other, dtype=float)
    if a.size == 0 or b.size == 0:
        return EMPTY
    diff = float(b.mean() - a.mean())
    if a.size < 2 or b.size < 2:
        return Interval(diff, None, None)
    rng = np.random.default_rng(seed)
    low, high = _percentiles(_resampled_means(b, rng, samples) - _resampled_means(a, rng, samples), confidence)
    return Interval(diff, low, high)


def runs_needed_rate(base: tuple[int, int], other: tuple[int, int], difference: float,
                     confidence: float = 0.95) -> int:  # fmt: skip
    """Runs per arm to tell two pass rates ``difference`` apart at 80 % power (each rate shrunk the Agresti-Coull
    way, ``(x + 2) / (n + 4)``, so that 10 of 10 does not claim a variance of 0)."""
    if difference <= 0:
        raise ValueError(f"the difference to detect must be positive, got {difference}")
    variance = sum(p * (1 - p) for p in ((x + 2) / (n + 4) for x, n in (base, other)))
    z = z_value(confidence) + NormalDist().inv_cdf(POWER)
    return math.ceil(z * z * variance / (difference * difference))
