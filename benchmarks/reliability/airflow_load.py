"""Load with faults on a real Airflow: one DAG of 200 model-calling tasks (scheduler, LocalExecutor workers,
triggerer, API server), 5% of the calls hit by a fault, under a per-day budget that runs out part-way.

The same plan as ``load_faults`` (half Anthropic, half OpenAI; half sync tasks on workers, half deferred in the
triggerer; one call in twenty faulted, a fifth of those fatally), but every call is an Airflow task with one retry.
The guarantees: no task is left stuck (every one ends ``success`` or ``failed`` before the deadline); a task failed
by a fatal fault or by the budget is not retried; the provider's request log and the recorded attempts match
exactly (rows that task processes spooled while the SQLite store was busy included); the budget is never overrun by
more than one call's worst case and is charged only for answers. This part starts Airflow, so it runs only at full
size (``python -m benchmarks.reliability``), not in ``make test``; the same guarantees at make-test size are
``load_faults``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

from benchmarks.reliability import Section, timed
from benchmarks.reliability._world import CANARY_KEY, World
from benchmarks.reliability.load_faults import ANSWER, FATAL, MODELS, Plan, plans, worst_cases
from supervisor_lib.testing import FakeProviderServer, Rule

DAG_ID = "reliability_load"
TASKS = 200
DEADLINE_S = 900.0
#: what one answer costs (the fake answers 64 output tokens), averaged over the two models the plan alternates
LATENCY_S = 0.5
DAG_SOURCE = """
from datetime import timedelta
from airflow.sdk import DAG
from supervisor_lib import AnthropicOperator, OpenAIOperator

PLAN = {plan}
with DAG("{dag_id}", schedule=None, tags=["reliability"], max_active_tasks=64,
         default_args={{"owner": "reliability", "retries": 1, "retry_delay": timedelta(seconds=1),
                        "pool": "default_pool"}}):
    for index, provider, deferred in PLAN:
        operator = AnthropicOperator if provider == "anthropic" else OpenAIOperator
        operator(task_id=f"call_{{index:04d}}", model={models}[provider], prompt=f"load call {{index:05d}}",
                 max_tokens=64, deferrable=deferred, budget={{"per_day_usd": {limit}}})
