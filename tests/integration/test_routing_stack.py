"""The router's run-time Variables on a real Airflow: routed calls that start and end in the triggerer.

``dag.test()`` runs a trigger inline, in the test's own process, so it never shows whether the Airflow Variables
``supervisor_catalog`` and ``supervisor_budgets`` reach a trigger in a real triggerer, where a Variable read goes
through the Task SDK's triggerer comms and the process (with its caches) lives across runs. Here the Variables are
set through the REST API, as an operator would, while the stack runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml

from supervisor_lib.model_facts import provider_of
from supervisor_lib.store import Store
from supervisor_lib.testing import FakeProviderServer, Rule
from supervisor_lib.testing.stack import AirflowStack
from tests.conftest import DATABASES, ROOT
from tests.support.stack import provider_stack

pytestmark = pytest.mark.slow

DAGS = {
    "routing_stack.py": """
        from airflow.sdk import DAG
        from supervisor_lib.operators.llm import AnthropicOperator
        from supervisor_lib.operators.routed import RoutedOperator
        from supervisor_lib.providers.policy import AttemptPolicy

        ONCE = AttemptPolicy(max_attempts=1)
        ARGS = {"owner": "tests", "retries": 0}
        with DAG("routing_stack_catalog", schedule=None, tags=["e2e"], default_args=ARGS):
            RoutedOperator(task_id="ask", model="claude-haiku-4-5", prompt="STACK-CATALOG", max_tokens=200,
                           attempt_policy=ONCE, deferrable=True, pool="default_pool")  # starts in the triggerer
        with DAG("routing_stack_budget", schedule=None, tags=["e2e"], default_args=ARGS):
            RoutedOperator(task_id="spend", provider="anthropic", model="claude-haiku-4-5", prompt="STACK-BUDGET",
                           max_tokens=200, attempt_policy=ONCE, deferrable=True, pool="default_pool")
        with DAG("routing_stack_pool", schedule=None, tags=["e2e"], default_args=ARGS):
            # no pool given: each queues in its provider's pool, sized from the catalogue, and so starts on a
            # worker (Airflow admits a start-from-trigger task without checking its pool), then defers
            for i in range(6):
                AnthropicOperator(task_id=f"call_{i}", model="claude-haiku-4-5", prompt=f"STACK-POOL {i}",
                                  max_tokens=50, deferrable=True)
    """,
}
#: the catalogue override the stack starts with: the settings step sizes the anthropic pool from it
POOL_SLOTS = 2
POOL_LATENCY_S = 1.5
#: the budget scenario's limit: one call's worst case (about 21 input tokens and 200 output tokens at
#: claude-haiku-4-5's $1/$5 per million: $0.00102) fits, two do not
DAY_LIMIT_USD = 0.0015


@pytest.fixture(scope="module")
def stack(
    fake: FakeProviderServer, analytics_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowStack]:
    base = tmp_path_factory.mktemp("routing_stack")
    (base / "catalog.yaml").write_text(yaml.safe_dump({"providers": {"anthropic": {"pool_slots": POOL_SLOTS}}}))
    with provider_stack(
        "routing_stack", base, DAGS, databases=DATABASES, fake=fake, analytics_url=analytics_url,
        dag_ids=("routing_stack_catalog", "routing_stack_budget", "routing_stack_pool"), project_dir=ROOT,
        env={"SUPERVISOR_CATALOG": str(base / "catalog.yaml")},
    ) as running:  # fmt: skip
        yield running


@contextmanager
def variable(stack: AirflowStack, key: str, value: Any) -> Iterator[None]:
    """Set an Airflow Variable through the REST API for the block; delete it afterwards."""
    stack.api("POST", "/variables", {"key": key, "value": yaml.safe_dump(value)})
    try:
        yield
    finally:
        stack.api("DELETE", f"/variables/{key}")


def _run(stack: AirflowStack, dag_id: str) -> tuple[str, str]:
    run_id = stack.trigger(dag_id)
    return run_id, stack.wait(dag_id, run_id, timeout_s=120)


def _task_logs(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> dict[str, str]:
    """``{file name: text}`` of one task instance's logs: ``attempt=1.log`` from a worker (only when one ran it)
    and ``attempt=1.log.trigger.<triggerer job id>.log`` from the triggerer."""
    folder = stack.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    return {p.name: p.read_text(errors="replace") for p in sorted(folder.glob("*")) if p.is_file()}


def _routing(analytics_url: str) -> Any:
    """The routing state in the stack's analytics store (decisions, budget spend)."""
    from supervisor_lib.store.routing_state import RoutingState

    return RoutingState(Store.from_url(analytics_url))


