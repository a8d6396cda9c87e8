"""Deferrable calls at scale: 100, 200, 500 and 1,000 concurrent model calls of 2 s each, on a real Airflow, with
the LocalExecutor and one or two triggerers, and the CeleryExecutor with two workers and two triggerers.

One DAG per size, its tasks deferrable ``AnthropicOperator`` calls in ``default_pool`` (they start and end in the
triggerer); each configuration is one Airflow (``make run``'s launcher: scheduler, DAG processor, triggerer(s), API
server, Celery workers) on a fresh PostgreSQL metadata DB and analytics store, against the fake provider holding
each request ``--latency`` seconds. Per size: wall time from the trigger to the run's end, calls per second,
failed tasks, and when the requests reached the provider after the trigger (the triggerers' pick-up: p50, p95,
last), and how long the run took to end after the last answer. Goal: 1,000 concurrent 2-second calls in <= 60 s
with 0 failures.

Run: ``python -m benchmarks.deferrable_scale [--sizes 100,200,500,1000] [--configs local-1,local-2,celery-2]``;
``--split N`` spreads each size over N DAGs triggered at once, ``--mapped`` makes it one mapped task.
Everything it creates (databases, Airflow homes, Redis database 13) is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._support import drop_postgres_database, fresh_postgres_database, percentile
from supervisor_lib.testing import FakeProviderServer
from supervisor_lib.testing.stack import AirflowStack

DAG_TEMPLATE = """
from airflow.sdk import DAG
from supervisor_lib import AnthropicOperator

with DAG("{dag_id}", schedule=None, tags=["benchmark"], max_active_tasks={tasks},
         default_args={{"owner": "benchmarks", "retries": 0}}):
    for i in range({tasks}):
        AnthropicOperator(task_id=f"call_{{i:04d}}", model="claude-haiku-4-5", prompt=f"{dag_id} question {{i}}",
                          max_tokens=32, deferrable=True, pool="default_pool")
"""
MAPPED_TEMPLATE = """
from airflow.sdk import DAG
from supervisor_lib import AnthropicOperator

with DAG("{dag_id}", schedule=None, tags=["benchmark"], max_active_tasks={tasks},
         default_args={{"owner": "benchmarks", "retries": 0}}):
    AnthropicOperator.partial(task_id="call", model="claude-haiku-4-5", max_tokens=32, deferrable=True,
                              pool="default_pool").expand(prompt=[f"{dag_id} question {{i}}" for i in range({tasks})])
