"""The questions the Supervisor views ask, answered from the rollups (never by scanning ``call_attempts``, except
for one run's or one task's own calls, which an index finds).

Every function takes a :class:`~supervisor_lib.store.db.Store` and :class:`~supervisor_lib.analytics.filters.
Filters` (which carry the DAGs the user may read) and returns plain JSON-ready values.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from supervisor_lib.analytics.filters import FilterError, Filters, group_column
from supervisor_lib.store.cursor import StoreCursor, as_datetime
from supervisor_lib.store.db import Store
from supervisor_lib.store.rollups import LATENCY_COLUMNS, percentile

METRICS = ("cost", "calls", "tokens", "p50", "p95", "error_rate")
#: groups drawn as their own series; the rest are added up as "other"
MAX_SERIES = 8
#: the key of the groups beyond :data:`MAX_SERIES` (NULL in SQL, so no real group's name can clash with it)
_OTHER = object()
_TOKENS = "input_tokens + output_tokens + cache_read_tokens + cache_write_tokens"
_HIST = ", ".join(f"SUM({column})" for column in LATENCY_COLUMNS)


def _rows(store: Store, sql: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
    def work(cur: StoreCursor) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in cur.execute(sql, tuple(params)).fetchall()]

    return store.run(work)


def overview(store: Store, filters: Filters) -> dict[str, Any]:
    """The KPI tiles: spend (and how much of it is estimated or unpriced), calls, success rate, latency
    percentiles, tokens by kind, savings, retries, failovers, answers re-used from the response cache."""
    where, params = filters.where(needs={"outcome"})
    sql = (f"SELECT outcome, SUM(calls), SUM(cost_usd), SUM(estimated_usd), SUM(unpriced_calls), SUM(retries),"
           f" SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(saved_usd),"
           f" {_HIST} FROM call_rollups WHERE {where} GROUP BY outcome")  # fmt: skip
    totals: dict[str, float] = defaultdict(float)
    histogram = [0] * len(LATENCY_COLUMNS)
    for outcome, calls, cost, estimated, unpriced, retries, inp, out, c_read, c_write, saved, *hist in _rows(
        store, sql, params
    ):
        totals["calls"] += calls
        totals[f"calls_{outcome}"] += calls
        totals["cost"] += cost
        totals["estimated"] += estimated
        totals["unpriced"] += unpriced
        totals["retries"] += retries
        totals["saved_cache" if outcome == "cached" else "saved_prompt_cache"] += saved or 0
        for key, value in (("input", inp), ("output", out), ("cache_read", c_read), ("cache_write", c_write)):
            totals[key] += value
        if outcome != "cached":  # re-used answers took no time: they would flatter the latency
            histogram = [a + int(b) for a, b in zip(histogram, hist, strict=True)]
    calls = int(totals["calls"])
    good = totals["calls_answered"] + totals["calls_cached"]
    return {
        "range": _range(filters),
        "spend_usd": round(totals["cost"], 6),
        "estimated_usd": round(totals["estimated"], 6),
        "unpriced_calls": int(totals["unpriced"]),
        "calls": calls,
        "success_rate": round(good / calls, 4) if calls else None,
        "failed": int(totals["calls_failed"]),
        "rejected": int(totals["calls_rejected"]),
        "latency_p50_s": percentile(histogram, 0.5),
        "latency_p95_s": percentile(histogram, 0.95),
        "tokens": {key: int(totals[key]) for key in ("input", "cache_read", "cache_write", "output")},
        "prompt_cache_savings_usd": round(totals["saved_prompt_cache"], 6),
        "cached_answers": int(totals["calls_cached"]),
        "cached_answers_saved_usd": round(totals["saved_cache"], 6),
        "retries": int(totals["retries"]),
        "failovers": failover_count(store, filters),
    }


def failover_count(store: Store, filters: Filters) -> int | None:
    """Failovers the router made in the range (readable DAGs); ``None`` when narrowed by team or tag, which
    decisions do not record."""
    if filters.team or filters.tag:
        return None
    narrowed = Filters(filters.start, filters.end, filters.dag_ids, filters.dag_id, filters.provider, filters.model)
    where, params = narrowed.where(time_column="decided_at", grain=False)
    rows = _rows(store, f"SELECT COALESCE(SUM(failovers), 0) FROM routing_decisions WHERE {where}", params)
    return int(rows[0][0])


def series(store: Store, filters: Filters, metric: str, group_by: str) -> dict[str, Any]:
    """One metric over time, one series per group (the :data:`MAX_SERIES` largest; the rest as ``other``)."""
    if metric not in METRICS:
        raise FilterError("metric", f"one of {', '.join(METRICS)}")
    column = group_column(group_by)
    where, params = filters.where(needs={column})
    latency = metric in ("p50", "p95")  # only percentiles need the histogram
    # The largest groups first, then their values per time with the rest added up in SQL as one group (NULL): a
    # 90-day range by DAG is then a few hundred rows, not one per DAG and day. Not for tags: a row counts for each of
    # its tags, so they are ranked after the split.
    ranked: list[str] | None = None
    group, group_params = column, []
    if column != "tags":
        size = {"cost": "SUM(cost_usd)", "tokens": f"SUM({_TOKENS})"}.get(metric, "SUM(calls)")
        sql = (f"SELECT {column}, {size} FROM call_rollups WHERE {where} GROUP BY {column}"
               f" ORDER BY 2 DESC, 1 LIMIT {MAX_SERIES + 1}")  # fmt: skip
        ranked = [name for name, _ in _rows(store, sql, params)]
        if len(ranked) > MAX_SERIES:
            ranked = ranked[:MAX_SERIES]
            group, group_params = f"CASE WHEN {column} IN ({', '.join('?' for _ in ranked)}) THEN {column} END", ranked
    sql = (f"SELECT bucket, {group}, SUM(calls), SUM(cost_usd), SUM({_TOKENS}),"
           f" SUM(errors){', ' + _HIST if latency else ''} FROM call_rollups WHERE {where} GROUP BY 1, 2")  # fmt: skip
    rows = _rows(store, sql, [*group_params, *params])
    times = _buckets(filters)
    # cells[group, time] = (calls, cost, tokens, errors, *histogram), added up with numpy (a 90-day range by DAG is
    # tens of thousands of rows: a Python loop per value was most of the answer's time)
    slot = {at: index for index, at in enumerate(times)}
    slots: dict[Any, int | None] = {}
    groups: dict[object, int] = {}  # a group's name, or _OTHER
    picked: list[tuple[int, int, int]] = []  # (row, group, time)
    for index, (bucket, group, *_) in enumerate(rows):
        if bucket not in slots:
            at = as_datetime(bucket)
            slots[bucket] = slot.get(at) if at is not None else None
        at_slot = slots[bucket]
        if at_slot is None:
            continue
        for name in group.split(",") if column == "tags" else [group]:
            picked.append(
                (index, groups.setdefault(_OTHER if name is None else name or "(none)", len(groups)), at_slot)
            )
    width = 4 + (len(LATENCY_COLUMNS) if latency else 0)
    cells = np.zeros((len(groups), len(times), width))
    if picked:
        which, group_at, time_at = np.asarray(picked).T
        values = np.asarray([row[2:] for row in rows], dtype=float)
        np.add.at(cells, (group_at, time_at), values[which])
    if ranked is not None:  # ranked by SQL; the rest, if any, came as one group
        shown = [(name or "(none)", cells[groups[name or "(none)"]]) for name in ranked if (name or "(none)") in groups]
        if _OTHER in groups:
            shown.append(("other", cells[groups[_OTHER]]))
    else:
        names = [str(name) for name in groups]
        ranking = cells[:, :, 1 if metric == "cost" else 2 if metric == "tokens" else 0].sum(axis=1)
        order = sorted(range(len(names)), key=lambda g: -ranking[g])
        shown = [(names[g], cells[g]) for g in order[:MAX_SERIES]]
        if len(order) > MAX_SERIES:
            shown.append(("other", cells[order[MAX_SERIES:]].sum(axis=0)))
    return {
        "range": _range(filters),
        "metric": metric,
        "group_by": group_by,
        "times": [int(t.timestamp()) for t in times],
        "series": [{"name": name, "values": _values(cell, metric)} for name, cell in shown],
    }


def _values(cells: np.ndarray, metric: str) -> list[float | int | None]:
    """One series' values from its cells (one row per time: calls, cost, tokens, errors, histogram)."""
    calls = cells[:, 0]
    if metric == "cost":
        return [round(float(value), 6) for value in cells[:, 1]]
    if metric in ("calls", "tokens"):
        return [int(value) for value in (calls if metric == "calls" else cells[:, 2])]
    if metric == "error_rate":
        return [round(float(e / n), 4) if n else None for n, e in zip(calls, cells[:, 3], strict=True)]
    share = 0.5 if metric == "p50" else 0.95
    return [percentile([int(h) for h in cell[4:]], share) for cell in cells]


