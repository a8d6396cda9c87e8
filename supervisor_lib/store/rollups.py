"""Rollups of ``call_attempts``, kept as calls are recorded, so the plugin's views never scan the attempts.

``call_rollups`` holds one row per hour (``grain='hour'``) and per day (``'day'``) and per DAG, task, provider,
model, task type, team, tags, outcome and error type, with sums (calls, retries, cost, tokens, durations, savings) and a
latency histogram (percentiles come from it). A third grain, ``'day_summary'``, is the day rows without the task, its
type and the error type (stored as ``''``): several times fewer rows, which is what keeps the views of long ranges
fast when they do not ask about tasks, task types or error types. ``run_rollups`` holds one row per DAG run. An
attempt adds to them in the same transaction that inserts it, and only if it was new (a replayed write adds
nothing), so the sums of the rollups always equal the sums of the rows. Pure: SQL text and arithmetic, no I/O.
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
#: what a rollup row adds up
SUMS: tuple[str, ...] = (
    "calls", "retries", "cost_usd", "unpriced_calls", "estimated_usd", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "duration_s", "saved_usd", *LATENCY_COLUMNS,
)  # fmt: skip
RUN_SUMS: tuple[str, ...] = ("calls", "errors", "cost_usd", "tokens", "duration_s")
GRAINS: tuple[str, ...] = ("hour", "day", "day_summary")
#: the keys a grain does not keep (stored as ``''``)
DROPPED: dict[str, tuple[str, ...]] = {"day_summary": ("task_id", "task_type", "error_type")}
_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def rollup_table_sql() -> str:
    """``CREATE TABLE call_rollups`` (``{timestamp}``/``{real}`` left for the dialect)."""
    sums = ",\n".join(f"    {name} {'{real}' if name in _REALS else 'INTEGER'} NOT NULL DEFAULT 0" for name in SUMS)
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
    dropped = DROPPED.get(grain, ())
    keys = {name: "" if name in dropped else row.get(name) or "" for name in KEYS}
    cost = row.get("cost_usd")
    sums: dict[str, Any] = dict.fromkeys(SUMS, 0)
    sums.update(
        calls=1,
        retries=int((row.get("attempt") or 1) > 1 or (row.get("try_number") or 1) > 1),
        cost_usd=float(cost or 0.0),
        unpriced_calls=int(row.get("cost_basis") == "unpriced"),
        estimated_usd=float(cost or 0.0) if row.get("cost_basis") == "estimated" else 0.0,
        duration_s=float(row.get("duration_s") or 0.0),
        saved_usd=float(row.get("saved_usd") or 0.0),
        **{name: int(row.get(name) or 0) for name in _TOKENS},
    )
    sums[LATENCY_COLUMNS[latency_bucket(float(row.get("duration_s") or 0.0))]] = 1
    return keys, sums


def run_increments(row: Mapping[str, Any]) -> dict[str, Any]:
    """What one row adds to its run's totals."""
    return {
        "calls": 1,
        "errors": int(row.get("outcome") in ("failed", "rejected")),
        "cost_usd": float(row.get("cost_usd") or 0.0),
        "tokens": sum(int(row.get(name) or 0) for name in _TOKENS),
        "duration_s": float(row.get("duration_s") or 0.0),
    }


def upsert_sql(dialect: Dialect) -> str:
    """Add one row's increments to ``call_rollups`` (parameters: grain, bucket, keys, sums)."""
    mark = "%s" if dialect == "postgresql" else "?"
    columns = ("grain", "bucket", *KEYS, *SUMS)
    adds = ", ".join(f"{name} = call_rollups.{name} + excluded.{name}" for name in SUMS)
    return (f"INSERT INTO call_rollups ({', '.join(columns)}) VALUES ({', '.join(mark for _ in columns)})"
            f" ON CONFLICT (grain, bucket, {', '.join(KEYS)}) DO UPDATE SET {adds}")  # fmt: skip


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


def _sum_exprs() -> list[str]:
    latency = [
        f"SUM(CASE WHEN duration_s <= {bound} THEN 1 ELSE 0 END)" if index == 0 else
        f"SUM(CASE WHEN duration_s > {LATENCY_BOUNDS_S[index - 1]} AND duration_s <= {bound} THEN 1 ELSE 0 END)"
        for index, bound in enumerate(LATENCY_BOUNDS_S)
    ]  # fmt: skip
    latency.append(f"SUM(CASE WHEN duration_s > {LATENCY_BOUNDS_S[-1]} THEN 1 ELSE 0 END)")
    return [
        "COUNT(*)", "SUM(CASE WHEN attempt > 1 OR try_number > 1 THEN 1 ELSE 0 END)", "SUM(COALESCE(cost_usd, 0))",
        "SUM(CASE WHEN cost_basis = 'unpriced' THEN 1 ELSE 0 END)",
        "SUM(CASE WHEN cost_basis = 'estimated' THEN COALESCE(cost_usd, 0) ELSE 0 END)",
        *(f"SUM({name})" for name in _TOKENS), "SUM(duration_s)", "SUM(COALESCE(saved_usd, 0))", *latency,
    ]  # fmt: skip


def backfill_sql(dialect: Dialect, grains: tuple[str, ...] = ("hour", "day")) -> tuple[str, ...]:
    """Rollups of the rows recorded before the rollups existed (a migration, once; later rows add themselves): the
    ``grains`` from ``call_attempts``, then the run totals. (``day_summary`` is built from the day rows by
    :func:`summary_backfill_sql`.)"""
    statements = [
        f"INSERT INTO call_rollups (grain, bucket, {', '.join(KEYS)}, {', '.join(SUMS)})"
        f" SELECT '{grain}', {_bucket_expr(dialect, grain)}, {_key_exprs(grain)}, {', '.join(_sum_exprs())}"
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


def summary_backfill_sql() -> str:
    """The ``day_summary`` rollups from the ``day`` rollups (once, when the grain was added; both dialects)."""
    dropped = DROPPED["day_summary"]
    keys = ", ".join("''" if name in dropped else name for name in KEYS)
    kept = ", ".join(name for name in KEYS if name not in dropped)
    return (f"INSERT INTO call_rollups (grain, bucket, {', '.join(KEYS)}, {', '.join(SUMS)})"
            f" SELECT 'day_summary', bucket, {keys}, {', '.join(f'SUM({name})' for name in SUMS)}"
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