"""


def run(quick: bool) -> Section:
    """200 tasks on a real Airflow (quick: not run; see the module's docstring)."""
    section = Section(key="airflow_load", title="Load with faults on a real Airflow")
    if quick:
        section.summary = "Not run at make-test size: it starts Airflow (`load_faults` is its make-test form)."
        return section
    calls = plans(TASKS, seed=11)
    work = Path(tempfile.mkdtemp(prefix="supervisor-reliability-airflow-"))
    try:
        with timed(section), FakeProviderServer(default_text=ANSWER) as fake:
            world = World(fake=fake, store_conn="supervisor_analytics", store_path=work / "store.db", home=work)
            limit = 0.6 * TASKS * _mean_cost()
            _script(fake, calls)
            outcome, states, wall = _run(world, work, calls, limit)
            _check(section, world, calls, states, limit)
            _table(section, world, calls, states, outcome, wall, limit)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return section


def _mean_cost() -> float:
    from supervisor_lib.model_facts import load_prices
    from supervisor_lib.providers.types import Usage

    prices = load_prices()
    usage = Usage(input_tokens=6, output_tokens=64)  # "load call 00042" and the 64-token answer
    return sum(prices.cost_usd(model, usage) or 0.0 for model in MODELS.values()) / len(MODELS)


def _script(fake: FakeProviderServer, calls: list[Plan]) -> None:
    fake.latency = LATENCY_S
    for plan in calls:
        if plan.fault is not None:
            times = None if plan.fault in FATAL else 1
            fake.add_rule(Rule(match=plan.prompt, fault=plan.fault, times=times, retry_after=0.05))
    fake.add_rule(Rule(text=ANSWER, usage={"output_tokens": 64}))


def _run(world: World, work: Path, calls: list[Plan], limit: float) -> tuple[str, dict[str, str], float]:
    from supervisor_lib.testing.stack import AirflowStack

    dags = work / "dags"
    dags.mkdir()
    plan = [(p.index, p.provider, p.deferred) for p in calls]
    source = DAG_SOURCE.format(plan=plan, dag_id=DAG_ID, models=dict(MODELS), limit=limit)
    (dags / f"{DAG_ID}.py").write_text(textwrap.dedent(source))
    env = {
        "AIRFLOW_CONN_SUPERVISOR_ANALYTICS": json.dumps({"conn_type": "sqlite", "host": str(world.store_path)}),
        "ANTHROPIC_API_KEY": CANARY_KEY, "ANTHROPIC_BASE_URL": world.fake.anthropic_base_url,
        "OPENAI_API_KEY": CANARY_KEY, "OPENAI_BASE_URL": world.fake.openai_base_url,
        "SUPERVISOR_SPOOL_DIR": str(work / "spool"),
    }  # fmt: skip
    with AirflowStack(dags, home=work / "home", env=env, project_dir=Path.cwd()) as stack:
        stack.wait_for_dag(DAG_ID)
        started = time.monotonic()
        run_id = stack.trigger(DAG_ID)
        try:
            outcome = stack.wait(DAG_ID, run_id, timeout_s=DEADLINE_S)
        except TimeoutError:
            outcome = "stuck"
        wall = time.monotonic() - started
        states = {key: str(ti["state"]) for key, ti in stack.task_instances(DAG_ID, run_id).items()}
    return outcome, states, wall


def _check(section: Section, world: World, calls: list[Plan], states: dict[str, str], limit: float) -> None:
    from supervisor_lib.store.recorder import get_recorder

    get_recorder(world.store_conn).flush_spool()  # rows task processes spooled (their files are ours to drain now)
    rows = world.store().attempts(dag_id=DAG_ID)
    requests = world.requests()
    stuck = [task for task, state in states.items() if state not in ("success", "failed")]
    section.check(len(states) == len(calls) and not stuck, f"tasks not finished: {stuck[:10]} of {len(states)}")
    section.check(len(rows) == requests, f"{requests} requests reached the provider, {len(rows)} rows recorded")
    per_call = Counter(
        int(str(c.body).split("load call ")[1][:5]) for c in world.fake.calls if "load call" in str(c.body)
    )
    fatal = [per_call[p.index] for p in calls if p.fault in FATAL and per_call[p.index]]
    section.check(all(n == 1 for n in fatal), f"a fatal fault was retried: requests {fatal}")
    charged = world.charged(DAG_ID)
    spent = sum(float(r["cost_usd"] or 0) for r in rows if r["status"] == "success")
    section.check(charged <= limit + max(worst_cases()), f"budget overrun: {charged:.6f} USD, limit {limit:.6f}")
    section.check(abs(charged - spent) < 1e-9, f"budget charged {charged:.6f} USD for answers costing {spent:.6f}")


def _table(section: Section, world: World, calls: list[Plan], states: dict[str, str], outcome: str, wall: float,
           limit: float) -> None:  # fmt: skip
    rows = world.store().attempts(dag_id=DAG_ID)
    tally = Counter(states.values())
    errors = Counter(r["error_type"] for r in rows if r["status"] == "error")
    faults = sum(1 for p in calls if p.fault)
    section.headers = ["what", "count"]
    section.rows = [
        ["tasks (sync on workers / deferred in the triggerer)", f"{len(calls)} ({sum(not p.deferred for p in calls)}"
         f" / {sum(p.deferred for p in calls)})"],
        ["tasks with an injected fault", faults],
        *([f"tasks ended {state}", count] for state, count in sorted(tally.items())),
        ["run", f"{outcome} after {wall:.0f} s"],
        ["requests the provider received / rows recorded", f"{world.requests()} / {len(rows)}"],
        ["failed attempts by error", ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "none"],
        ["budget limit / charged (USD)", f"{limit:.6f} / {world.charged(DAG_ID):.6f}"],
    ]  # fmt: skip
    section.summary = (
        f"{len(calls)} tasks in {wall:.0f} s: {tally.get('success', 0)} succeeded and {tally.get('failed', 0)} failed "
        f"(fatal faults and the budget), none left running.\n\n" + __doc__.split("\n\n", 1)[1]
    )