def _buckets(filters: Filters) -> list[datetime]:
    step = timedelta(seconds=filters.bucket_s)
    at = filters.start.replace(minute=0, second=0, microsecond=0)
    if filters.grain == "day":
        at = at.replace(hour=0)
    found = []
    while at < filters.end:
        found.append(at)
        at += step
    return found


def top(store: Store, filters: Filters, by: str, limit: int = 10) -> list[dict[str, Any]]:
    """The costliest DAGs, tasks or runs in the range."""
    if not 1 <= limit <= 500:
        raise FilterError("limit", "between 1 and 500")
    if by == "run":
        return top_runs(store, filters, limit)
    columns = {"dag": ("dag_id",), "task": ("dag_id", "task_id"), "model": ("provider", "model")}.get(by)
    if columns is None:
        raise FilterError("by", "one of dag, task, run, model")
    where, params = filters.where(needs=set(columns))
    keys = ", ".join(columns)
    sql = (f"SELECT {keys}, SUM(cost_usd), SUM(calls), SUM({_TOKENS}), SUM(errors)"
           f" FROM call_rollups WHERE {where} GROUP BY {keys} ORDER BY SUM(cost_usd) DESC, SUM(calls) DESC"
           f" LIMIT {int(limit)}")  # fmt: skip
    return [
        {**dict(zip(columns, row[: len(columns)], strict=True)), "cost_usd": round(row[-4], 6), "calls": row[-3],
         "tokens": row[-2], "errors": row[-1]}
        for row in _rows(store, sql, params)
    ]  # fmt: skip


