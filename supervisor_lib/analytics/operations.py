"""The operational state the Supervisor page shows beside the numbers: provider health (error rates, latency,
circuit breakers, recent failovers) and budgets (limit, settled, reserved, left, and a forecast to the window's
end)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from supervisor_lib.analytics.filters import Filters
from supervisor_lib.analytics.queries import _HIST, _iso, _rows, decisions
from supervisor_lib.routing.forecast import StoredForecast, project
from supervisor_lib.store.cursor import as_datetime
from supervisor_lib.store.db import Store
from supervisor_lib.store.rollups import percentile

#: the window provider health is computed over
HEALTH_WINDOW = timedelta(hours=1)
#: per-run budgets (whose window is the run) show while the run spent in the last this long
RUN_BUDGETS_SHOWN = timedelta(hours=24)
#: the router's default ``routing.forecast.min_elapsed_fraction`` (the run-rate of the first hours of a window)
_MIN_ELAPSED = 0.05


def providers(store: Store, dag_ids: frozenset[str] | None, now: datetime | None = None) -> dict[str, Any]:
    """Per provider and model over the last hour: calls, error rate, p95 latency; every breaker's state; the
    latest routing decisions that failed over."""
    now = now or datetime.now(UTC)
    filters = Filters(now - HEALTH_WINDOW, now, dag_ids)
    where, params = filters.where()
    sql = (f"SELECT provider, model, SUM(calls), SUM(CASE WHEN outcome = 'failed' THEN calls ELSE 0 END), {_HIST}"
           f" FROM call_rollups WHERE {where} AND outcome <> 'cached' GROUP BY provider, model"
           " ORDER BY provider, model")  # fmt: skip
    models = [
        {"provider": p, "model": m, "calls": int(n), "error_rate": round(f / n, 4) if n else None,
         "latency_p95_s": percentile([int(h) for h in hist], 0.95)}
        for p, m, n, f, *hist in _rows(store, sql, params)
    ]  # fmt: skip
    breakers = [
        {"key": key, "state": _breaker_state(as_datetime(open_until), as_datetime(probe_until), now),
         "open_until": _iso(open_until), "reason": reason, "updated_at": _iso(updated)}
        for key, open_until, probe_until, reason, updated in _rows(
            store, "SELECT breaker_key, open_until, probe_expires_at, reason, updated_at FROM router_breakers"
            " ORDER BY breaker_key", ())
    ]  # fmt: skip
    failovers = [d for d in decisions(store, dag_ids=dag_ids, limit=200) if d["failovers"]][:20]
    return {"window_s": int(HEALTH_WINDOW.total_seconds()), "models": models, "breakers": breakers,
            "failovers": failovers}  # fmt: skip


def _breaker_state(open_until: datetime | None, probe_until: datetime | None, now: datetime) -> str:
    if open_until is not None and open_until > now:
        return "open"
    if probe_until is not None and probe_until > now:
        return "half-open (probing)"
    return "closed"


def budgets(store: Store, dag_ids: frozenset[str] | None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every budget window still open (a run's: while it spent in the last day): its limit, what is settled and
    reserved, what is left, and the spend projected to the window's end at the current pace. A DAG's budgets show
    to those who may read the DAG; budgets over providers, teams and tags only to a user who may read every DAG."""
    now = now or datetime.now(UTC)
    sql = ("SELECT s.budget_key, s.window_id, s.spent_usd, s.limit_usd, s.label, s.window_start, s.window_end,"
           " s.updated_at, s.forecast_usd, s.forecast_low_usd, s.forecast_high_usd, s.forecast_basis_usd,"
           " s.forecast_method, s.forecast_runs_out, s.forecast_at,"
           " COALESCE((SELECT SUM(r.amount_usd) FROM budget_reservations r WHERE r.budget_key = s.budget_key"
           " AND r.window_id = s.window_id AND r.expires_at > ?), 0) FROM budget_spend s"
           " WHERE (s.window_end IS NULL AND s.updated_at > ?) OR s.window_end > ?"
           " ORDER BY s.budget_key, s.window_id")  # fmt: skip
    found = []
    recent = now - RUN_BUDGETS_SHOWN
    for key, window, spent, limit, label, start, end, updated, *stored, reserved in _rows(
        store, sql, (now, recent, now)
    ):
        subject, name = [*key.split(":"), "", ""][:2]
        if not _visible(subject, name, dag_ids):
            continue
        window_start, window_end = as_datetime(start), as_datetime(end)
        committed = spent + reserved
        found.append({
            "budget_key": key, "window": window, "label": label or key, "limit_usd": limit,
            "settled_usd": round(spent, 6), "reserved_usd": round(reserved, 6),
            "left_usd": round(limit - spent - reserved, 6) if limit is not None else None,
            "window_start": _iso(window_start), "window_end": _iso(window_end), "updated_at": _iso(updated),
            **_forecast(committed, limit, window_start, window_end, now, stored),
        })  # fmt: skip
    return found


def _visible(subject: str, name: str, dag_ids: frozenset[str] | None) -> bool:
    if dag_ids is None:
        return True
    return subject in ("dag", "run") and name in dag_ids


def _forecast(committed: float, limit: float | None, start: datetime | None, end: datetime | None, now: datetime,
              stored: list[Any]) -> dict[str, Any]:  # fmt: skip
    """The window's projected end spend, its band, how it was made and when the limit runs out: the anomaly scan's
    stored forecast while fresh (plus what was committed since, as the router reads it), else the run-rate."""
    none = {"forecast_usd": None, "forecast_low_usd": None, "forecast_high_usd": None, "forecast_method": None,
            "runs_out_at": None}  # fmt: skip
    if start is None or end is None:  # a run's budget: no time window to project over
        return none
    forecast, low, high, basis, method, runs_out_on, made_at = stored
    made = as_datetime(made_at)
    kept = StoredForecast(forecast, basis or 0.0, made) if forecast is not None and made is not None else None
    if kept is not None and kept.fresh(now):
        since = max(0.0, committed - kept.basis_usd)
        out = now if limit is not None and committed >= limit else as_datetime(runs_out_on)
        return {"forecast_usd": round(project(committed, start, end, now, _MIN_ELAPSED, kept), 6),
                "forecast_low_usd": round(max(committed, low + since), 6),
                "forecast_high_usd": round(high + since, 6), "forecast_method": method,
                "runs_out_at": _iso(out)}  # fmt: skip
    return {
        **none,
        "forecast_usd": round(project(committed, start, end, now, _MIN_ELAPSED), 6),
        "forecast_method": "run-rate",
        "runs_out_at": _iso(runs_out(committed, limit, start, end, now)),
    }


def runs_out(committed: float, limit: float | None, start: datetime | None, end: datetime | None, now: datetime
             ) -> datetime | None:  # fmt: skip
    """When the budget runs out at the pace so far, if that is before its window ends (``None`` otherwise)."""
    if limit is None or start is None or end is None or committed <= 0:
        return None
    if committed >= limit:
        return now
    pace = committed / max((now - start).total_seconds(), 60.0)  # dollars per second so far
    at = now + timedelta(seconds=(limit - committed) / pace)
    return at if at < end else None
