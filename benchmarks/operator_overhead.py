"""Operator overhead: an ``AnthropicOperator`` call on the sync path vs a raw SDK call, side by side in one run.

Both talk to the same local fake provider (no model latency), so the difference is what the operator adds:
building the request, the response-cache lookup, the budget check, recording the attempt in the analytics
store and storing the response. Run: ``python -m benchmarks.operator_overhead [--calls 500] [--store sqlite|postgres]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from benchmarks._support import fresh_postgres_database, percentile


def _postgres_connection(name: str) -> str:
    fresh_postgres_database(name)
    return json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": name})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="supervisor-bench-"))
    os.environ.setdefault("AIRFLOW_HOME", str(work))
    os.environ["AIRFLOW_CONN_SUPERVISOR_ANALYTICS"] = (
        _postgres_connection("supervisor_bench_overhead")
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

        def operator(i: int) -> None:
            ti = SimpleNamespace(dag_id="bench", run_id=f"run-{i}", task_id="bench", map_index=-1, try_number=1)
            op.execute({"ti": ti})

        for i in range(20):  # warm both paths: clients, store connection, schema, imports
            raw()
            operator(-1 - i)
        raw_times, op_times = [], []
        for i in range(args.calls):  # interleaved so both see the same machine load
            started = time.perf_counter()
            raw()
            raw_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            operator(i)
            op_times.append(time.perf_counter() - started)

    raw_med, op_med = statistics.median(raw_times) * 1000, statistics.median(op_times) * 1000
    raw_p99, op_p99 = percentile(raw_times, 0.99) * 1000, percentile(op_times, 0.99) * 1000
    print(f"calls per path: {args.calls}, analytics store: {args.store}")
    print(f"{'path':<28}{'median ms':>12}{'p99 ms':>12}")
    print(f"{'raw anthropic SDK call':<28}{raw_med:>12.3f}{raw_p99:>12.3f}")
    print(f"{'AnthropicOperator.execute':<28}{op_med:>12.3f}{op_p99:>12.3f}")
    print(f"{'overhead (operator - raw)':<28}{op_med - raw_med:>12.3f}{op_p99 - raw_p99:>12.3f}")
    print(f"goal: median overhead <= 2 ms: {'met' if op_med - raw_med <= 2.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