def top_runs(store: Store, filters: Filters, limit: int) -> list[dict[str, Any]]:
    """The costliest DAG runs whose calls fall in the range (each links to Airflow's run page)."""
    where, params = filters.where(time_column="last_at", grain=False)
    for narrowing in ("provider = ?", "model = ?", "team = ?", "(',' || tags || ',') LIKE ?"):
        if narrowing in where:
            raise FilterError("by", "runs cannot be narrowed by provider, model, team or tag")
    sql = (f"SELECT dag_id, run_id, cost_usd, calls, tokens, errors, duration_s, first_at, last_at FROM run_rollups"
           f" WHERE {where} ORDER BY cost_usd DESC LIMIT {int(limit)}")  # fmt: skip
    return [
        {"dag_id": d, "run_id": r, "cost_usd": round(c, 6), "calls": n, "tokens": t, "errors": e,
         "success_rate": round(1 - e / n, 4) if n else None,
         "mean_latency_s": round(seconds / n, 3) if n else None, "first_at": _iso(f), "last_at": _iso(last)}
        for d, r, c, n, t, e, seconds, f, last in _rows(store, sql, params)
    ]  # fmt: skip


def errors(store: Store, filters: Filters) -> list[dict[str, Any]]:
    """Failed and rejected calls by provider, model, outcome and error type."""
    where, params = filters.where(needs={"provider", "model", "outcome", "error_type"})
    sql = (f"SELECT provider, model, outcome, error_type, SUM(calls) FROM call_rollups WHERE {where}"
           " AND outcome IN ('failed', 'rejected') GROUP BY provider, model, outcome, error_type"
           " ORDER BY SUM(calls) DESC")  # fmt: skip
    return [
        {"provider": p, "model": m, "outcome": o, "error_type": t or None, "calls": n}
        for p, m, o, t, n in _rows(store, sql, params)
    ]


def dag_runs(store: Store, filters: Filters, dag_id: str, limit: int = 200) -> dict[str, Any]:
    """One DAG: cost, calls and errors per run over time, and which tasks and models cost most."""
    scoped = Filters(filters.start, filters.end, filters.dag_ids, dag_id)
    runs = sorted(top_runs(store, scoped, limit), key=lambda run: run["last_at"] or "")
    return {"dag_id": dag_id, "range": _range(scoped), "runs": runs, "tasks": top(store, scoped, "task", 50),
            "models": top(store, scoped, "model", 20)}  # fmt: skip


