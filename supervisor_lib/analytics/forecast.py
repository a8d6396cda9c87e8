"""Daily spend forecasting (pure: numpy, pandas and the standard library).

:func:`forecast_spend` projects one daily spend series (the caller groups: total, a provider, a model, a DAG, a
budget's scope) to the end of a window (a month, a budget window) and says when a limit runs out at the current
pace. :func:`backtest_forecast` measures it on a series' own past (MAPE and interval coverage over rolling origins).

Methods, by the history available (days from the first to the last day of the series, gaps counting as zero):

* ``"run-rate"`` (< :data:`LEVEL_DAYS` days): the mean daily spend so far, every remaining day alike, with a wide
  band from the day-to-day spread (±1.5 × the normal band for the spread seen, the mean's own uncertainty included):
  too little history to check a forecast against.
* ``"recent-level"`` (< :data:`SEASONAL_DAYS` days): the mean of the last 7 days, no weekday effect.
* ``"weekday-seasonal"`` (≥ :data:`SEASONAL_DAYS` days, i.e. 3 weeks): a level times weekday factors. The factors
  are each weekday's share of the last full weeks (up to 8); the level is the last 14 days' spend divided by their
  factors (a ratio estimator, so a cheap weekend does not blow up the noise), moved forward by a damped trend (the
  change between the last two fortnights, damped by 0.9 a day; on a flat series it is noise of about zero mean, on
  a growing one it removes the lag of a 14-day mean).

Intervals come from rolling backtests of the same method on the series itself: at every origin of the last
:data:`BACKTEST_ORIGINS` days the method is fitted on the days before and compared with what followed. A day's band
is the forecast times the empirical quantiles of the relative daily errors; the total's band uses the quantiles of
the relative error of the cumulative spend h days ahead (for h beyond what the history can check, the longest
checked h: relative errors of sums shrink with h, so this is conservative). With fewer than 8 usable origins the
band falls back to the run-rate's. A band always holds its own forecast (if the backtests' errors lean to one side,
it is widened to it), so ``low <= forecast <= high`` and the earliest run-out date is never after the expected one.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

#: history (days) from which the recent level is used instead of the plain run-rate
LEVEL_DAYS = 14
#: history (days) from which weekday effects are estimated
SEASONAL_DAYS = 21
#: how many of the most recent days serve as backtest origins for the intervals
BACKTEST_ORIGINS = 56
_MIN_ORIGINS = 8
_DAMPING = 0.9
_TREND_SPAN = 28
_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _day(value: date | datetime | str | pd.Timestamp) -> date:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.date()


def _daily(daily: pd.Series) -> pd.Series:
    """One float per calendar day from the first to the last day (gaps and NaN are 0), on a naive daily index."""
    if not len(daily):
        return pd.Series([], index=pd.DatetimeIndex([]), dtype=float)
    index = pd.DatetimeIndex(daily.index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    values = pd.to_numeric(pd.Series(daily.to_numpy()), errors="coerce").fillna(0.0).to_numpy(dtype=float)
    by_day = pd.Series(values, index=index.normalize()).groupby(level=0).sum()
    full = pd.date_range(by_day.index.min(), by_day.index.max(), freq="D")
    return by_day.reindex(full, fill_value=0.0).astype(float)


def _method(days: int) -> str:
    if days >= SEASONAL_DAYS:
        return "weekday-seasonal"
    return "recent-level" if days >= LEVEL_DAYS else "run-rate"


def _fit(values: np.ndarray, weekdays: np.ndarray, method: str) -> tuple[float, float, np.ndarray]:
    """(level, daily trend, weekday factors) of ``values`` (the days so far; ``weekdays`` 0=Monday of each)."""
    ones = np.ones(7)
    if method == "run-rate" or len(values) < 7:
        return float(values.mean()) if len(values) else 0.0, 0.0, ones
    if method == "recent-level":
        return float(values[-7:].mean()), 0.0, ones
    weeks = min(len(values) // 7, 8)
    recent, days = values[-7 * weeks :], weekdays[-7 * weeks :]
    mean = recent.mean()
    factors = ones if mean <= 0 else np.array([recent[days == d].mean() for d in range(7)]) / mean
    span = _TREND_SPAN
    last, previous = values[-span:], values[-2 * span : -span]
    weight_last = factors[weekdays[-span:]].sum()
    level = float(last.sum() / weight_last) if weight_last > 0 else 0.0
    trend = 0.0
    if len(previous) == span and _DAMPING > 0:
        weight_previous = factors[weekdays[-2 * span : -span]].sum()
        if weight_previous > 0:
            trend = (level - float(previous.sum() / weight_previous)) / span
    # the mean lags its centre by half the span: bring it to today, damped like the forecast
    level = max(level + trend * sum(_DAMPING**j for j in range(span // 2 + 1)), 0.0)
    return level, trend, factors


def _project(fit: tuple[float, float, np.ndarray], weekdays: np.ndarray) -> np.ndarray:
    """The forecast for the next ``len(weekdays)`` days."""
    level, trend, factors = fit
    steps = np.arange(1, len(weekdays) + 1)
    damped = _DAMPING * (1 - _DAMPING**steps) / (1 - _DAMPING) if _DAMPING < 1 else steps
    return np.maximum(level + trend * damped, 0.0) * factors[weekdays]


def _backtest_errors(
    values: np.ndarray, weekdays: np.ndarray, method: str, horizon: int
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Relative daily errors (pooled) and relative errors of the cumulative spend h days ahead, per h."""
    minimum = {"weekday-seasonal": SEASONAL_DAYS, "recent-level": LEVEL_DAYS}.get(method, 2)
    n = len(values)
    daily: list[np.ndarray] = []
    cumulative: dict[int, list[float]] = {}
    for origin in range(max(minimum, n - BACKTEST_ORIGINS), n):
        ahead = min(horizon, n - origin)
        fit = _fit(values[:origin], weekdays[:origin], method)
        forecast = _project(fit, weekdays[origin : origin + ahead])
        actual = values[origin : origin + ahead]
        floor = max(0.1 * fit[0], 1e-9)
        daily.append((actual - forecast) / np.maximum(forecast, floor))
        sums_f, sums_a = np.cumsum(forecast), np.cumsum(actual)
        for h in range(ahead):
            cumulative.setdefault(h + 1, []).append(float((sums_a[h] - sums_f[h]) / max(sums_f[h], floor * (h + 1))))
    pooled = np.concatenate(daily) if daily else np.array([])
    return pooled, {h: np.array(errors) for h, errors in cumulative.items()}