def _attempts(analytics_url: str, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    return Store.from_url(analytics_url).attempts(dag_id=dag_id, run_id=run_id)


def test_the_catalogue_variable_reroutes_a_call_in_the_triggerer(
    stack: AirflowStack, fake: FakeProviderServer, analytics_url: str
) -> None:
    fake.reset()
    fake.add_rules([Rule(provider="openai", match="STACK-CATALOG", text="openai answers"),
                    Rule(provider="anthropic", match="STACK-CATALOG", text="anthropic answers")])  # fmt: skip
    base = yaml.safe_load((ROOT / "include" / "catalog.yaml").read_text())
    no_anthropic = {"models": {name: None for name in base["models"] if provider_of(name) == "anthropic"}}
    with variable(stack, "supervisor_catalog", no_anthropic):
        run_id, state = _run(stack, "routing_stack_catalog")
    logs = _task_logs(stack, "routing_stack_catalog", run_id, "ask")
    assert state == "success", logs
    result = stack.xcom("routing_stack_catalog", run_id, "ask")
    assert result["text"] == "openai answers" and result["routed"]["provider"] == "openai"
    assert fake.count(provider="anthropic") == 0 and fake.count(provider="openai") == 1

    # it ran in the triggerer only: started there (no worker log, no hostname), routed and called by the trigger
    assert [name for name in logs if ".trigger." in name] == list(logs), "no worker ran the task"
    assert stack.task_instances("routing_stack_catalog", run_id)["ask"]["hostname"] in ("", None)
    [attempt] = _attempts(analytics_url, "routing_stack_catalog", run_id)
    assert attempt["provider"] == "openai" and attempt["deferred"]
    [trigger_log] = logs.values()
    assert "is not in the catalogue (" in trigger_log and " + Variable supervisor_catalog)" in trigger_log
    [decision] = _routing(analytics_url).decisions("routing_stack_catalog", run_id)
    assert (decision["outcome"], decision["provider"]) == ("success", "openai")
    assert any("+ Variable supervisor_catalog" in note for note in decision["detail"]["notes"])

    # the triggerer lives on between runs: once the Variable is deleted, nothing cached may keep its catalogue
    run_id, state = _run(stack, "routing_stack_catalog")
    assert state == "success" and stack.xcom("routing_stack_catalog", run_id, "ask")["text"] == "anthropic answers"
    assert fake.count(provider="anthropic") == 1


def test_the_budgets_variable_refuses_the_call_that_would_cross_a_daily_limit(
    stack: AirflowStack, fake: FakeProviderServer, analytics_url: str
) -> None:
    fake.reset()
    fake.add_rule(Rule(provider="anthropic", match="STACK-BUDGET", text="ok",
                       usage={"input_tokens": 20, "output_tokens": 200}))  # fmt: skip
    day = time.strftime("%Y-%m-%d", time.gmtime())
    with variable(stack, "supervisor_budgets", {"dags": {"routing_stack_budget": {"per_day_usd": DAY_LIMIT_USD}}}):
        first, first_state = _run(stack, "routing_stack_budget")
        second, second_state = _run(stack, "routing_stack_budget")
    if time.strftime("%Y-%m-%d", time.gmtime()) != day:
        pytest.skip("the runs straddled midnight UTC: they spent from two daily windows")
    assert first_state == "success", _task_logs(stack, "routing_stack_budget", first, "spend")
    assert (second_state, fake.count()) == ("failed", 1), "the call that would cross the limit is never sent"

    # refused in the trigger; the task then fails on a worker with the trigger's error, without a retry
    logs = _task_logs(stack, "routing_stack_budget", second, "spend")
    limit = f"does not fit the per-day budget of DAG 'routing_stack_budget' (${DAY_LIMIT_USD}), window {day} UTC"
    assert limit in logs["attempt=1.log"] and "BudgetExceededError" in logs["attempt=1.log"], logs
    assert "no call was sent" in logs["attempt=1.log"]
    assert any(limit in text for name, text in logs.items() if ".trigger." in name)
    assert stack.task_instances("routing_stack_budget", second)["spend"]["try_number"] == 1
    [decision] = _routing(analytics_url).decisions("routing_stack_budget", second)
    assert (decision["outcome"], decision["provider"]) == ("budget_exceeded", None)

    spent = _routing(analytics_url).spent("dag:routing_stack_budget:day", day)
    recorded = sum(r["cost_usd"] or 0 for r in _attempts(analytics_url, "routing_stack_budget", first))
    assert 0 < spent <= DAY_LIMIT_USD and spent == pytest.approx(recorded)
    assert not _attempts(analytics_url, "routing_stack_budget", second)


def test_the_providers_pool_sized_from_the_catalogue_bounds_concurrent_calls(
    stack: AirflowStack, fake: FakeProviderServer, analytics_url: str
) -> None:
    fake.reset()
    fake.add_rule(Rule(provider="anthropic", match="STACK-POOL", text="ok", latency=POOL_LATENCY_S))
    pool = stack.api("GET", "/pools/anthropic")
    assert (pool["slots"], pool["include_deferred"]) == (POOL_SLOTS, True)  # the settings step read the catalogue

    run_id, state = _run(stack, "routing_stack_pool")
    assert state == "success"
    assert {ti["pool"] for ti in stack.task_instances("routing_stack_pool", run_id).values()} == {"anthropic"}
    # each deferred call holds its slot while the model answers: Airflow queues the rest instead of sending them
    starts = sorted(call.timestamp for call in fake.calls if call.provider == "anthropic")
    assert len(starts) == 6
    in_flight = max(sum(1 for other in starts if start <= other < start + POOL_LATENCY_S) for start in starts)
    assert in_flight == POOL_SLOTS
    assert starts[-1] - starts[0] >= (6 / POOL_SLOTS - 1) * POOL_LATENCY_S * 0.9
    # the calls still waited in the triggerer, not on a worker
    attempts = _attempts(analytics_url, "routing_stack_pool", run_id)
    assert len(attempts) == 6 and all(attempt["deferred"] for attempt in attempts)
