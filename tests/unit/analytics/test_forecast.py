"""The daily spend forecast of ``supervisor_lib.analytics.forecast``, on real series (nothing mocked).

``forecast_spend``: the method chosen by the length of history (run-rate, recent level, weekday-seasonal) and its
note; what each method projects (the mean so far, the last week's mean, weekday factors with cheap weekends); a flat
$10/day month projected to spent + 10 × the remaining days inside its band; the run-out date against a limit (checked
against the cumulative projection computed here, already reached, never, no limit, a limit of 0 with no spend yet);
the window's spent amount; tz-aware, duplicate-day, NaN and empty input; the interval's validation and its effect on
the band. ``backtest_forecast``: MAPE and 80 % coverage on synthetic flat and weekly spend.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from supervisor_lib.analytics.forecast import backtest_forecast, forecast_spend
from supervisor_lib.analytics.synthetic import spend_series

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _series(values: np.ndarray | list[float], start: str = "2026-10-01") -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float), index=pd.date_range(start, periods=len(values), freq="D"))


def _noisy(
    days: int, *, level: float = 10.0, spread: float = 0.2, seed: int = 0, start: str = "2026-10-01"
) -> pd.Series:
    rng = np.random.default_rng(seed)
    return _series(level * np.exp(spread * rng.standard_normal(days)), start)


def _weekly(days: int, *, seed: int = 0, start: str = "2026-09-07") -> pd.Series:
    """Weekdays at $100, weekends at $40, 5 % noise."""
    index = pd.date_range(start, periods=days, freq="D")
    base = np.where(index.day_of_week >= 5, 40.0, 100.0)
    return pd.Series(base * np.exp(0.05 * np.random.default_rng(seed).standard_normal(days)), index=index)


def _assert_bands(result: dict) -> None:
    assert result["projected_low_usd"] <= result["projected_total_usd"] <= result["projected_high_usd"]
    for day in result["days"]:
        assert 0 <= day["low_usd"] <= day["forecast_usd"] <= day["high_usd"]


# -- method -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "days, method, note",
    [
        (1, "run-rate", "plain run-rate: the mean of 1 day of history"),
        (13, "run-rate", "plain run-rate: the mean of 13 days of history"),
        (14, "recent-level", "the last 7 days' mean from 14 days of history"),
        (20, "recent-level", "the last 7 days' mean from 20 days of history"),
        (21, "weekday-seasonal", "weekday effects and a damped trend from 21 days of history"),
        (
            60,
            "weekday-seasonal",
            "weekday effects and a damped trend from 60 days of history; 80% bands from backtests",
        ),
    ],
)
def test_method_follows_the_length_of_history(days: int, method: str, note: str) -> None:
    result = forecast_spend(_noisy(days), "2026-12-31")
    assert result["method"] == method
    assert result["history_days"] == days
    assert isinstance(result["note"], str) and result["note"].startswith(note)
    if method == "weekday-seasonal":
        assert list(result["weekday_factors"]) == list(WEEKDAYS)
    else:
        assert result["weekday_factors"] is None
    _assert_bands(result)


def test_history_counts_calendar_days_and_gaps_are_no_spend() -> None:
    sparse = pd.Series([10.0, 10.0], index=pd.DatetimeIndex(["2026-11-01", "2026-11-21"]))
    assert forecast_spend(sparse, "2026-11-30")["history_days"] == 21
    assert forecast_spend(sparse, "2026-11-30")["method"] == "weekday-seasonal"
    short = pd.Series([10.0, np.nan, 10.0], index=pd.DatetimeIndex(["2026-11-01", "2026-11-05", "2026-11-10"]))
    result = forecast_spend(short, "2026-11-30")
    assert result["method"] == "run-rate"
    assert result["daily_pace_usd"] == pytest.approx(20.0 / 10)
    assert result["spent_usd"] == pytest.approx(20.0)


def test_run_rate_projects_the_mean_so_far() -> None:
    result = forecast_spend(_series([4.0, 8.0, 12.0, 16.0, 20.0], start="2026-11-01"), "2026-11-30")
    assert result["as_of"] == date(2026, 11, 5)
    assert result["daily_pace_usd"] == pytest.approx(12.0)
    assert [day["date"] for day in result["days"]] == [date(2026, 11, 6) + timedelta(days=i) for i in range(25)]
    assert all(day["forecast_usd"] == pytest.approx(12.0) for day in result["days"])
    assert result["projected_total_usd"] == pytest.approx(60.0 + 25 * 12.0)
    _assert_bands(result)
    assert result["projected_high_usd"] > result["projected_total_usd"] > result["projected_low_usd"]


def test_recent_level_projects_the_last_weeks_mean() -> None:
    values = [5.0] * 10 + [20.0] * 7  # 17 days: the last week's $20 a day, not the mean so far
    result = forecast_spend(_series(values, start="2026-11-01"), "2026-11-30")
    assert result["method"] == "recent-level"
    assert result["daily_pace_usd"] == pytest.approx(20.0)
    assert all(day["forecast_usd"] == pytest.approx(20.0) for day in result["days"])
    assert result["projected_total_usd"] == pytest.approx(50.0 + 140.0 + 13 * 20.0)


# -- projection -------------------------------------------------------------------------------------------------------


def test_flat_ten_dollars_a_day_projects_spent_plus_ten_per_remaining_day() -> None:
    series = _series([10.0] * 45)  # 2026-10-01 .. 2026-11-14
    result = forecast_spend(series, "2026-11-30")
    assert result["method"] == "weekday-seasonal"
    assert result["window_start"] == date(2026, 11, 1)
    assert result["as_of"] == date(2026, 11, 14)
    assert result["spent_usd"] == pytest.approx(140.0)
    assert len(result["days"]) == 16
    assert result["days"][0]["date"] == date(2026, 11, 15) and result["days"][-1]["date"] == date(2026, 11, 30)
    assert result["daily_pace_usd"] == pytest.approx(10.0)
    assert result["weekday_factors"] == dict.fromkeys(WEEKDAYS, 1.0)
    assert result["projected_total_usd"] == pytest.approx(140.0 + 10.0 * 16)
    _assert_bands(result)


@pytest.mark.parametrize("seed", range(3))
def test_noisy_flat_spend_projects_its_level_inside_a_band(seed: int) -> None:
    series = _noisy(45, seed=seed)
    result = forecast_spend(series, "2026-11-30")
    spent = float(series["2026-11-01":].sum())
    assert result["spent_usd"] == pytest.approx(spent)
    level = 10.0 * np.exp(0.2**2 / 2)  # the mean of the lognormal noise
    assert result["projected_total_usd"] == pytest.approx(spent + 16 * level, rel=0.08)
    _assert_bands(result)
    low, total, high = result["projected_low_usd"], result["projected_total_usd"], result["projected_high_usd"]
    assert low < total < high
    assert high - low < 0.5 * (total - spent)  # a band, not a shrug


def test_weekday_factors_show_cheaper_weekends() -> None:
    result = forecast_spend(_weekly(56), "2026-11-30")  # 2026-09-07 (a Monday) .. 2026-11-01
    factors = result["weekday_factors"]
    assert result["method"] == "weekday-seasonal"
    assert np.mean(list(factors.values())) == pytest.approx(1.0, abs=0.01)
    for day in ("Sat", "Sun"):
        assert factors[day] == pytest.approx(40 / (540 / 7), rel=0.1)
    for day in WEEKDAYS[:5]:
        assert factors[day] == pytest.approx(100 / (540 / 7), rel=0.1)
    by_weekday = {day["date"].strftime("%a"): day["forecast_usd"] for day in result["days"][:7]}
    assert by_weekday["Sat"] / by_weekday["Wed"] == pytest.approx(0.4, rel=0.15)
    assert sum(day["forecast_usd"] for day in result["days"][:7]) == pytest.approx(540, rel=0.1)
    _assert_bands(result)


@pytest.mark.parametrize("interval", [0.5, 0.8, 0.95])
def test_band_holds_the_forecast_at_any_interval(interval: float) -> None:
    # 30 days of trending spend: few backtest origins, whose errors lean to one side
    result = forecast_spend(spend_series("trending", 30, 8), "2026-11-30", interval=interval)
    assert result["method"] == "weekday-seasonal"
    assert "bands from backtests" in result["note"]
    _assert_bands(result)


def test_a_wider_interval_gives_a_wider_band() -> None:
    series = _weekly(56)
    widths = []
    for interval in (0.5, 0.8, 0.95):
        result = forecast_spend(series, "2026-11-30", interval=interval)
        widths.append(result["projected_high_usd"] - result["projected_low_usd"])
        assert result["interval"] == interval
    assert 0 < widths[0] < widths[1] < widths[2]


@pytest.mark.parametrize("interval", [0.0, 1.0, -0.2, 1.5])
def test_interval_outside_zero_one_is_refused(interval: float) -> None:
    with pytest.raises(ValueError, match="interval"):
        forecast_spend(_series([10.0] * 5), "2026-10-31", interval=interval)


# -- limit ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1234.5, 2000.0, 2500.0])
def test_run_out_date_is_where_the_cumulative_projection_crosses_the_limit(limit: float) -> None:
    result = forecast_spend(_weekly(56), "2026-11-30", limit_usd=limit)
    cumulative = result["spent_usd"] + np.cumsum([day["forecast_usd"] for day in result["days"]])
    crossing = int(np.argmax(cumulative >= limit))
    assert cumulative[crossing] >= limit and (crossing == 0 or cumulative[crossing - 1] < limit)
    assert result["run_out_date"] == result["days"][crossing]["date"]
    assert result["over_limit"] is True
    assert result["limit_usd"] == limit
    # the band's high side runs out first, its low side last (or not at all)
    assert result["run_out_earliest"] <= result["run_out_date"]
    assert result["run_out_latest"] is None or result["run_out_latest"] >= result["run_out_date"]


def test_flat_spend_runs_out_on_the_day_the_limit_is_reached() -> None:
    result = forecast_spend(_series([10.0] * 15, start="2026-11-01"), "2026-11-30", limit_usd=250.0)
    assert result["run_out_date"] == date(2026, 11, 25)  # $150 by the 15th, + $10 a day reaches $250 on the 25th
    assert result["over_limit"] is True
    below = forecast_spend(_series([10.0] * 15, start="2026-11-01"), "2026-11-30", limit_usd=300.0)
    assert below["run_out_date"] == date(2026, 11, 30) and below["over_limit"] is False  # reached, not exceeded


def test_a_limit_above_the_projection_is_not_run_out() -> None:
    result = forecast_spend(_weekly(56), "2026-11-30", limit_usd=10_000.0)
    assert result["over_limit"] is False
    assert result["run_out_date"] is None and result["run_out_latest"] is None
    assert result["projected_high_usd"] < 10_000


def test_spent_above_the_limit_runs_out_on_the_day_it_was_reached() -> None:
    series = _series([10.0] * 30, start="2026-10-22")  # 10 days of October, 20 of November
    result = forecast_spend(series, "2026-11-30", limit_usd=95.0)
    assert result["spent_usd"] == pytest.approx(200.0)
    assert result["run_out_date"] == date(2026, 11, 10)  # $100 in the window by the 10th, $90 by the 9th
    assert result["run_out_earliest"] == result["run_out_latest"] == date(2026, 11, 10)
    assert result["over_limit"] is True


def test_no_limit_no_run_out() -> None:
    result = forecast_spend(_series([10.0] * 15, start="2026-11-01"), "2026-11-30")
    assert result["limit_usd"] is None
    assert result["over_limit"] is False
    assert result["run_out_date"] is result["run_out_earliest"] is result["run_out_latest"] is None


@pytest.mark.parametrize(
    "series",
    [
        pytest.param(pd.Series([], dtype=float), id="no spend at all"),
        pytest.param(pd.Series([5.0], index=pd.DatetimeIndex(["2026-10-20"])), id="spend before the window only"),
    ],
)
def test_a_zero_limit_with_nothing_spent_in_the_window_runs_out_at_its_start(series: pd.Series) -> None:
    result = forecast_spend(series, "2026-11-30", limit_usd=0.0)
    assert result["spent_usd"] == 0.0
    assert result["run_out_date"] == date(2026, 11, 1)


# -- window and input -------------------------------------------------------------------------------------------------


def test_window_start_bounds_the_spent_amount() -> None:
    series = _series([10.0] * 45)  # 2026-10-01 .. 2026-11-14
    result = forecast_spend(series, "2026-11-30", window_start="2026-11-10")
    assert result["window_start"] == date(2026, 11, 10)
    assert result["spent_usd"] == pytest.approx(50.0)
    assert result["projected_total_usd"] == pytest.approx(50.0 + 160.0)
    later = forecast_spend(series, "2026-12-10", window_start="2026-12-01")  # the window starts after the data
    assert later["spent_usd"] == 0.0
    assert [day["date"] for day in later["days"]] == [date(2026, 12, 1) + timedelta(days=i) for i in range(10)]
    assert later["projected_total_usd"] == pytest.approx(100.0)


def test_horizon_before_the_last_day_projects_nothing() -> None:
    result = forecast_spend(_series([10.0] * 51), "2026-11-10", limit_usd=500.0)  # data until 2026-11-20
    assert result["days"] == []
    assert result["spent_usd"] == pytest.approx(100.0)
    assert result["projected_total_usd"] == result["projected_low_usd"] == result["projected_high_usd"] == 100.0
    assert result["run_out_date"] is None and result["over_limit"] is False


def test_tz_aware_several_entries_a_day_and_nan_are_read_as_daily_spend() -> None:
    plain = _noisy(40, seed=3)
    # each day's spend in two parts (09:00 and 17:00 Berlin, which is that day in UTC too), with NaN entries between
    stamps, values = [], []
    for day, value in plain.items():
        local = day.tz_localize("Europe/Berlin")
        stamps += [local + pd.Timedelta(hours=9), local + pd.Timedelta(hours=12), local + pd.Timedelta(hours=17)]
        values += [0.25 * value, np.nan, 0.75 * value]
    split = pd.Series(values, index=pd.DatetimeIndex(stamps))
    expected = forecast_spend(plain, "2026-11-30", limit_usd=300.0)
    result = forecast_spend(split, "2026-11-30", limit_usd=300.0)
    assert result["history_days"] == expected["history_days"] == 40
    for key in ("method", "as_of", "spent_usd", "projected_total_usd", "projected_low_usd", "run_out_date"):
        assert result[key] == pytest.approx(expected[key]), key


def test_a_tz_aware_index_is_read_in_utc_days() -> None:
    # 00:30 in Berlin is 22:30 or 23:30 UTC the day before: that is the day the spend counts for
    local = pd.date_range("2026-10-02 00:30", periods=30, freq="D", tz="Europe/Berlin")
    result = forecast_spend(pd.Series(10.0, index=local), "2026-11-30")
    assert result["as_of"] == date(2026, 10, 30)
    assert result["spent_usd"] == 0.0
    assert result["days"][0]["date"] == date(2026, 11, 1)


def test_empty_series_is_method_none() -> None:
    result = forecast_spend(pd.Series([], dtype=float), "2026-11-30", limit_usd=100.0)
    assert result["method"] == "none"
    assert result["note"] == "no spend recorded yet"
    assert result["as_of"] is None and result["history_days"] == 0
    assert result["spent_usd"] == result["projected_total_usd"] == 0.0
    assert result["run_out_date"] is None and result["over_limit"] is False
    assert all(day["forecast_usd"] == 0.0 for day in result["days"])
    empty_index = pd.Series([], dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    assert forecast_spend(empty_index, "2026-11-30")["method"] == "none"


# -- backtest ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["flat", "weekly"])
def test_backtest_on_synthetic_spend_is_accurate_and_calibrated(shape: str) -> None:
    # measured (120 days, 7-day horizon, seeds 0-3): MAPE 0.07-0.13 (mean 0.11 flat, 0.08 weekly); 80 % band coverage
    # of the 7-day total 0.67-0.85 per seed (mean 0.75 flat, 0.81 weekly), of single days 0.74-0.83
    runs = [backtest_forecast(spend_series(shape, 120, seed), horizon=7) for seed in range(4)]
    for run in runs:
        assert run["origins"] == 120 - 21 - 7 + 1
        assert run["methods"] == {"weekday-seasonal": run["origins"]}
        assert run["mape"] < 0.2
        assert 0.55 <= run["coverage"] <= 1.0
    assert np.mean([run["mape"] for run in runs]) < 0.15
    assert 0.65 <= np.mean([run["coverage"] for run in runs]) <= 0.95
    assert 0.7 <= np.mean([run["daily_coverage"] for run in runs]) <= 0.9
    assert np.mean([run["daily_wape"] for run in runs]) < 0.3


def test_backtest_scores_forecasts_that_see_only_the_days_before_each_origin() -> None:
    series = spend_series("weekly", 60, 1)
    result = backtest_forecast(series, horizon=7, step=5)
    apes, covered = [], []
    for origin in range(21, 60 - 7 + 1, 5):
        ahead = series.iloc[origin : origin + 7]
        forecast = forecast_spend(series.iloc[:origin], ahead.index[-1], window_start=ahead.index[0])
        assert forecast["spent_usd"] == 0.0  # nothing of the days to forecast is seen
        actual = float(ahead.sum())
        apes.append(abs(forecast["projected_total_usd"] - actual) / actual)
        covered.append(forecast["projected_low_usd"] <= actual <= forecast["projected_high_usd"])
    assert result["origins"] == len(apes) == 7
    assert result["mape"] == pytest.approx(np.mean(apes))
    assert result["coverage"] == pytest.approx(np.mean(covered))
    assert 0 < result["mape"] < 0.2


def test_backtest_of_a_constant_series_is_exact() -> None:
    result = backtest_forecast(_series([10.0] * 50), horizon=7, step=3)
    assert result["origins"] == len(range(21, 50 - 7 + 1, 3))
    assert result["mape"] == pytest.approx(0.0, abs=1e-9)
    assert result["coverage"] == 1.0 and result["daily_coverage"] == 1.0


def test_backtest_with_too_short_a_series_has_no_origins() -> None:
    result = backtest_forecast(_series([10.0] * 25), horizon=7)
    assert result["origins"] == 0
    assert np.isnan(result["mape"]) and np.isnan(result["coverage"])
