"""``python -m benchmarks``: list the benchmarks and how to run each (figures: docs/benchmarks.md)."""

from __future__ import annotations

BENCHMARKS = {
    "spec_parse": "DagBag parse of 200 specs x 20 tasks vs hand-written Python vs dag-factory (~3 min)",
    "operator_overhead": "AnthropicOperator.execute vs a raw SDK call, recording with rollups on/off (~15 s)",
    "deferrable": "200 calls with 2 s latency, deferrable vs sync on a real Airflow, then clear + re-run (~10 min)",
    "routing": "routing decision overhead with 1M recorded calls in the store",
    "anomaly": "call and series anomaly detection vs 3-sigma baselines, forecast backtests, 1M-call speed (~30 s)",
    "dashboard": "every view endpoint on rollups vs scans, 10M calls (PostgreSQL) / 1M (SQLite), page load (~15 min)",
    "coding": "SWE-bench-style supervised coding tasks (offline scripted answers; --live with API keys)",
    "deferrable_scale": "100-1,000 concurrent deferred calls on LocalExecutor (1 or 2 triggerers) and Celery",
    "coding_throughput": "supervised coding tasks per hour, LocalExecutor vs Celery with 2 workers (~8 min)",
    "reliability": "the reliability and security suite; writes docs/reliability.md (< 20 min)",
}


def main() -> None:
    print("Benchmarks (run one with: .venv/bin/python -m benchmarks.<name> [--help]):")
    for name, what in BENCHMARKS.items():
        print(f"  {name:<18} {what}")


if __name__ == "__main__":
    main()