def run_calls(store: Store, dag_id: str, run_id: str) -> dict[str, Any]:
    """One run: every recorded attempt in order (the run's time line), with totals per task."""
    sql = ("SELECT call_id, task_id, map_index, try_number, attempt, provider, model, started_at, duration_s,"
           " input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, outcome, error_type,"
           " error_message, cost_basis, deferred FROM call_attempts WHERE dag_id = ? AND run_id = ?"
           " ORDER BY started_at, call_id LIMIT 5000")  # fmt: skip
    names = ("call_id", "task_id", "map_index", "try_number", "attempt", "provider", "model", "started_at",
             "duration_s", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd",
             "outcome", "error_type", "error_message", "cost_basis", "deferred")  # fmt: skip
    calls = []
    for row in _rows(store, sql, (dag_id, run_id)):
        call = dict(zip(names, row, strict=True))
        call["started_at"], call["deferred"] = _iso(call["started_at"]), bool(call["deferred"])
        calls.append(call)
    tasks: dict[tuple[str, int], dict[str, Any]] = {}
    for call in calls:
        task = tasks.setdefault((call["task_id"], call["map_index"]), {
            "task_id": call["task_id"], "map_index": call["map_index"], "calls": 0, "cost_usd": 0.0, "tokens": 0,
            "retries": 0, "failed": 0})  # fmt: skip
        task["calls"] += 1
        task["cost_usd"] = round(task["cost_usd"] + (call["cost_usd"] or 0), 6)
        task["tokens"] += sum(
            int(call[k] or 0) for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
        )
        task["retries"] += int(call["attempt"] > 1 or call["try_number"] > 1)
        task["failed"] += int(call["outcome"] in ("failed", "rejected"))
    return {"dag_id": dag_id, "run_id": run_id, "calls": calls, "tasks": list(tasks.values()),
            "decisions": decisions(store, dag_id, run_id)}  # fmt: skip


