"""Rollups of ``call_attempts``, kept as calls are recorded, so the plugin's views never scan the attempts.

``call_rollups`` holds one row per hour (``grain='hour'``) and per day (``'day'``) and per DAG, task, provider,
model, task type, team, tags, outcome and error type, with sums (calls, errors, retries, cost, tokens, durations,
savings) and a latency histogram (percentiles come from it). The other grains are day rows that keep fewer keys (the
dropped ones stored as ``''``), each several times fewer rows than ``day``: what keeps the views of long ranges
fast. A query reads the smallest grain that keeps every key it groups or filters by (:func:`grain_for`):

- ``day_dag``: DAG, team and tags (a DAG's team and tags rarely change, so about one row per DAG and day);
- ``day_type``: provider, model, task type, outcome and error type, no DAG (only for a user who may read every DAG);
- ``day_task``: DAG, task, task type, team and tags;
- ``day_summary``: DAG, provider, model, team, tags and outcome;
- ``day_error``: DAG, provider, model, outcome and error type.

``errors`` counts the failed and rejected calls, so a grain without the outcome still knows its error rate.
``run_rollups`` holds one row per DAG run. An attempt adds to them in the same transaction that inserts it, and only
if it was new (a replayed write adds nothing), so the sums of the rollups always equal the sums of the rows. Pure:
SQL text and arithmetic, no I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

Dialect = Literal["postgresql", "sqlite"]

#: the latency histogram: the upper bound (seconds) of each bucket but the last, which is open
LATENCY_BOUNDS_S: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
LATENCY_COLUMNS: tuple[str, ...] = tuple(f"l{index}" for index in range(len(LATENCY_BOUNDS_S) + 1))
#: what a rollup row is grouped by (with ``grain`` and ``bucket``)
KEYS: tuple[str, ...] = (
    "dag_id", "task_id", "provider", "model", "task_type", "team", "tags", "outcome", "error_type"
)  # fmt: skip
_REALS = ("cost_usd", "estimated_usd", "duration_s", "saved_usd")
#: what a rollup row added up when the table was made (schema migration 6; ``errors`` came with migration 11)
FIRST_SUMS: tuple[str, ...] = (
    "calls", "retries", "cost_usd", "unpriced_calls", "estimated_usd", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "duration_s", "saved_usd", *LATENCY_COLUMNS,
)  # fmt: skip
#: what a rollup row adds up
SUMS: tuple[str, ...] = (*FIRST_SUMS, "errors")
RUN_SUMS: tuple[str, ...] = ("calls", "errors", "cost_usd", "tokens", "duration_s")
GRAINS: tuple[str, ...] = ("hour", "day", "day_summary", "day_dag", "day_type", "day_task", "day_error")
#: the keys a grain does not keep (stored as ``''``)
DROPPED: dict[str, tuple[str, ...]] = {
    "day_summary": ("task_id", "task_type", "error_type"),
    "day_dag": ("task_id", "provider", "model", "task_type", "outcome", "error_type"),
    "day_type": ("dag_id", "task_id", "team", "tags"),
    "day_task": ("provider", "model", "outcome", "error_type"),
    "day_error": ("task_id", "task_type", "team", "tags"),
}
#: the day grains a query may read, smallest first (for the data of most deployments)
DAY_GRAINS: tuple[str, ...] = ("day_dag", "day_type", "day_task", "day_summary", "day_error", "day")
#: the outcomes ``errors`` counts
ERROR_OUTCOMES = ("failed", "rejected")
_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def grain_for(needs: set[str] | frozenset[str]) -> str:
    """The smallest day grain that keeps every key in ``needs`` (the keys a query groups or filters by)."""
    for grain in DAY_GRAINS:
        if not needs & set(DROPPED.get(grain, ())):
            return grain
    raise ValueError(f"not rollup keys: {sorted(needs - set(KEYS))}")


def rollup_table_sql() -> str:
    """``CREATE TABLE call_rollups`` as migration 6 made it (``{timestamp}``/``{real}`` left for the dialect)."""
    sums = ",\n".join(
        f"    {name} {'{real}' if name in _REALS else 'INTEGER'} NOT NULL DEFAULT 0" for name in FIRST_SUMS
    )
    keys = "\n".join(
        f"    {name} TEXT NOT NULL{' DEFAULT ' + repr('') if name in ('team', 'tags') else ''}," for name in KEYS
    )
    return (f"CREATE TABLE IF NOT EXISTS call_rollups (\n    grain TEXT NOT NULL,\n    bucket {{timestamp}} NOT NULL,\n"
            f"{keys}\n{sums},\n    PRIMARY KEY (grain, bucket, {', '.join(KEYS)})\n)")  # fmt: skip


def latency_bucket(duration_s: float) -> int:
    """The histogram bucket of a duration."""
    return bisect_left(LATENCY_BOUNDS_S, duration_s)


def bucket_start(at: datetime, grain: str) -> datetime:
    """The start of ``at``'s hour or day (``day`` and ``day_summary``), in UTC."""
    at = at.astimezone(UTC)
    return (
        at.replace(minute=0, second=0, microsecond=0)
        if grain == "hour"
        else at.replace(hour=0, minute=0, second=0, microsecond=0)
    )


