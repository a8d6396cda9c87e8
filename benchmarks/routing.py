"""Routing decision overhead with a store of 1M recorded calls, with and without the indexes the router uses.

A decision (``Router.plan``) reads the health window of ``call_attempts`` (newest attempts first), the breaker rows
and the usage of the budgets that apply (here a per-run and a per-day limit), then applies the policy to the whole
catalogue. The store is filled with ``--rows`` attempts spread over 30 days (bulk: one transaction on SQLite,
``COPY`` on PostgreSQL), so the window holds what a steady ~23 calls a minute leave in it. "Without indexes" drops
every secondary index of ``call_attempts``. The reservation round trip (reserve + settle)
that precedes an actual call is timed too.

Run: ``python -m benchmarks.routing [--rows 1000000] [--store sqlite|postgres] [--decisions 2000]``.
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._support import drop_postgres_database, fresh_postgres_database
from supervisor_lib.execution.router import Router, RouteScope
from supervisor_lib.routing.budgets import BudgetDeclaration
from supervisor_lib.routing.catalog import load_catalog
from supervisor_lib.routing.policy import RouteRequest
from supervisor_lib.store import Store
from supervisor_lib.store.routing_state import Reservation, RoutingState
from supervisor_lib.store.schema import CALL_ATTEMPT_COLUMNS

#: every secondary index of call_attempts: SQLite even skip-scans (dag_id, started_at) for the window when DAGs are few
WINDOW_INDEXES = {
    "ix_call_attempts_health": "call_attempts (started_at, provider, model, status, error_type, duration_s)",
    "ix_call_attempts_time": "call_attempts (started_at)",
    "ix_call_attempts_model_time": "call_attempts (provider, model, started_at)",
    "ix_call_attempts_dag_time": "call_attempts (dag_id, started_at)",
    "ix_call_attempts_dag_run": "call_attempts (dag_id, run_id)",
}
NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
SPAN = timedelta(days=30)

PG_DATABASE = "supervisor_bench_routing"


def _rows(count: int, models: list[tuple[str, str]]) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(42)
    step = SPAN / count
    for n in range(count):
        provider, model = models[n % len(models)]
        failed = rng.random() < 0.03
        started = NOW - SPAN + step * n
        yield (
            f"bench-{n:08d}", f"dag_{n % 50}", f"run_{n // 200}", f"task_{n % 7}", -1, 1, 1, provider, model,
            "llm", started, round(rng.uniform(0.3, 8.0), 3), 1200, 300, 0, 0, 0 if failed else 0.004,
            "error" if failed else "success", "RetryableError" if failed else None, None, None, None, False,
            "failed" if failed else "answered", None, "none" if failed else "exact", None,
        )  # fmt: skip


def _fill_sqlite(path: str, rows: Iterator[tuple[Any, ...]]) -> None:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    marks = ", ".join("?" for _ in CALL_ATTEMPT_COLUMNS)
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO call_attempts ({', '.join(CALL_ATTEMPT_COLUMNS)}) VALUES ({marks})",
        (tuple(v.isoformat(timespec="microseconds") if isinstance(v, datetime) else v for v in row) for row in rows),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def _fill_postgres(dsn: str, rows: Iterator[tuple[Any, ...]]) -> None:
    import psycopg2

    conn = psycopg2.connect(dsn)
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buffer.seek(0)
    with conn, conn.cursor() as cur:
        cur.copy_expert(f"COPY call_attempts ({', '.join(CALL_ATTEMPT_COLUMNS)}) FROM STDIN", buffer)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("ANALYZE call_attempts")
    conn.close()


def _time(fn: Callable[[], object], times: int) -> tuple[float, float]:
    for _ in range(min(50, times)):  # warm: connection, caches, plans
        fn()
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    ordered = sorted(samples)
    return statistics.median(samples) * 1000, ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000


def _set_indexes(store: Store, present: bool) -> None:
    for name, target in WINDOW_INDEXES.items():
        sql = f"CREATE INDEX IF NOT EXISTS {name} ON {target}" if present else f"DROP INDEX IF EXISTS {name}"
        store.run(lambda cur, sql=sql: cur.execute(sql))  # type: ignore[misc]
    store.run(lambda cur: cur.execute("ANALYZE" if cur.dialect == "sqlite" else "ANALYZE call_attempts"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--decisions", type=int, default=2000)
    args = parser.parse_args(argv)

    catalog = load_catalog()
    models = sorted((m.provider, m.name) for m in catalog.models.values())
    work = Path(tempfile.mkdtemp(prefix="supervisor-bench-"))
    sqlite_url = f"sqlite:///{work / 'analytics.db'}"
    url = fresh_postgres_database(PG_DATABASE) if args.store == "postgres" else sqlite_url
    try:
        _measure(args, catalog, models, url)
    finally:  # nothing is left behind: the ~1 GB SQLite file, the database
        shutil.rmtree(work, ignore_errors=True)
        if args.store == "postgres":
            drop_postgres_database(PG_DATABASE)


def _measure(args: argparse.Namespace, catalog: Any, models: list[tuple[str, str]], url: str) -> None:
    store = Store.from_url(url, name="bench")
    store.migrate()
    started = time.perf_counter()
    if args.store == "postgres":
        _fill_postgres(url, _rows(args.rows, models))
    else:
        _fill_sqlite(url.removeprefix("sqlite:///"), _rows(args.rows, models))
    filled = time.perf_counter() - started

    state = RoutingState(store)
    router = Router(state, catalog, clock=lambda: NOW)
    scope = RouteScope("dag_1", "run_bench", "fix", task_type="bug_fix",
                       budget=BudgetDeclaration(per_run_usd=1000.0, per_day_usd=10_000.0))  # fmt: skip
    request = RouteRequest(task_type="bug_fix", input_tokens=2000, max_tokens=1024)
    plan = router.plan(request, scope)
    window = len(state.samples(NOW - timedelta(seconds=catalog.settings.health.window_s), 100_000))

    def reserve_and_settle() -> None:
        held = state.reserve(plan.charges, 0.01, reservation_id=f"r{time.perf_counter_ns()}",
                             owner=("dag_1", "run_bench", "fix"), now=NOW, ttl_s=3600)  # fmt: skip
        assert isinstance(held, Reservation)
        state.settle(held, 0.0, NOW)

    results = {"with indexes": _time(lambda: router.plan(request, scope), args.decisions)}
    reserve = _time(reserve_and_settle, args.decisions)
    _set_indexes(store, present=False)
    results["without indexes"] = _time(lambda: router.plan(request, scope), max(20, args.decisions // 20))
    _set_indexes(store, present=True)

    print(f"store: {args.store}, {args.rows:,} recorded calls (filled in {filled:.1f}s), {window} in the health window")
    print(f"decision: {len(plan.candidates)} candidates, {len(plan.rejected)} rejected, {len(plan.charges)} budgets")
    print(f"{'routing decision (Router.plan)':<40}{'median ms':>12}{'p99 ms':>12}")
    for label, (median, p99) in results.items():
        print(f"{label:<40}{median:>12.3f}{p99:>12.3f}")
    print(f"{'reserve + settle (with a call)':<40}{reserve[0]:>12.3f}{reserve[1]:>12.3f}")
    met = results["with indexes"][0] <= 1.0
    print(f"goal: median decision <= 1 ms with {args.rows:,} calls: {'met' if met else 'NOT met'}")
    store.close()


if __name__ == "__main__":
    main()