def decisions(store: Store, dag_id: str | None = None, run_id: str | None = None, *, dag_ids: frozenset[str] | None
              = None, limit: int = 50) -> list[dict[str, Any]]:  # fmt: skip
    """Routing decisions, newest first, with their reasons (one run's, one DAG's, or the readable DAGs')."""
    clauses, params = [], []
    for column, value in (("dag_id", dag_id), ("run_id", run_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if dag_ids is not None:
        clauses.append(f"dag_id IN ({', '.join('?' for _ in dag_ids)})" if dag_ids else "1 = 0")
        params += sorted(dag_ids)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    sql = ("SELECT dag_id, run_id, task_id, map_index, decided_at, outcome, provider, model, failovers, detail_json"
           f" FROM routing_decisions{where} ORDER BY decided_at DESC LIMIT {int(limit)}")  # fmt: skip
    found = []
    for d, r, t, m, at, outcome, provider, model, failovers, detail in _rows(store, sql, params):
        parsed = json.loads(detail)
        found.append({"dag_id": d, "run_id": r, "task_id": t, "map_index": m, "decided_at": _iso(at),
                      "outcome": outcome, "provider": provider, "model": model, "failovers": failovers,
                      "reason": reason(parsed), "detail": parsed})  # fmt: skip
    return found


def reason(detail: dict[str, Any]) -> str:
    """A routing decision in one line: what failed over and why, the chosen model's reason, what was skipped."""
    parts = [f"{t.get('provider')}/{t.get('model')} {t.get('outcome')}: {t.get('reason')}"
             for t in detail.get("tried") or [] if t.get("outcome") != "answered"]  # fmt: skip
    candidates = detail.get("candidates") or []
    if candidates:
        first = candidates[0]
        parts.append(f"first choice {first.get('provider')}/{first.get('model')}: {first.get('reason')}")
    rejected = detail.get("rejected") or []
    if rejected:
        shown = "; ".join(f"{r.get('provider')}/{r.get('model')} [{r.get('rule')}]" for r in rejected[:3])
        parts.append(f"skipped {shown}" + (f" and {len(rejected) - 3} more" if len(rejected) > 3 else ""))
    parts += [str(note) for note in detail.get("notes") or []]
    return "; ".join(parts)


def transcript(store: Store, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[dict[str, Any]]:
    """Every attempt of every try of one task instance, in order, with what was asked and answered."""
    sql = ("SELECT a.call_id, a.try_number, a.attempt, a.provider, a.model, a.started_at, a.duration_s,"
           " a.input_tokens, a.output_tokens, a.cache_read_tokens, a.cost_usd, a.outcome, a.error_type,"
           " a.error_message, t.content_json FROM call_attempts a LEFT JOIN call_transcripts t"
           " ON t.call_id = a.call_id WHERE a.dag_id = ? AND a.run_id = ? AND a.task_id = ? AND a.map_index = ?"
           " ORDER BY a.started_at, a.call_id LIMIT 2000")  # fmt: skip
    names = ("call_id", "try_number", "attempt", "provider", "model", "started_at", "duration_s", "input_tokens",
             "output_tokens", "cache_read_tokens", "cost_usd", "outcome", "error_type", "error_message")  # fmt: skip
    found = []
    for *values, content in _rows(store, sql, (dag_id, run_id, task_id, map_index)):
        attempt = dict(zip(names, values, strict=True))
        attempt["started_at"] = _iso(attempt["started_at"])
        attempt["content"] = json.loads(content) if content else None
        found.append(attempt)
    return found


def tile(store: Store, dag_ids: frozenset[str] | None, now: datetime | None = None) -> dict[str, Any]:
    """The Home page tile: spend today and yesterday (UTC days), and today's failed calls."""
    now = now or datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = {}
    for name, start in (("yesterday", today - timedelta(days=1)), ("today", today)):
        filters = Filters(start, start + timedelta(days=1), dag_ids)
        where, params = filters.where(grain="day")
        sql = (f"SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM(calls), 0), COALESCE(SUM(errors), 0)"
               f" FROM call_rollups WHERE {where}")  # fmt: skip
        days[name] = _rows(store, sql, params)[0]
    return {"spend_today_usd": round(float(days["today"][0]), 6),
            "spend_yesterday_usd": round(float(days["yesterday"][0]), 6),
            "calls_today": int(days["today"][1]), "errors_today": int(days["today"][2])}  # fmt: skip


def facets(store: Store, filters: Filters) -> dict[str, list[str]]:
    """The providers, models, DAGs, teams and tags with calls in the range (what the filter menus offer); the
    narrowing filters are ignored, so a menu still offers the values it could switch to."""
    wide = Filters(filters.start, filters.end, filters.dag_ids)
    found: dict[str, set[str]] = {name: set() for name in ("provider", "model", "dag_id", "team", "tag")}
    # two questions, each of the smallest grain that knows its keys
    where, params = wide.where(needs={"provider", "model"})
    sql = f"SELECT provider, model FROM call_rollups WHERE {where} GROUP BY provider, model LIMIT 20000"
    for provider, model in _rows(store, sql, params):
        found["provider"].add(provider)
        found["model"].add(model)
    where, params = wide.where(needs={"dag_id", "team", "tags"})
    sql = f"SELECT dag_id, team, tags FROM call_rollups WHERE {where} GROUP BY dag_id, team, tags LIMIT 20000"
    for dag_id, team, tags in _rows(store, sql, params):
        found["dag_id"].add(dag_id)
        found["team"].add(team)
        found["tag"].update(tags.split(","))
    return {name: sorted(value for value in values if value) for name, values in found.items()}


def stamp(store: Store, dag_ids: frozenset[str] | None, now: datetime | None = None) -> str:
    """A cheap fingerprint of what the views show: it changes when a call is recorded (in the last two days) or a
    routing decision, budget or breaker changes. Open pages poll it and reload their data only on a change."""
    now = now or datetime.now(UTC)
    recent = Filters(now - timedelta(days=2), now + timedelta(days=1), dag_ids)
    where, params = recent.where(grain=False)
    sql = (f"SELECT (SELECT COALESCE(SUM(calls), 0) FROM call_rollups WHERE grain = 'day_dag' AND {where}),"
           " (SELECT MAX(decided_at) FROM routing_decisions WHERE decided_at >= ?),"
           " (SELECT MAX(updated_at) FROM budget_spend), (SELECT MAX(updated_at) FROM router_breakers)")  # fmt: skip
    row = _rows(store, sql, [*params, recent.start])[0]
    return "|".join(str(value) for value in row)


def _range(filters: Filters) -> dict[str, Any]:
    return {"start": filters.start.isoformat(), "end": filters.end.isoformat(), "grain": filters.grain,
            "bucket_s": filters.bucket_s}  # fmt: skip


def _iso(value: Any) -> str | None:
    at = as_datetime(value)
    return at.isoformat() if at is not None else None
