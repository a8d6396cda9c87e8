"""Spend forecasts from the rollups: the views' forecast (daily spend of any scope, projected to the month's end with
a band) and each budget's month window (stored with the budget's row, where the router and the views read it).

The projection itself is :func:`supervisor_lib.analytics.forecast.forecast_spend` (pure); this module reads the
daily spend it needs from ``call_rollups`` and takes care of today, which is not over yet: the forecast is made
from complete days, and what today already spent counts as at least today's share.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from supervisor_lib.analytics.filters import Filters
from supervisor_lib.analytics.queries import _rows
from supervisor_lib.store.cursor import StoreCursor, as_datetime
from supervisor_lib.store.db import Store

if TYPE_CHECKING:
    import pandas as pd

#: complete days of history a forecast reads (the weekday effects want several full weeks)
HISTORY_DAYS = 56
#: days of actual spend the view's answer carries for the chart
SHOWN_DAYS = 30
#: windows at least this long are forecast from daily history (a day window keeps the router's run-rate)
DAILY_WINDOWS_FROM = timedelta(days=2)
#: a budget's subject and the rollup filter that selects its spend
_SCOPES = {"dag": "dag_id", "provider": "provider", "team": "team", "tag": "tag"}


def daily_spend(store: Store, filters: Filters, first: date, last: date) -> pd.Series:
    """Spend per day from ``first`` to ``last`` (inclusive, every day present, 0 where nothing was spent), for the
    scope of ``filters`` (its narrowing and readable DAGs; its time range is not used)."""
    import pandas as pd

    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    where, params = replace(filters, start=start, end=end).where(grain="day")
    sql = f"SELECT bucket, SUM(cost_usd) FROM call_rollups WHERE {where} GROUP BY bucket"
    days = pd.date_range(first, last, freq="D")
    found = {as_datetime(bucket).date(): float(cost or 0) for bucket, cost in _rows(store, sql, params)}  # type: ignore[union-attr]
    return pd.Series([found.get(day.date(), 0.0) for day in days], index=days, dtype=float)


def spend_forecast(store: Store, filters: Filters, now: datetime | None = None, horizon_end: date | None = None
                   ) -> dict[str, Any]:  # fmt: skip
    """The spend of ``filters``' scope so far this month and projected to ``horizon_end`` (default: the month's last
    day), with its band (80 %), the method used and the daily spend of the last :data:`SHOWN_DAYS` days."""
    from supervisor_lib.analytics.forecast import forecast_spend

    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date()
    window_start = today.replace(day=1)
    end = horizon_end or _month_end(today)
    history = daily_spend(store, filters, today - timedelta(days=HISTORY_DAYS), today)
    complete, today_spent = history.iloc[:-1], float(history.iloc[-1])
    complete = complete[complete.cumsum() > 0]  # the history starts with the first spend
    shown = [{"date": day.date().isoformat(), "spend_usd": round(float(v), 6)}
             for day, v in history.iloc[-SHOWN_DAYS:].items()]  # fmt: skip
    if complete.empty:
        return {"method": "none", "note": "no complete day of spend yet: nothing to forecast from",
                "window_start": window_start.isoformat(), "horizon_end": end.isoformat(),
                "spent_usd": round(today_spent, 6), "today_usd": round(today_spent, 6),
                "projected_total_usd": None, "projected_low_usd": None, "projected_high_usd": None,
                "daily_pace_usd": None, "weekday_factors": None, "history_days": 0, "interval": 0.8,
                "history": shown, "days": []}  # fmt: skip
    result = forecast_spend(complete, end, window_start=window_start)
    days = result["days"]
    # today is under way: it costs at least what it already spent
    extra = max(0.0, today_spent - days[0]["forecast_usd"]) if days and days[0]["date"] == today else 0.0
    if days and days[0]["date"] == today:
        days[0] = {**days[0], "spent_usd": round(today_spent, 6)}
    return {
        "method": result["method"],
        "note": result["note"],
        "window_start": window_start.isoformat(),
        "horizon_end": end.isoformat(),
        "spent_usd": round(result["spent_usd"] + today_spent, 6),
        "today_usd": round(today_spent, 6),
        "projected_total_usd": round(result["projected_total_usd"] + extra, 6),
        "projected_low_usd": round(result["projected_low_usd"] + extra, 6),
        "projected_high_usd": round(result["projected_high_usd"] + extra, 6),
        "daily_pace_usd": round(result["daily_pace_usd"], 6),
        "weekday_factors": result["weekday_factors"],
        "history_days": result["history_days"],
        "interval": result["interval"],
        "history": shown,
        "days": [_day_json(day) for day in days],
    }


def refresh_budget_forecasts(store: Store, now: datetime | None = None) -> int:
    """Forecast the end-of-window spend of every open budget window of :data:`DAILY_WINDOWS_FROM` or longer (a
    month) from its scope's daily spend, and store it with the window's row; return how many were stored."""
    now = now or datetime.now(UTC)
    sql = ("SELECT s.budget_key, s.window_id, s.spent_usd, s.limit_usd, s.window_start, s.window_end,"
           " COALESCE((SELECT SUM(r.amount_usd) FROM budget_reservations r WHERE r.budget_key = s.budget_key"
           " AND r.window_id = s.window_id AND r.expires_at > ?), 0)"
           " FROM budget_spend s WHERE s.window_start IS NOT NULL AND s.window_end > ?")  # fmt: skip
    updates = []
    for key, window, spent, limit, start, end, reserved in _rows(store, sql, (now, now)):
        start_at, end_at = as_datetime(start), as_datetime(end)
        subject, name = [*key.split(":"), "", ""][:2]
        if start_at is None or end_at is None or end_at - start_at < DAILY_WINDOWS_FROM or subject not in _SCOPES:
            continue
        forecast = budget_forecast(store, subject, name, float(spent) + float(reserved), limit, start_at, end_at, now)
        if forecast is None:  # no complete day of history yet: the router's run-rate stands
            continue
        updates.append((forecast["projected_usd"], forecast["low_usd"], forecast["high_usd"], forecast["basis_usd"],
                        forecast["method"], forecast["runs_out"], now, key, window))  # fmt: skip

    def work(cur: StoreCursor) -> None:
        cur.executemany(
            "UPDATE budget_spend SET forecast_usd = ?, forecast_low_usd = ?, forecast_high_usd = ?,"
            " forecast_basis_usd = ?, forecast_method = ?, forecast_runs_out = ?, forecast_at = ?"
            " WHERE budget_key = ? AND window_id = ?",
            updates,
        )

    if updates:
        store.run(work, transaction=True)
    return len(updates)


def budget_forecast(store: Store, subject: str, name: str, committed: float, limit: float | None,
                    start: datetime, end: datetime, now: datetime) -> dict[str, Any] | None:  # fmt: skip
    """One month window's end spend: what is committed (settled + reserved) plus the forecast of the rest of the
    window (the rest of today pro rata), its band, and when the limit is reached on the way; ``None`` while the
    scope has no complete day of spend."""
    from supervisor_lib.analytics.forecast import forecast_spend

    today = now.astimezone(UTC).date()
    last_day = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    scope = Filters(start, end, None, **{_SCOPES[subject]: name})
    history = daily_spend(store, scope, today - timedelta(days=HISTORY_DAYS), today - timedelta(days=1))
    history = history[history.cumsum() > 0]
    if history.empty:
        return None
    result = forecast_spend(history, last_day, window_start=start.astimezone(UTC).date())
    left_today = 1.0 - (now - datetime(today.year, today.month, today.day, tzinfo=UTC)) / timedelta(days=1)
    remaining = {"forecast_usd": 0.0, "low_usd": 0.0, "high_usd": 0.0}
    path: list[tuple[date, float]] = []  # cumulative spend at the end of each remaining day
    running = committed
    for day in result["days"]:
        share = left_today if day["date"] == today else 1.0 if day["date"] > today else 0.0
        for field_name in remaining:
            remaining[field_name] += share * day[field_name]
        running += share * day["forecast_usd"]
        path.append((day["date"], running))
    # the band of a sum is narrower than the sum of the days' bands: scale the total's band instead
    total_rest = result["projected_total_usd"] - result["spent_usd"]
    low_share = (result["projected_low_usd"] - result["spent_usd"]) / total_rest if total_rest > 0 else 1.0
    high_share = (result["projected_high_usd"] - result["spent_usd"]) / total_rest if total_rest > 0 else 1.0
    runs_out = None
    if limit is not None:
        if committed >= limit:
            runs_out = now
        else:
            reached = next((day for day, cumulative in path if cumulative >= limit), None)
            runs_out = datetime(reached.year, reached.month, reached.day, tzinfo=UTC) if reached else None
    rest = remaining["forecast_usd"]
    return {
        "projected_usd": round(committed + rest, 6),
        "low_usd": round(committed + rest * low_share, 6),
        "high_usd": round(committed + rest * high_share, 6),
        "basis_usd": round(committed, 6),
        "method": result["method"],
        "runs_out": runs_out,
    }


def _day_json(day: dict[str, Any]) -> dict[str, Any]:
    rounded = {name: round(day[name], 6) for name in ("forecast_usd", "low_usd", "high_usd")}
    return {**day, **rounded, "date": day["date"].isoformat()}


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)
