"""Spend forecasts from the recorded calls, on SQLite and PostgreSQL: the views' month forecast (today counted as
far as it went), and one forecast per budget month window, stored by the scan and read by the router and the
views alike (the run-rate only where there is no fresh one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from supervisor_lib.analytics import operations, scan, spend
from supervisor_lib.analytics.filters import Filters
from supervisor_lib.routing.budgets import Charge, Limit, Period, forecasts
from supervisor_lib.store import CallRecord, Store, call_id
from supervisor_lib.store.routing_state import RoutingState

NOW = datetime(2026, 12, 10, 12, tzinfo=UTC)  # a Thursday, half-way through the day
MONTH = Charge(Limit("dag", "nightly", Period.MONTH, 200.0, "spec"), "2026-12", datetime(2026, 12, 1, tzinfo=UTC),
               datetime(2027, 1, 1, tzinfo=UTC))  # fmt: skip


def _calls(store: Store, dag_id: str, days: int, weekday_usd: float, weekend_usd: float, today_usd: float) -> None:
    """Two calls a day for ``days`` days before today (weekends cheaper), and today's morning spend."""
    records = []
    for back in range(days, -1, -1):
        day = (NOW - timedelta(days=back)).replace(hour=3)
        usd = today_usd if back == 0 else weekend_usd if day.weekday() >= 5 else weekday_usd
        for n in range(2):
            records.append(CallRecord(
                call_id=call_id(dag_id, f"r{back}", "t", -1, 1, 1, str(n)), dag_id=dag_id, run_id=f"r{back}",
                task_id="t", provider="anthropic", model="claude-haiku-4-5", task_type="llm",
                started_at=day + timedelta(hours=n), status="success", attempt=1, try_number=1, duration_s=1.0,
                input_tokens=100, output_tokens=10, cost_usd=usd / 2,
            ))  # fmt: skip
    store.insert_attempts([r.to_row() for r in records])


def test_the_views_forecast_projects_the_month_with_weekday_effects_and_today_so_far(store: Store) -> None:
    _calls(store, "nightly", days=42, weekday_usd=10.0, weekend_usd=2.0, today_usd=7.0)
    _calls(store, "other", days=42, weekday_usd=100.0, weekend_usd=100.0, today_usd=100.0)
    answer = spend.spend_forecast(store, Filters(NOW - timedelta(days=1), NOW, dag_id="nightly"), now=NOW)
    assert answer["method"] == "weekday-seasonal" and answer["weekday_factors"]["Sat"] < 0.5
    # Dec 1-9 spent (7 weekdays, 2 weekend days) plus today's 7
    assert answer["spent_usd"] == pytest.approx(7 * 10 + 2 * 2 + 7.0)
    days = {day["date"]: day for day in answer["days"]}
    assert days["2026-12-10"]["spent_usd"] == 7.0 and set(days) == {f"2026-12-{d}" for d in range(10, 32)}
    rest = sum(day["forecast_usd"] for day in answer["days"])
    # 22 days left (Dec 10-31): 16 weekdays at $10, 6 weekend days at $2; today already spent its share
    assert rest == pytest.approx(16 * 10 + 6 * 2, rel=0.05)
    assert answer["projected_total_usd"] == pytest.approx(7 * 10 + 2 * 2 + rest, rel=1e-6)
    assert answer["projected_low_usd"] <= answer["projected_total_usd"] <= answer["projected_high_usd"]
    assert [h["date"] for h in answer["history"]][-1] == "2026-12-10" and len(answer["history"]) == 30
    # a user who may not read the DAG sees nothing of it
    hidden = spend.spend_forecast(store, Filters(NOW, NOW + timedelta(hours=1), frozenset(), "nightly"), now=NOW)
    assert hidden["method"] == "none" and hidden["spent_usd"] == 0


def test_a_month_budget_is_forecast_once_and_router_and_views_read_the_same_projection(store: Store) -> None:
    _calls(store, "nightly", days=42, weekday_usd=10.0, weekend_usd=10.0, today_usd=5.0)
    state = RoutingState(store)
    state.reserve([MONTH], 0.0, reservation_id="r0", owner=("nightly", "r", "t"), now=NOW, ttl_s=60)
    state.settle_windows("r0", [(MONTH.key, MONTH.window)], 95.0, NOW)  # Dec 1-9 and this morning
    linear = forecasts([MONTH], state.usage([MONTH], NOW), NOW, 0.05)[0].projected_usd
    assert linear == pytest.approx(95.0 * 31 / 9.5)  # the run-rate before the scan ran
    assert operations.budgets(store, None, NOW)[0]["forecast_method"] == "run-rate"

    result = scan.scan(store, now=NOW)
    assert result.budgets_forecast == 1
    usage = state.usage([MONTH], NOW)
    stored = usage[(MONTH.key, MONTH.window)].stored
    assert stored is not None and stored.basis_usd == 95.0
    # $95 committed + the rest of today (half of $10) + 21 days at $10
    assert stored.projected_usd == pytest.approx(95.0 + 5.0 + 210.0, rel=0.03)
    routed = forecasts([MONTH], usage, NOW, 0.05)[0].projected_usd
    [view] = operations.budgets(store, None, NOW)
    assert view["forecast_method"] == "weekday-seasonal" and view["forecast_usd"] == pytest.approx(routed)
    assert view["forecast_low_usd"] <= view["forecast_usd"] <= view["forecast_high_usd"]
    # $200 is reached on the day the cumulative projection passes it: 95 + 5 + 10 x 10 days -> Dec 20
    assert view["runs_out_at"].startswith("2026-12-20")

    # spend committed after the forecast adds to it; a stale forecast gives way to the run-rate again
    later = NOW + timedelta(hours=1)
    state.reserve([MONTH], 0.0, reservation_id="r1", owner=("nightly", "r", "t"), now=later, ttl_s=60)
    state.settle_windows("r1", [(MONTH.key, MONTH.window)], 20.0, later)
    again = forecasts([MONTH], state.usage([MONTH], later), later, 0.05)[0].projected_usd
    assert again == pytest.approx(routed + 20.0)
    stale = NOW + timedelta(hours=3)
    assert forecasts([MONTH], state.usage([MONTH], stale), stale, 0.05)[0].projected_usd == pytest.approx(
        115.0 * 31 / (9 + 15 / 24)
    )
    assert operations.budgets(store, None, stale)[0]["forecast_method"] == "run-rate"


def test_a_budget_without_a_complete_day_of_history_keeps_the_run_rate(store: Store) -> None:
    state = RoutingState(store)
    state.reserve([MONTH], 0.0, reservation_id="r0", owner=("nightly", "r", "t"), now=NOW, ttl_s=60)
    state.settle_windows("r0", [(MONTH.key, MONTH.window)], 3.0, NOW)
    assert spend.refresh_budget_forecasts(store, NOW) == 0
    assert state.usage([MONTH], NOW)[(MONTH.key, MONTH.window)].stored is None
