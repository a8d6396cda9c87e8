"""Supervised coding tasks per hour: the LocalExecutor against Celery with two workers, side by side in one run.

Each configuration starts a real Airflow (PostgreSQL metadata DB) serving K copies of the shipped
``payments_bugfix`` spec (a sandboxed, reviewed bug fix in a git worktree, then a pull-request review of it), the
offline demo provider answering with the demo's script, and triggers the K runs at once::

    .venv/bin/python -m benchmarks.coding_throughput                 # K=8, local and celery-2 (~10 min)
    .venv/bin/python -m benchmarks.coding_throughput --runs 4 --configs local

Prints, per configuration: wall time from the first trigger to the last run's end, coding tasks done (two per
run) and tasks per hour, and the ratio Celery / Local. Needs PostgreSQL on 127.0.0.1:5432 (and Redis on
127.0.0.1:6379 for Celery).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from benchmarks._support import drop_postgres_database, fresh_postgres_database
from supervisor_lib.testing import FakeProviderServer
from supervisor_lib.testing.stack import AirflowStack

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "local": ("LocalExecutor", []),
    "celery-2": ("Celery, 2 workers", ["--executor", "celery", "--workers", "2"]),
}
REDIS_DB = 14


@dataclass
class Outcome:
    config: str
    runs: int
    wall_s: float
    tasks_done: int
    tasks_failed: int

    @property
    def per_hour(self) -> float:
        return self.tasks_done / self.wall_s * 3600


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="copies of payments_bugfix triggered at once")
    parser.add_argument("--configs", default="local,celery-2")
    args = parser.parse_args(argv)
    outcomes = [_measure(config, args.runs) for config in args.configs.split(",")]
    print(f"\nsupervised coding tasks per hour ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC), {args.runs} runs of "
          "payments_bugfix at once (bug fix + review each)")  # fmt: skip
    print(f"{'configuration':<22}{'wall s':>9}{'tasks done':>12}{'failed':>8}{'tasks/hour':>12}")
    for o in outcomes:
        print(f"{CONFIGS[o.config][0]:<22}{o.wall_s:>9.1f}{o.tasks_done:>12}{o.tasks_failed:>8}{o.per_hour:>12.0f}")
    if len(outcomes) == 2:
        print(f"ratio {CONFIGS[outcomes[1].config][0]} / {CONFIGS[outcomes[0].config][0]}: "
              f"{outcomes[1].per_hour / outcomes[0].per_hour:.2f}x")  # fmt: skip


def _specs(folder: Path, runs: int) -> list[str]:
    """K copies of payments_bugfix under their own DAG ids, and the loader DAG file; returns the DAG ids."""
    spec = yaml.safe_load((ROOT / "include" / "specs" / "payments_bugfix.yaml").read_text())
    spec["budget"] = {"per_run_usd": 2.0}  # one day's limit would stop the later copies: this measures throughput
    (folder / "specs").mkdir()
    dag_ids = [f"throughput_{i:02d}" for i in range(runs)]
    for dag_id in dag_ids:
        (folder / "specs" / f"{dag_id}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (folder / "dags").mkdir()
    # "Airflow DAGs" in the docstring: the DAG processor's safe mode skips files that name neither airflow nor dag
    loader = (
        f'"""Airflow DAGs from the copies."""\n\nfrom supervisor_lib import load_dags\n\n'
        f'load_dags(globals(), specs_dir="{folder / "specs"}")\n'
    )
    (folder / "dags" / "throughput.py").write_text(loader)
    return dag_ids


def _measure(config: str, runs: int) -> Outcome:
    label, launcher_args = CONFIGS[config]
    work = Path(tempfile.mkdtemp(prefix=f"supervisor-bench-coding-{config}-"))
    names = (f"supervisor_bench_coding_{config.replace('-', '_')}", f"supervisor_bench_coding_{config[:5]}_a")
    try:
        dag_ids = _specs(work, runs)
        metadata, analytics = (fresh_postgres_database(name) for name in names)
        if config.startswith("celery"):
            import redis

            redis.Redis("127.0.0.1", 6379, db=REDIS_DB).flushdb()
        with FakeProviderServer(strict=True, latency=0.05) as fake:
            fake.load_script(ROOT / "include" / "demo" / "fake_provider.yaml")
            env = _env(metadata, analytics, fake)
            print(f"{label}: starting Airflow ...", flush=True)
            with AirflowStack(work / "dags", home=work / "home", env=env, project_dir=ROOT,
                              launcher_args=launcher_args) as stack:  # fmt: skip
                for dag_id in dag_ids:
                    stack.wait_for_dag(dag_id)
                return _run_all(stack, config, dag_ids)
    finally:
        for name in names:
            drop_postgres_database(name)
        shutil.rmtree(work, ignore_errors=True)


def _env(metadata: str, analytics: str, fake: FakeProviderServer) -> dict[str, str]:
    database = analytics.rsplit("/", 1)[1]
    store = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": database}
    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "AIRFLOW_CONN_SUPERVISOR_ANALYTICS": json.dumps(store),
        "ANTHROPIC_API_KEY": "bench-key-not-secret",
        "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
        "OPENAI_API_KEY": "bench-key-not-secret",
        "OPENAI_BASE_URL": fake.openai_base_url,
        "SUPERVISOR_PROJECT_ROOT": str(ROOT),  # the specs' repo: include/repos/payments
    }


def _run_all(stack: AirflowStack, config: str, dag_ids: list[str]) -> Outcome:
    started = time.monotonic()
    run_ids = {dag_id: stack.trigger(dag_id) for dag_id in dag_ids}
    for dag_id, run_id in run_ids.items():
        stack.wait(dag_id, run_id, timeout_s=1800)
    wall = time.monotonic() - started
    states = [ti["state"] for dag_id, run_id in run_ids.items() for ti in stack.task_instances(dag_id, run_id).values()]
    done = sum(state == "success" for state in states)
    print(f"  {CONFIGS[config][0]}: {done} coding tasks in {wall:.1f} s", flush=True)
    return Outcome(config, len(dag_ids), wall, done, len(states) - done)


if __name__ == "__main__":
    main()