def increments(row: Mapping[str, Any], grain: str = "hour") -> tuple[dict[str, Any], dict[str, Any]]:
    """What one ``call_attempts`` row adds to the rollups of ``grain``: ``(rollup keys, rollup sums)``."""
    return grain_keys(row, grain), row_sums(row)


def grain_keys(row: Mapping[str, Any], grain: str) -> dict[str, Any]:
    """The keys of the rollup row of ``grain`` that ``row`` adds to (a dropped key as ``''``)."""
    dropped = DROPPED.get(grain, ())
    return {name: "" if name in dropped else row.get(name) or "" for name in KEYS}


def row_sums(row: Mapping[str, Any]) -> dict[str, Any]:
    """What one ``call_attempts`` row adds to every rollup row it counts in (the same for every grain)."""
    cost = row.get("cost_usd")
    sums: dict[str, Any] = dict.fromkeys(SUMS, 0)
    sums.update(
        calls=1,
        errors=int((row.get("outcome") or "") in ERROR_OUTCOMES),
        retries=int((row.get("attempt") or 1) > 1 or (row.get("try_number") or 1) > 1),
        cost_usd=float(cost or 0.0),
        unpriced_calls=int(row.get("cost_basis") == "unpriced"),
        estimated_usd=float(cost or 0.0) if row.get("cost_basis") == "estimated" else 0.0,
        duration_s=float(row.get("duration_s") or 0.0),
        saved_usd=float(row.get("saved_usd") or 0.0),
        **{name: int(row.get(name) or 0) for name in _TOKENS},
    )
    sums[LATENCY_COLUMNS[latency_bucket(float(row.get("duration_s") or 0.0))]] = 1
    return sums


def upsert_params(row: Mapping[str, Any]) -> list[Any]:
    """The parameters of :func:`upsert_sql` for one ``call_attempts`` row: each grain's (grain, bucket, keys),
    then the sums once."""
    params: list[Any] = []
    for grain in GRAINS:
        keys = grain_keys(row, grain)
        params += [grain, bucket_start(row["started_at"], grain), *(keys[name] for name in KEYS)]
    sums = row_sums(row)
    return params + [sums[name] for name in SUMS]


def run_increments(row: Mapping[str, Any]) -> dict[str, Any]:
    """What one row adds to its run's totals."""
    return {
        "calls": 1,
        "errors": int(row.get("outcome") in ("failed", "rejected")),
        "cost_usd": float(row.get("cost_usd") or 0.0),
        "tokens": sum(int(row.get(name) or 0) for name in _TOKENS),
        "duration_s": float(row.get("duration_s") or 0.0),
    }