def _t_over_z(dof: float, z: float = 1.2815515655446004) -> float:
    """How much wider a Student t quantile with ``dof`` degrees of freedom is than the normal one at ``z``
    (Cornish-Fisher expansion, Abramowitz & Stegun 26.7.5; within 1 % for dof ≥ 2 at the 90th percentile)."""
    t = (
        z
        + (z**3 + z) / (4 * dof)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * dof**3)
    )
    return t / z


def _level_floor(days: int, method: str, horizon: int) -> np.ndarray:
    """Per h, the relative variance (in units of the daily noise variance) of the level the forecast extrapolates:
    what estimating the level (and the trend) from ``days`` noisy days costs at least, however lucky the
    backtests were. For the forecast ``(1 + k) L1 - k L0`` (L1, L0: the last two spans' means; ``k`` the
    trend's lag correction plus its damped steps, averaged over the h days) it is ``((1 + k)² + k²) / span``."""
    steps = np.arange(1, horizon + 1)
    span = min(days, _TREND_SPAN) if method == "weekday-seasonal" else min(days, 7)
    if method != "weekday-seasonal" or days < 2 * _TREND_SPAN or _DAMPING <= 0:
        return np.full(horizon, 1.0 / max(span, 1))
    lag = sum(_DAMPING**j for j in range(span // 2 + 1))
    damped = _DAMPING * (1 - _DAMPING**steps) / (1 - _DAMPING) if _DAMPING < 1 else steps.astype(float)
    k = (lag + np.cumsum(damped) / steps) / span
    return ((1 + k) ** 2 + k**2) / span


def _cumulative_spread(by_step: dict[int, np.ndarray], noise: float, floor: np.ndarray) -> Any:
    """The spread of the relative error of the spend summed over h days, as a function of h.

    Fitted to the backtests' mean squared errors per h as ``A / h + B`` (day-to-day noise averages out over h
    days, an error in the level does not), weighted by the number of origins checked at each h. Errors h days
    apart from neighbouring origins overlap, so for large h the backtests hold few independent errors and can
    be lucky: ``B`` is kept at least ``noise × floor[h]`` (:func:`_level_floor`).
    """
    steps = np.array(sorted(by_step), dtype=float)
    mse = np.array([np.mean(by_step[int(h)] ** 2) for h in steps])
    weight = np.sqrt([len(by_step[int(h)]) for h in steps])
    design = np.column_stack([1.0 / steps, np.ones_like(steps)]) * weight[:, None]
    (a, b), *_ = np.linalg.lstsq(design, mse * weight, rcond=None)
    a, b = max(float(a), 0.0), max(float(b), 0.0)
    if a + b <= 0:
        a = float(np.mean(by_step[1] ** 2)) or 1e-12

    origins = len(by_step[1])

    def spread(h: int) -> float:
        # the level's error is seen in about origins / h independent windows: widen it like a Student t would
        inflate = _t_over_z(max(origins / max(h, 7), 2.0))
        level = max(b, noise * float(floor[min(h, len(floor)) - 1])) * inflate**2
        return math.sqrt(a / h + level) or 1e-12

    return spread


def forecast_spend(
    daily: pd.Series,
    horizon_end: date | datetime | str,
    *,
    limit_usd: float | None = None,
    window_start: date | datetime | str | None = None,
    interval: float = 0.8,
) -> dict[str, Any]:
    """Project daily spend to ``horizon_end`` and, against ``limit_usd``, the run-out date at the current pace.

    :param daily: spend (USD) per day on a DatetimeIndex (naive or tz-aware; several entries on one day are summed;
        missing days and NaN count as no spend). Give complete days: the last day is taken as finished, and the
        forecast starts the day after it.
    :param horizon_end: the last day to project (e.g. the month's or the budget window's last day), inclusive.
    :param limit_usd: a budget for the window; ``None``: no run-out date.
    :param window_start: the window's first day (default: the first of ``horizon_end``'s month); the spend already
        in the window (``window_start`` .. the last day of ``daily``) counts toward the total and the limit.
    :param interval: the central probability of the bands (0.8: the 10th to the 90th percentile).
    :return: a dict: ``method`` (``"run-rate"``, ``"recent-level"``, ``"weekday-seasonal"``; ``"none"`` for an
        empty series), ``note`` (one sentence on how it was made), ``as_of`` (the last day of data, a ``date`` or
        None), ``window_start``, ``horizon_end``, ``history_days``, ``interval``, ``spent_usd`` (in the window so
        far), ``daily_pace_usd`` (the current level per day), ``weekday_factors`` (``{"Mon": 1.12, ...}`` or None),
        ``days`` (one dict per remaining day: ``date``, ``forecast_usd``, ``low_usd``, ``high_usd``),
        ``projected_total_usd`` / ``projected_low_usd`` / ``projected_high_usd`` (spent + the remaining days),
        ``limit_usd``, ``over_limit`` (the projected total exceeds the limit), ``run_out_date`` (the day the
        projected cumulative spend reaches the limit, the day it did if it already has, else None),
        ``run_out_earliest`` / ``run_out_latest`` (the same on the band's high and low side, None if not reached).
    """
    if not 0 < interval < 1:
        raise ValueError(f"interval must be between 0 and 1, not {interval}")
    series = _daily(daily)
    end = _day(horizon_end)
    start = _day(window_start) if window_start is not None else end.replace(day=1)
    history = len(series)
    as_of = series.index[-1].date() if history else None
    first_future = (as_of + timedelta(days=1)) if as_of else start
    future = pd.date_range(max(first_future, start), end, freq="D") if end >= max(first_future, start) else []
    future_index = pd.DatetimeIndex(future)
    values = series.to_numpy()
    weekdays = series.index.day_of_week.to_numpy() if history else np.array([], dtype=int)
    in_window = series[(series.index >= pd.Timestamp(start)) & (series.index <= pd.Timestamp(end))]
    spent = float(in_window.sum())
    method = _method(history) if history else "none"
    fit = _fit(values, weekdays, method) if history else (0.0, 0.0, np.ones(7))
    forecast = _project(fit, future_index.day_of_week.to_numpy()) if len(future_index) else np.array([])
    low_day, high_day, low_cum, high_cum, note = _bands(values, weekdays, method, forecast, interval)
    cumulative = np.cumsum(forecast)
    result: dict[str, Any] = {
        "method": method,
        "note": note,
        "as_of": as_of,
        "window_start": start,
        "horizon_end": end,
        "history_days": history,
        "interval": interval,
        "spent_usd": spent,
        "daily_pace_usd": float(fit[0]),
        "weekday_factors": dict(zip(_WEEKDAY_NAMES, np.round(fit[2], 3).tolist(), strict=True))
        if method == "weekday-seasonal"
        else None,
        "days": [
            {"date": day.date(), "forecast_usd": float(f), "low_usd": float(lo), "high_usd": float(hi)}
            for day, f, lo, hi in zip(future_index, forecast, low_day, high_day, strict=True)
        ],
        "projected_total_usd": spent + float(cumulative[-1]) if len(cumulative) else spent,
        "projected_low_usd": spent + float(low_cum[-1]) if len(low_cum) else spent,
        "projected_high_usd": spent + float(high_cum[-1]) if len(high_cum) else spent,
        "limit_usd": limit_usd,
    }
    result.update(_run_out(limit_usd, in_window, spent, future_index, cumulative, low_cum, high_cum))
    return result


def _bands(
    values: np.ndarray, weekdays: np.ndarray, method: str, forecast: np.ndarray, interval: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Per-day bands and cumulative bands (low, high) for ``forecast``, and the note saying how they were made."""
    tail = (1 - interval) / 2
    horizon = len(forecast)
    cumulative = np.cumsum(forecast)
    days = len(values)
    if method in ("weekday-seasonal", "recent-level") and horizon:
        errors, by_step = _backtest_errors(values, weekdays, method, horizon)
        if len(by_step.get(1, ())) >= _MIN_ORIGINS:
            q_low, q_high = np.quantile(errors, [tail, 1 - tail])
            noise = float(np.mean(errors**2))
            spread = _cumulative_spread(by_step, noise, _level_floor(days, method, max(horizon, max(by_step))))
            standardised = np.concatenate([e / spread(h) for h, e in by_step.items()])
            s_low, s_high = np.quantile(standardised, [tail, 1 - tail])
            widths = np.array([spread(h) for h in range(1, horizon + 1)])
            what = "weekday effects and a damped trend" if method == "weekday-seasonal" else "the last 7 days' mean"
            note = (
                f"{what} from {days} days of history; {interval:.0%} bands from backtests at {len(by_step[1])} origins"
            )
            # a band always holds its own forecast: biased backtests can put both quantiles on one side of it
            return (
                np.clip(forecast * (1 + q_low), 0.0, forecast),
                np.maximum(forecast * (1 + q_high), forecast),
                np.clip(cumulative * (1 + s_low * widths), 0.0, cumulative),
                np.maximum(cumulative * (1 + s_high * widths), cumulative),
                note,
            )
    # run-rate (or too few backtest origins): the spread of the days seen, widened by half
    z = NormalDist().inv_cdf(1 - tail) * 1.5
    mean = float(values.mean()) if days else 0.0
    spread = float(values.std(ddof=1)) / mean if days >= 3 and mean > 0 else 0.5
    steps = np.arange(1, horizon + 1)
    day_rel = z * spread
    cum_rel = z * spread * np.sqrt(1.0 / steps + 1.0 / max(days, 1))
    # the forecast itself is the method's (a recent level, weekday effects): only the band is the run-rate's
    methods = {"weekday-seasonal": "weekday effects and a damped trend", "recent-level": "the last 7 days' mean"}
    note = (
        f"{methods[method]} from {days} days of history, too little to check a forecast against; the band is the "
        f"run-rate's, wide (±{day_rel:.0%} a day)"
        if method in methods
        else f"plain run-rate: the mean of {days} day{'s' if days != 1 else ''} of history, too little to check a "
        f"forecast against; the band is wide (±{day_rel:.0%} a day)"
        if days
        else "no spend recorded yet"
    )
    return (
        np.maximum(forecast * (1 - day_rel), 0.0),
        forecast * (1 + day_rel),
        np.maximum(cumulative * (1 - cum_rel), 0.0),
        cumulative * (1 + cum_rel),
        note,
    )


def _run_out(
    limit: float | None,
    in_window: pd.Series,
    spent: float,
    future: pd.DatetimeIndex,
    cumulative: np.ndarray,
    low_cum: np.ndarray,
    high_cum: np.ndarray,
) -> dict[str, Any]:
    out: dict[str, Any] = {"over_limit": False, "run_out_date": None, "run_out_earliest": None, "run_out_latest": None}
    if limit is None:
        return out
    total = spent + (float(cumulative[-1]) if len(cumulative) else 0.0)
    out["over_limit"] = bool(total > limit)
    if spent >= limit and len(in_window):  # already reached: the day it was (no spend yet: see the projection)
        reached = in_window.index[np.argmax(in_window.cumsum().to_numpy() >= limit)].date()
        return {**out, "run_out_date": reached, "run_out_earliest": reached, "run_out_latest": reached}

    def first_day(path: np.ndarray) -> date | None:
        hits = np.flatnonzero(spent + path >= limit)
        return future[hits[0]].date() if len(hits) else None

    return {
        **out,
        "run_out_date": first_day(cumulative),
        "run_out_earliest": first_day(high_cum),
        "run_out_latest": first_day(low_cum),
    }


def backtest_forecast(
    daily: pd.Series,
    *,
    horizon: int = 7,
    min_history: int = SEASONAL_DAYS,
    interval: float = 0.8,
    step: int = 1,
) -> dict[str, Any]:
    """Rolling-origin evaluation of :func:`forecast_spend` on ``daily`` itself.

    At each origin (every ``step`` days, from ``min_history`` days of history until ``horizon`` days remain) the
    forecast sees only the days before and projects the next ``horizon`` days, bands included.

    :return: ``origins``; ``mape`` (mean absolute percentage error of the ``horizon``-day total, origins whose
        actual total is 0 left out); ``coverage`` (share of origins whose actual total lies in the band);
        ``daily_wape`` (sum of absolute daily errors / actual spend); ``daily_coverage`` (share of days in their
        day's band); ``methods`` (how often each method was used).
    """
    series = _daily(daily)
    apes: list[float] = []
    covered: list[bool] = []
    abs_daily = actual_daily = 0.0
    daily_in: list[bool] = []
    methods: dict[str, int] = {}
    for origin in range(max(min_history, 1), len(series) - horizon + 1, max(step, 1)):
        past, ahead = series.iloc[:origin], series.iloc[origin : origin + horizon]
        first = ahead.index[0].date()
        result = forecast_spend(past, ahead.index[-1].date(), window_start=first, interval=interval)
        methods[result["method"]] = methods.get(result["method"], 0) + 1
        actual = float(ahead.sum())
        if actual > 0:
            apes.append(abs(result["projected_total_usd"] - actual) / actual)
        covered.append(result["projected_low_usd"] <= actual <= result["projected_high_usd"])
        for day, value in zip(result["days"], ahead.to_numpy(), strict=True):
            abs_daily += abs(day["forecast_usd"] - value)
            actual_daily += value
            daily_in.append(day["low_usd"] <= value <= day["high_usd"])
    nan = math.nan
    return {
        "origins": len(covered),
        "horizon": horizon,
        "interval": interval,
        "mape": float(np.mean(apes)) if apes else nan,
        "coverage": float(np.mean(covered)) if covered else nan,
        "daily_wape": abs_daily / actual_daily if actual_daily > 0 else nan,
        "daily_coverage": float(np.mean(daily_in)) if daily_in else nan,
        "methods": methods,
    }
