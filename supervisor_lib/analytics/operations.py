"""The operational state the Supervisor page shows beside the numbers: provider health (error rates, latency,
circuit breakers, recent failovers) and budgets (limit, settled, reserved, left, and a forecast to the window's
end)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from supervisor_lib.analytics.filters import Filters
from supervisor_lib.analytics.queries import _HIST, _iso, _rows, decisions
from supervisor_lib.routing.forecast import project
from supervisor_lib.store.cursor import as_datetime
from supervisor_lib.store.db import Store
from supervisor_lib.store.rollups import percentile

#: the window provider health is computed over
HEALTH_WINDOW = timedelta(hours=1)
#: per-run budgets (whose window is the run) show while the run spent in the last this long
RUN_BUDGETS_SHOWN = timedelta(hours=24)


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
           " s.updated_at,"
           " COALESCE((SELECT SUM(r.amount_usd) FROM budget_reservations r WHERE r.budget_key = s.budget_key"
           " AND r.window_id = s.window_id AND r.expires_at > ?), 0) FROM budget_spend s"
           " WHERE (s.window_end IS NULL AND s.updated_at > ?) OR s.window_end > ?"
           " ORDER BY s.budget_key, s.window_id")  # fmt: skip
    found = []
    recent = now - RUN_BUDGETS_SHOWN
    for key, window, spent, limit, label, start, end, updated, reserved in _rows(store, sql, (now, recent, now)):
        subject, name = [*key.split(":"), "", ""][:2]
        if not _visible(subject, name, dag_ids):
            continue
        window_end = as_datetime(end)
        found.append({
            "budget_key": key, "window": window, "label": label or key, "limit_usd": limit,
            "settled_usd": round(spent, 6), "reserved_usd": round(reserved, 6),
            "left_usd": round(limit - spent - reserved, 6) if limit is not None else None,
            "window_start": _iso(start), "window_end": _iso(window_end), "updated_at": _iso(updated),
            "forecast_usd": _forecast(spent + reserved, as_datetime(start), window_end, now),
        })  # fmt: skip
    return found


def _visible(subject: str, name: str, dag_ids: frozenset[str] | None) -> bool:
    if dag_ids is None:
        return True
    return subject in ("dag", "run") and name in dag_ids


def _forecast(committed: float, start: datetime | None, end: datetime | None, now: datetime) -> float | None:
    """Spend projected to the window's end at the pace so far (``None`` for a window without time bounds: a run)."""
    if start is None or end is None:
        return None
    return round(project(committed, start, end, now, 0.05), 6)