def upsert_sql(dialect: Dialect, only_if: str = "") -> str:
    """Add one row's increments to its rollup row of every grain, in one statement (parameters:
    :func:`upsert_params`; each row of another grain, so no row is updated twice). ``WHERE true`` keeps SQLite from
    reading ``ON CONFLICT`` as a join constraint. ``only_if``: a one-row table to join, so nothing is added when it
    is empty (the attempt's own ``INSERT ... RETURNING`` on PostgreSQL)."""
    mark = "%s" if dialect == "postgresql" else "?"
    keys = f"({', '.join(mark for _ in ('grain', 'bucket', *KEYS))})"
    return (f"INSERT INTO call_rollups (grain, bucket, {', '.join(KEYS)}, {', '.join(SUMS)})"
            f" SELECT g.*, s.* FROM (VALUES {', '.join(keys for _ in GRAINS)}) AS g,{f' {only_if},' if only_if else ''}"
            f" (VALUES ({', '.join(mark for _ in SUMS)})) AS s WHERE true"
            f" ON CONFLICT (grain, bucket, {', '.join(KEYS)}) DO UPDATE SET {upsert_adds()}")  # fmt: skip


def upsert_adds() -> str:
    """The ``SET`` of a rollup upsert: every sum adds the new row's."""
    return ", ".join(f"{name} = call_rollups.{name} + excluded.{name}" for name in SUMS)


def run_upsert_sql(dialect: Dialect) -> str:
    """Add one row to its run's totals (parameters: dag_id, run_id, first_at, last_at, sums)."""
    mark = "%s" if dialect == "postgresql" else "?"
    columns = ("dag_id", "run_id", "first_at", "last_at", *RUN_SUMS)
    adds = ", ".join(f"{name} = run_rollups.{name} + excluded.{name}" for name in RUN_SUMS)
    earliest = "LEAST" if dialect == "postgresql" else "MIN"
    latest = "GREATEST" if dialect == "postgresql" else "MAX"
    return (f"INSERT INTO run_rollups ({', '.join(columns)}) VALUES ({', '.join(mark for _ in columns)})"
            f" ON CONFLICT (dag_id, run_id) DO UPDATE SET {adds},"
            f" first_at = {earliest}(run_rollups.first_at, excluded.first_at),"
            f" last_at = {latest}(run_rollups.last_at, excluded.last_at)")  # fmt: skip


def _bucket_expr(dialect: Dialect, grain: str) -> str:
    grain = "hour" if grain == "hour" else "day"
    if dialect == "postgresql":
        return f"date_trunc('{grain}', started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    # stored as UTC ISO-8601 text with microseconds: cut it at the hour or day and pad it back
    return ("substr(started_at, 1, 13) || ':00:00.000000+00:00'" if grain == "hour"
            else "substr(started_at, 1, 10) || 'T00:00:00.000000+00:00'")  # fmt: skip


def _sum_exprs(sums: tuple[str, ...]) -> list[str]:
    """What ``call_attempts`` rows add up to, one expression per name in ``sums``."""
    latency = [
        f"SUM(CASE WHEN duration_s <= {bound} THEN 1 ELSE 0 END)" if index == 0 else
        f"SUM(CASE WHEN duration_s > {LATENCY_BOUNDS_S[index - 1]} AND duration_s <= {bound} THEN 1 ELSE 0 END)"
        for index, bound in enumerate(LATENCY_BOUNDS_S)
    ]  # fmt: skip
    latency.append(f"SUM(CASE WHEN duration_s > {LATENCY_BOUNDS_S[-1]} THEN 1 ELSE 0 END)")
    errors = ", ".join(f"'{outcome}'" for outcome in ERROR_OUTCOMES)
    exprs = {
        "calls": "COUNT(*)", "retries": "SUM(CASE WHEN attempt > 1 OR try_number > 1 THEN 1 ELSE 0 END)",
        "cost_usd": "SUM(COALESCE(cost_usd, 0))",
        "unpriced_calls": "SUM(CASE WHEN cost_basis = 'unpriced' THEN 1 ELSE 0 END)",
        "estimated_usd": "SUM(CASE WHEN cost_basis = 'estimated' THEN COALESCE(cost_usd, 0) ELSE 0 END)",
        **{name: f"SUM({name})" for name in _TOKENS}, "duration_s": "SUM(duration_s)",
        "saved_usd": "SUM(COALESCE(saved_usd, 0))", **dict(zip(LATENCY_COLUMNS, latency, strict=True)),
        "errors": f"SUM(CASE WHEN outcome IN ({errors}) THEN 1 ELSE 0 END)",
    }  # fmt: skip
    return [exprs[name] for name in sums]


