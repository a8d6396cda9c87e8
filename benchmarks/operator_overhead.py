"""Operator overhead: an ``AnthropicOperator`` call on the sync path vs a raw SDK call, side by side in one run.

Both talk to the same local fake provider (no model latency), so the difference is what the operator adds:
building the request, the response-cache lookup, the budget check, recording the attempt in the analytics
store and storing the response. A third path runs the same operator with the rollup writes switched off (the
attempt's ``INSERT`` only: no hourly/daily rollups, run totals or transcript), so the rollups' share shows.
The three paths are interleaved call by call, in a rotating order. After the timed calls the script checks that
every operator call was recorded in the store (none spooled) and that only the "on" path wrote run totals; it
removes its temp dir and, with ``--store postgres``, drops its database at the end. Run:
``python -m benchmarks.operator_overhead [--calls 500] [--store sqlite|postgres]`` (the operator logs each call
on stdout; the table comes last, e.g. ``| tail -n 12``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks._support import drop_postgres_database, fresh_postgres_database, percentile

PG_DATABASE = "supervisor_bench_overhead"
WARMUP = 20


def _postgres_connection(name: str) -> str:
    fresh_postgres_database(name)
    return json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": name})


@contextmanager
def rollups_off() -> Iterator[None]:
    """Record attempts without their rollups, run totals and transcripts, as the store did before the plugin.

    This switch exists only in this benchmark: the library has no way to turn the rollups off (the views read
    nothing else). ``Store.insert_attempts`` looks both functions up on the module at each call, so replacing
    them there removes the rollup work from both of its paths.
    """
    from supervisor_lib.store import writes
    from supervisor_lib.store.schema import CALL_ATTEMPT_COLUMNS

    def no_rollups(row: Mapping[str, Any], transcript: Mapping[str, Any] | None, dialect: str) -> list[Any]:
        return []  # SQLite (and several rows at once): nothing after the attempt's own INSERT

    def attempt_only(row: Mapping[str, Any], transcript: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
        # PostgreSQL, one row: the attempt's INSERT alone, still answering how many rows were new (0 or 1)
        marks = ", ".join("%s" for _ in CALL_ATTEMPT_COLUMNS)
        sql = (f"WITH ins AS (INSERT INTO call_attempts ({', '.join(CALL_ATTEMPT_COLUMNS)}) VALUES ({marks})"
               " ON CONFLICT (call_id) DO NOTHING RETURNING 1) SELECT count(*) FROM ins")  # fmt: skip
        return sql, [row[column] for column in CALL_ATTEMPT_COLUMNS]

    saved = writes.rollup_statements, writes.insert_one_postgresql
    writes.rollup_statements, writes.insert_one_postgresql = no_rollups, attempt_only  # type: ignore[assignment]
    try:
        yield
    finally:
        writes.rollup_statements, writes.insert_one_postgresql = saved


def _recorded() -> dict[str, tuple[int, int]]:
    """Per operator path: (attempts in ``call_attempts``, runs with totals in ``run_rollups``). Every call must be
    in the store (a spooled row would make the path look cheaper), and only "on" may have written run totals."""
    from supervisor_lib.store.db import get_store

    def count(table: str, name: str) -> int:
        sql = f"SELECT COUNT(*) FROM {table} WHERE dag_id = 'bench' AND run_id LIKE ?"
        return int(get_store().run(lambda cur: cur.execute(sql, (f"run-{name}-%",)).fetchone()[0]))

    return {name: (count("call_attempts", name), count("run_rollups", name)) for name in ("on", "off")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="supervisor-bench-"))
    try:
        _run(args, work)
    finally:
        from supervisor_lib.store.db import get_store

        get_store().close()
        if args.store == "postgres":
            drop_postgres_database(PG_DATABASE)
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> None:
    os.environ.setdefault("AIRFLOW_HOME", str(work))
    os.environ["SUPERVISOR_SPOOL_DIR"] = str(work / "spool")
    os.environ["AIRFLOW_CONN_SUPERVISOR_ANALYTICS"] = (
        _postgres_connection(PG_DATABASE)
        if args.store == "postgres"
        else json.dumps({"conn_type": "sqlite", "host": str(work / "analytics.db")})
    )

    import anthropic

    from supervisor_lib import AnthropicOperator
    from supervisor_lib.testing import FakeProviderServer

    with FakeProviderServer(default_text="ok") as server:
        os.environ["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
            {"conn_type": "anthropic", "host": server.anthropic_base_url, "password": "bench-key-not-secret"}
        )
        raw_client = anthropic.Anthropic(api_key="k", base_url=server.anthropic_base_url, max_retries=0)
        op = AnthropicOperator(
            task_id="bench", model="claude-haiku-4-5", prompt="hello", max_tokens=16, deferrable=False
        )

        def raw() -> None:
            raw_client.messages.create(
                model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hello"}]
            )

        def operator(run_id: str) -> None:  # a new run each call: a new call_id, so every attempt is recorded
            ti = SimpleNamespace(dag_id="bench", run_id=run_id, task_id="bench", map_index=-1, try_number=1)
            op.execute({"ti": ti})

        def operator_off(run_id: str) -> None:
            with rollups_off():
                operator(run_id)

        paths = {"raw": lambda i: raw(), "on": lambda i: operator(f"run-on-{i}"),
                 "off": lambda i: operator_off(f"run-off-{i}")}  # fmt: skip
        for i in range(WARMUP):  # warm every path: clients, store connection, schema, imports
            for path in paths.values():
                path(-1 - i)
        times: dict[str, list[float]] = {name: [] for name in paths}
        names = list(paths)
        for i in range(args.calls):  # interleaved so all paths see the same machine load; the order rotates
            for name in names[i % 3 :] + names[: i % 3]:
                started = time.perf_counter()
                paths[name](i)
                times[name].append(time.perf_counter() - started)
        recorded = _recorded()

    med = {name: statistics.median(samples) * 1000 for name, samples in times.items()}
    p99 = {name: percentile(samples, 0.99) * 1000 for name, samples in times.items()}
    print(f"calls per path: {args.calls}, analytics store: {args.store}")
    print(f"{'path':<40}{'median ms':>12}{'p99 ms':>12}")
    for label, name in (("raw anthropic SDK call", "raw"), ("AnthropicOperator.execute, rollups on", "on"),
                        ("AnthropicOperator.execute, rollups off", "off")):  # fmt: skip
        print(f"{label:<40}{med[name]:>12.3f}{p99[name]:>12.3f}")
    for label, name in (("overhead, rollups on (on - raw)", "on"), ("overhead, rollups off (off - raw)", "off")):
        print(f"{label:<40}{med[name] - med['raw']:>12.3f}{p99[name] - p99['raw']:>12.3f}")
    print(f"{'rollups cost (on - off)':<40}{med['on'] - med['off']:>12.3f}{p99['on'] - p99['off']:>12.3f}")
    expected = args.calls + WARMUP
    print(
        f"check: attempts recorded {recorded['on'][0]} (on) and {recorded['off'][0]} (off) of {expected} each; "
        f"run totals written for {recorded['on'][1]} rollups-on runs and {recorded['off'][1]} rollups-off runs"
    )
    if recorded != {"on": (expected, expected), "off": (expected, 0)}:
        raise SystemExit(f"check failed: expected {expected} attempts per path, run totals for the 'on' path only")
    overhead = med["on"] - med["raw"]
    print(f"goal: median overhead <= 2 ms (rollups on): {'met' if overhead <= 2.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
