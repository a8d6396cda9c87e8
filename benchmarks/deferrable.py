"""Deferrable concurrency and the response cache, on a real Airflow (LocalExecutor, parallelism 4).

One run, side by side: N model calls with a fixed model latency as N deferrable tasks (they start and end in the
triggerer) and as N sync tasks (each holds a worker slot while the model thinks); then every deferrable task is
cleared and re-run, and the new calls reaching the provider are counted (the response cache should make it 0).
Run: ``python -m benchmarks.deferrable [--tasks 200] [--latency 2.0]``. The tasks run in ``default_pool``, so
the deferrable ones start in the triggerer; in their provider's pool (the default) Airflow would bound them to its
slots, which is what that pool is for.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import textwrap
import time
from pathlib import Path

from supervisor_lib.testing import FakeProviderServer
from supervisor_lib.testing.stack import AirflowStack

DAG_TEMPLATE = """
from airflow.sdk import DAG
from supervisor_lib import AnthropicOperator

with DAG("{dag_id}", schedule=None, tags=["benchmark"], max_active_tasks={tasks},
         default_args={{"owner": "benchmarks", "retries": 0}}):
    for i in range({tasks}):
        AnthropicOperator(task_id=f"call_{{i:03d}}", model="claude-haiku-4-5", prompt=f"question {{i}}",
                          max_tokens=32, deferrable={deferrable}, pool="default_pool")
"""


def _timed_run(stack: AirflowStack, dag_id: str, run_id: str | None = None) -> tuple[float, str]:
    started = time.monotonic()
    if run_id is None:
        run_id = stack.trigger(dag_id)
    state = stack.wait(dag_id, run_id, timeout_s=3600)
    return time.monotonic() - started, state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--parallelism", type=int, default=4)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="supervisor-bench-defer-"))
    try:
        _measure(args, work)
    finally:  # nothing is left behind
        shutil.rmtree(work, ignore_errors=True)


def _measure(args: argparse.Namespace, work: Path) -> None:
    dags = work / "dags"
    dags.mkdir()
    for dag_id, deferrable in (("bench_deferrable", True), ("bench_sync", False)):
        source = DAG_TEMPLATE.format(dag_id=dag_id, tasks=args.tasks, deferrable=deferrable)
        (dags / f"{dag_id}.py").write_text(textwrap.dedent(source))
    with FakeProviderServer(latency=args.latency, default_text="answer") as fake:
        env = {
            "ANTHROPIC_API_KEY": "bench-key-not-secret",
            "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
            "OPENAI_API_KEY": "bench-key-not-secret",
            "OPENAI_BASE_URL": fake.openai_base_url,
            "AIRFLOW__CORE__PARALLELISM": str(args.parallelism),
        }
        with AirflowStack(dags, env=env, project_dir=Path.cwd()) as stack:
            for dag_id in ("bench_deferrable", "bench_sync"):
                stack.wait_for_dag(dag_id)
            deferred_s, deferred_state = _timed_run(stack, "bench_deferrable")
            run_id = stack.api("GET", "/dags/bench_deferrable/dagRuns")["dag_runs"][0]["dag_run_id"]
            calls_after_first = fake.count()
            sync_s, sync_state = _timed_run(stack, "bench_sync")
            calls_before_clear = fake.count()
            tasks = [f"call_{i:03d}" for i in range(args.tasks)]
            stack.clear("bench_deferrable", run_id, tasks)
            rerun_s, rerun_state = _timed_run(stack, "bench_deferrable", run_id)
            new_calls = fake.count() - calls_before_clear

    print(f"{args.tasks} calls, model latency {args.latency:.1f}s, LocalExecutor parallelism {args.parallelism}")
    print(f"{'mode':<34}{'wall s':>10}{'state':>10}")
    print(f"{'deferrable (start/end in triggerer)':<34}{deferred_s:>10.1f}{deferred_state:>10}")
    print(f"{'sync (worker slot held)':<34}{sync_s:>10.1f}{sync_state:>10}")
    print(f"speed-up deferrable vs sync: {sync_s / deferred_s:.1f}x (goal >= 10x, deferrable < 30 s)")
    print(
        f"provider calls: first deferrable run {calls_after_first}; after clearing all {args.tasks} tasks and "
        f"re-running ({rerun_s:.1f}s, {rerun_state}): {new_calls} new calls (goal 0)"
    )


if __name__ == "__main__":
    main()