def backfill_sql(
    dialect: Dialect, grains: tuple[str, ...] = ("hour", "day"), sums: tuple[str, ...] = SUMS
) -> tuple[str, ...]:
    """Rollups of the rows recorded before the rollups existed (a migration, once; later rows add themselves): the
    ``grains`` from ``call_attempts``, then the run totals. (The narrower day grains are built from the day rows by
    :func:`derived_backfill_sql`.) ``sums``: the columns the table has at that migration."""
    statements = [
        f"INSERT INTO call_rollups (grain, bucket, {', '.join(KEYS)}, {', '.join(sums)})"
        f" SELECT '{grain}', {_bucket_expr(dialect, grain)}, {_key_exprs(grain)}, {', '.join(_sum_exprs(sums))}"
        f" FROM call_attempts GROUP BY {_bucket_expr(dialect, grain)}, {_key_exprs(grain, grouping=True)}"
        for grain in grains
    ]
    statements.append(
        "INSERT INTO run_rollups (dag_id, run_id, first_at, last_at, calls, errors, cost_usd, tokens, duration_s)"
        " SELECT dag_id, run_id, MIN(started_at), MAX(started_at), COUNT(*),"
        " SUM(CASE WHEN outcome IN ('failed', 'rejected') THEN 1 ELSE 0 END), SUM(COALESCE(cost_usd, 0)),"
        f" SUM({' + '.join(_TOKENS)}), SUM(duration_s) FROM call_attempts GROUP BY dag_id, run_id"
    )
    return tuple(statements)


def derived_backfill_sql(grain: str = "day_summary", sums: tuple[str, ...] = SUMS) -> str:
    """A narrower day ``grain``'s rollups from the ``day`` rollups (once, when the grain was added; both dialects).
    ``sums``: the columns the table has at that migration."""
    dropped = DROPPED[grain]
    keys = ", ".join("''" if name in dropped else name for name in KEYS)
    kept = ", ".join(name for name in KEYS if name not in dropped)
    return (f"INSERT INTO call_rollups (grain, bucket, {', '.join(KEYS)}, {', '.join(sums)})"
            f" SELECT '{grain}', bucket, {keys}, {', '.join(f'SUM({name})' for name in sums)}"
            f" FROM call_rollups WHERE grain = 'day' GROUP BY bucket, {kept}")  # fmt: skip


def _key_exprs(grain: str, *, grouping: bool = False) -> str:
    """The grain's keys as select expressions (a dropped one as ``''``), or, ``grouping``, the kept ones only
    (PostgreSQL refuses a constant in ``GROUP BY``)."""
    dropped = DROPPED.get(grain, ())
    if grouping:
        return ", ".join(f"COALESCE({name}, '')" for name in KEYS if name not in dropped)
    return ", ".join("''" if name in dropped else f"COALESCE({name}, '')" for name in KEYS)


def percentile(histogram: list[int], share: float) -> float | None:
    """The ``share`` quantile (0..1) of a latency histogram, interpolated within its bucket; ``None`` if empty."""
    total = sum(histogram)
    if total == 0:
        return None
    wanted, seen = share * total, 0
    for index, count in enumerate(histogram):
        if count and seen + count >= wanted:
            low = LATENCY_BOUNDS_S[index - 1] if index > 0 else 0.0
            high = LATENCY_BOUNDS_S[index] if index < len(LATENCY_BOUNDS_S) else low * 2
            return round(low + (high - low) * (wanted - seen) / count, 3)
        seen += count
    return float(LATENCY_BOUNDS_S[-1])
