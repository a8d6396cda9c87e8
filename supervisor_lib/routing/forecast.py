"""Quota forecasting: spend so far and projected end-of-window spend per budget (pure: no I/O, no Airflow).

One forecast serves the router, the views and the budget alerts: the anomaly scan (``supervisor_anomaly_scan``)
forecasts each month window from its scope's daily spend (:func:`supervisor_lib.analytics.forecast.forecast_spend`:
weekday effects, a trend, a band from backtests) and stores it with the budget's row; the router reads it with the
spend (:class:`StoredForecast`) and adds what was committed since. Where there is none (a day window, no scan yet,
or one older than :data:`STORED_FORECAST_FRESH`), the plain run-rate: the spend rate so far continues until the
window ends (``projected = spent * window length / elapsed``). Early in a window one call is not a trend, so the
elapsed time is never taken as less than ``min_elapsed_fraction`` of the window. A per-run budget has no time
window: its projection is what is already committed.

The router reads the *pressure* — the highest share of its limit any budget is projected to reach — and from
``prefer_cheaper_at`` allows one tier below the requested one (cheapest first), from ``cheapest_at`` the cheapest
capable model whatever its tier.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Pressure(StrEnum):
    """How close the tightest budget is to its limit, as the router acts on it."""

    NORMAL = "normal"
    PREFER_CHEAPER = "prefer_cheaper"
    CHEAPEST = "cheapest"


@dataclass(frozen=True)
class ForecastThresholds:
    """The shares of a limit at which the router economises (the catalogue's ``routing.forecast``).

    :param prefer_cheaper_at: from this projected share, one tier below the requested one is allowed.
    :param cheapest_at: from this projected share, the cheapest capable model whatever its tier.
    :param min_elapsed_fraction: project from at least this share of the window.
    """

    prefer_cheaper_at: float = 0.8
    cheapest_at: float = 0.95
    min_elapsed_fraction: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.prefer_cheaper_at <= self.cheapest_at:
            raise ValueError("forecast thresholds must satisfy 0 < prefer_cheaper_at <= cheapest_at")
        if not 0 < self.min_elapsed_fraction <= 1:
            raise ValueError("forecast.min_elapsed_fraction must be in (0, 1]")

    def pressure(self, share: float) -> Pressure:
        """The pressure a projected share of a limit puts on routing."""
        if share >= self.cheapest_at:
            return Pressure.CHEAPEST
        if share >= self.prefer_cheaper_at:
            return Pressure.PREFER_CHEAPER
        return Pressure.NORMAL


@dataclass(frozen=True)
class BudgetForecast:
    """One budget's state: what is spent, what is in flight, and where the window is heading.

    :param budget: the budget, described (e.g. ``per-day budget of DAG 'nightly'``).
    :param window: the window's id (``2026-11-05``, ``2026-11`` or the run id).
    :param reserved_usd: estimates of calls in flight (reserved, not yet settled).
    :param projected_usd: the linear projection of the committed spend to the window's end.
    """

    budget: str
    window: str
    limit_usd: float
    spent_usd: float
    reserved_usd: float
    projected_usd: float

    @property
    def share(self) -> float:
        """The projected share of the limit (0 for a zero limit with nothing spent)."""
        if self.limit_usd <= 0:
            return 0.0 if self.projected_usd <= 0 else float("inf")
        return self.projected_usd / self.limit_usd

    @property
    def remaining_usd(self) -> float:
        return self.limit_usd - self.spent_usd - self.reserved_usd

    def as_dict(self) -> dict[str, float | str]:
        return {
            "budget": self.budget,
            "window": self.window,
            "limit_usd": round(self.limit_usd, 6),
            "spent_usd": round(self.spent_usd, 6),
            "reserved_usd": round(self.reserved_usd, 6),
            "projected_usd": round(self.projected_usd, 6),
        }


@dataclass(frozen=True)
class StoredForecast:
    """A window's end spend as the anomaly scan forecast it from the daily spend history
    (:func:`supervisor_lib.analytics.forecast.forecast_spend`: weekday effects, a backtested band), stored with the
    budget's row so the router reads it in the same round trip as the spend.

    :param projected_usd: the forecast end-of-window spend.
    :param basis_usd: the committed spend (settled + reserved) it was made from; what was committed since adds to it.
    :param made_at: when it was made; older than :data:`STORED_FORECAST_FRESH` it is ignored.
    """

    projected_usd: float
    basis_usd: float
    made_at: datetime

    def fresh(self, now: datetime) -> bool:
        """Whether it is recent enough to use."""
        return timedelta(0) <= now - self.made_at <= STORED_FORECAST_FRESH


#: how long a stored forecast is used (the scan refreshes it every 15 minutes by default)
STORED_FORECAST_FRESH = timedelta(hours=2)


def project(
    committed_usd: float,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    min_elapsed_fraction: float,
    stored: StoredForecast | None = None,
) -> float:
    """Projected spend at the window's end; ``committed_usd`` when the window has no time bounds.

    With a fresh ``stored`` forecast (the analytics' one, for month windows): that forecast plus what was committed
    since it was made; otherwise the spend rate so far, continued to the window's end. Never below what is
    already committed.
    """
    if start is None or end is None:
        return committed_usd
    if stored is not None and stored.fresh(now):
        return max(committed_usd, stored.projected_usd + max(0.0, committed_usd - stored.basis_usd))
    length = (end - start).total_seconds()
    elapsed = max((now - start).total_seconds(), length * min_elapsed_fraction)
    return committed_usd * max(1.0, length / elapsed)


def overall_pressure(forecasts: Iterable[BudgetForecast], thresholds: ForecastThresholds) -> Pressure:
    """The pressure of the tightest budget."""
    share = max((f.share for f in forecasts), default=0.0)
    return thresholds.pressure(share)