"""
CONFIGS = {
    "local-1": ("LocalExecutor, 1 triggerer", ["--triggerers", "1"]),
    "local-2": ("LocalExecutor, 2 triggerers", ["--triggerers", "2"]),
    "celery-2": ("Celery, 2 workers, 2 triggerers", ["--executor", "celery", "--workers", "2", "--triggerers", "2"]),
}
REDIS_DB = 13


@dataclass
class Outcome:
    config: str
    size: int
    wall_s: float
    failed: int
    pickup_s: tuple[float, float, float]  # p50, p95, last: provider request time after the trigger
    after_last_answer_s: float


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,200,500,1000")
    parser.add_argument("--configs", default="local-1,local-2,celery-2")
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--mapped", action="store_true", help="one mapped task of N items instead of N tasks")
    parser.add_argument("--split", type=int, default=1, help="spread each size over this many DAGs, run at once")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    outcomes: list[Outcome] = []
    for config in args.configs.split(","):
        template = MAPPED_TEMPLATE if args.mapped else DAG_TEMPLATE
        outcomes += _measure(config, sizes, args.latency, template, args.split)
        _print(outcomes, args.latency)
    _summary(outcomes)


def _dag_ids(size: int, split: int) -> list[str]:
    return [f"scale_{size}"] if split == 1 else [f"scale_{size}_p{part}" for part in range(split)]


def _measure(config: str, sizes: list[int], latency: float, template: str, split: int = 1) -> list[Outcome]:
    label, launcher_args = CONFIGS[config]
    work = Path(tempfile.mkdtemp(prefix=f"supervisor-bench-scale-{config}-"))
    names = (
        f"supervisor_bench_scale_{config.replace('-', '_')}",
        f"supervisor_bench_scale_{config.replace('-', '_')}_a",
    )
    found: list[Outcome] = []
    try:
        metadata = fresh_postgres_database(names[0])
        fresh_postgres_database(names[1])  # the analytics store
        dags = work / "dags"
        dags.mkdir()
        for size in sizes:
            for dag_id in _dag_ids(size, split):
                source = template.format(dag_id=dag_id, tasks=size // split)
                (dags / f"{dag_id}.py").write_text(textwrap.dedent(source))
        if config.startswith("celery"):
            import redis

            redis.Redis("127.0.0.1", 6379, db=REDIS_DB).flushdb()
        with FakeProviderServer(latency=latency, default_text="answer") as fake:
            env = {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
                "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
                "AIRFLOW_CONN_SUPERVISOR_ANALYTICS": json.dumps(
                    {
                        "conn_type": "postgres",
                        "host": "127.0.0.1",
                        "port": 5432,
                        "login": "postgres",
                        "schema": names[1],
                    }
                ),
                "ANTHROPIC_API_KEY": "bench-key-not-secret",
                "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
                "OPENAI_API_KEY": "bench-key-not-secret",
                "OPENAI_BASE_URL": fake.openai_base_url,
            }
            print(f"{label}: starting Airflow ...", flush=True)
            with AirflowStack(dags, home=work / "home", env=env, project_dir=Path.cwd(),
                              launcher_args=launcher_args) as stack:  # fmt: skip
                for size in sizes:
                    for dag_id in _dag_ids(size, split):
                        stack.wait_for_dag(dag_id)
                for size in sizes:
                    found.append(_one(stack, fake, config, size, split))
                    print(f"  {label}: {size} calls in {found[-1].wall_s:.1f} s", flush=True)
    finally:
        for name in names:
            drop_postgres_database(name)
        if config.startswith("celery"):
            import redis

            redis.Redis("127.0.0.1", 6379, db=REDIS_DB).flushdb()
        shutil.rmtree(work, ignore_errors=True)
    return found


def _one(stack: AirflowStack, fake: FakeProviderServer, config: str, size: int, split: int = 1) -> Outcome:
    dag_ids = _dag_ids(size, split)
    started_wall, started = time.time(), time.monotonic()
    run_ids = {dag_id: stack.trigger(dag_id) for dag_id in dag_ids}
    states = {dag_id: stack.wait(dag_id, run_id, timeout_s=1800) for dag_id, run_id in run_ids.items()}
    wall = time.monotonic() - started
    ended_wall = started_wall + wall
    tis = [ti for dag_id, run_id in run_ids.items() for ti in stack.task_instances(dag_id, run_id).values()]
    failed = sum(1 for ti in tis if ti["state"] != "success") + size - len(tis)
    assert failed or set(states.values()) == {"success"}, f"{states}: a run failed with every task successful"
    # the fake provider logs a request when it answers it, ``latency`` after it arrived
    markers = [f"{dag_id} question " for dag_id in dag_ids]
    answered = sorted(c.timestamp for c in fake.calls if any(m in str(c.body) for m in markers))
    offsets = [t - fake.latency - started_wall for t in answered] or [float("nan")]
    last_answer = max(answered, default=started_wall)
    return Outcome(config, size, wall, failed, (percentile(offsets, 0.5), percentile(offsets, 0.95), max(offsets)),
                   max(0.0, ended_wall - last_answer))  # fmt: skip


def _print(outcomes: list[Outcome], latency: float) -> None:
    print(f"\ndeferrable calls at scale, model latency {latency:.1f} s ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    print(f"{'configuration':<34}{'calls':>7}{'wall s':>9}{'calls/s':>9}{'failed':>8}{'pickup p50':>12}"
          f"{'p95':>7}{'last':>7}{'end after last answer':>23}")  # fmt: skip
    for o in outcomes:
        pickup = "".join(f"{value:>{width}.1f}" for value, width in zip(o.pickup_s, (12, 7, 7), strict=True))
        print(f"{CONFIGS[o.config][0]:<34}{o.size:>7}{o.wall_s:>9.1f}{o.size / o.wall_s:>9.1f}{o.failed:>8}"
              f"{pickup}{o.after_last_answer_s:>23.1f}")  # fmt: skip


def _summary(outcomes: list[Outcome]) -> None:
    thousand = [o for o in outcomes if o.size == 1000]
    for o in thousand:
        verdict = "met" if o.wall_s <= 60 and o.failed == 0 else "NOT met"
        print(f"- goal 1,000 concurrent calls <= 60 s with 0 failures, {CONFIGS[o.config][0]}: {o.wall_s:.1f} s, "
              f"{o.failed} failed: {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
