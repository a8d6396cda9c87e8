"""Quota forecasts: linear projection to the window's end and the pressure thresholds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from supervisor_lib.routing.forecast import BudgetForecast, ForecastThresholds, Pressure, overall_pressure, project

DAY_START, DAY_END = datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC)


def test_spend_so_far_continues_at_the_same_rate() -> None:
    noon = datetime(2026, 11, 5, 12, tzinfo=UTC)
    assert project(3.0, DAY_START, DAY_END, noon, 0.1) == pytest.approx(6.0)
    assert project(3.0, DAY_START, DAY_END, DAY_END, 0.1) == pytest.approx(3.0)


def test_early_spend_is_projected_from_at_least_the_minimum_elapsed_share() -> None:
    one_minute_in = datetime(2026, 11, 5, 0, 1, tzinfo=UTC)
    # 2.4 h (10% of the day), not one minute: $1 projects to $10, not $1440
    assert project(1.0, DAY_START, DAY_END, one_minute_in, 0.1) == pytest.approx(10.0)


def test_a_run_budget_projects_what_is_committed() -> None:
    assert project(2.5, None, None, DAY_START, 0.1) == 2.5


def forecast(projected: float, limit: float = 10.0) -> BudgetForecast:
    return BudgetForecast("b", "w", limit, spent_usd=1.0, reserved_usd=0.5, projected_usd=projected)


@pytest.mark.parametrize(
    ("projected", "pressure"),
    [(7.9, Pressure.NORMAL), (8.0, Pressure.PREFER_CHEAPER), (9.49, Pressure.PREFER_CHEAPER), (9.5, Pressure.CHEAPEST)],
)
def test_pressure_thresholds(projected: float, pressure: Pressure) -> None:
    thresholds = ForecastThresholds(prefer_cheaper_at=0.8, cheapest_at=0.95)
    assert overall_pressure([forecast(1.0), forecast(projected)], thresholds) is pressure


def test_forecast_values() -> None:
    f = forecast(5.0)
    assert f.share == 0.5 and f.remaining_usd == 8.5
    assert f.as_dict()["projected_usd"] == 5.0
    assert forecast(1.0, limit=0.0).share == float("inf")
    assert overall_pressure([], ForecastThresholds()) is Pressure.NORMAL


def test_thresholds_are_checked() -> None:
    with pytest.raises(ValueError, match="prefer_cheaper_at <= cheapest_at"):
        ForecastThresholds(prefer_cheaper_at=0.9, cheapest_at=0.8)
