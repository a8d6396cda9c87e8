"""``RoutedOperator`` and the builder's ``provider: auto``: parse-time checks, pools, and a routed call through the
real SDKs against the fake provider (a fresh analytics store per test)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from supervisor_lib.exceptions import ProviderConfigError
from supervisor_lib.providers.policy import AttemptPolicy
from supervisor_lib.testing import AUTH, OVERLOADED, FakeProviderServer, Rule
from tests.support.connections import use_fake_provider


@pytest.fixture
def analytics(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A connection id naming a fresh SQLite store (the store cache is per connection id, hence a new id)."""
    conn_id = f"routing_{uuid.uuid4().hex[:8]}"
    conn = {"conn_type": "sqlite", "host": str(tmp_path / "analytics.db")}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


def routed(**kwargs: Any) -> Any:
    from supervisor_lib.operators.routed import RoutedOperator

    defaults: dict[str, Any] = {"task_id": "ask", "prompt": "Q: hello", "deferrable": False, "max_tokens": 64}
    return RoutedOperator(**{**defaults, **kwargs})


def context(run_id: str = "run-1") -> dict[str, Any]:
    return {"ti": SimpleNamespace(dag_id="dag", run_id=run_id, task_id="ask", map_index=-1, try_number=1)}


def test_the_pool_is_the_first_choices_unless_the_task_names_one() -> None:
    assert routed(task_kind="bug_fix").pool == "openai"  # gpt-5-mini: the cheapest standard code_edit model
    assert routed(model="claude-haiku-4-5").pool == "anthropic"
    assert routed(model="claude-haiku-4-5", pool="mine").pool == "mine"


def test_an_impossible_task_fails_at_parse_time() -> None:
    with pytest.raises(ValueError, match=r"task 'ask': no model in .* can serve it \(needs vision\)"):
        routed(capabilities=["vision"], max_tokens=5_000_000)


def test_deferrable_routed_tasks_carry_their_options_to_the_trigger() -> None:
    op = routed(deferrable=True, tier="economy", budget={"per_day_usd": 2}, team="data", pool="default_pool")
    assert op.start_from_trigger
    assert not routed(deferrable=True).start_from_trigger  # in its first choice's pool: starts on a worker
    route = op.start_trigger_args.trigger_kwargs["settings"]["route"]
    assert route == {"capabilities": [], "tier": "economy", "provider": None, "model": None,
                     "budget": {"per_day_usd": 2}, "team": "data", "pinned": False, "conn_id": None}  # fmt: skip


def test_a_failing_primary_fails_over_within_the_try(
    fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch, analytics: str
) -> None:
    use_fake_provider(monkeypatch, fake_provider)
    fake_provider.add_rule(Rule(provider="anthropic", fault=OVERLOADED))
    fake_provider.add_rule(Rule(provider="openai", text="openai answers"))
    op = routed(
        model="claude-haiku-4-5",
        analytics_conn_id=analytics,
        attempt_policy=AttemptPolicy(max_attempts=2, base_delay_s=0.01),
    )
    result = op.execute(context())
    assert result["text"] == "openai answers" and result["provider"] == "openai"
    assert result["routed"]["provider"] == "openai" and result["routed"]["model"] == "gpt-5-nano"
    [failover] = result["routed"]["failovers"]
    assert failover["model"] == "claude-haiku-4-5" and "HTTP 529" in failover["reason"]
    assert fake_provider.count(provider="anthropic") == 2 and "spent_usd" not in result


def test_a_fatal_error_does_not_fail_over(
    fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch, analytics: str
) -> None:
    use_fake_provider(monkeypatch, fake_provider)
    fake_provider.add_rule(Rule(provider="anthropic", fault=AUTH))
    with pytest.raises(ProviderConfigError, match="HTTP 401"):
        routed(model="claude-haiku-4-5", analytics_conn_id=analytics).execute(context())
    assert fake_provider.count(provider="openai") == 0


def test_the_builder_routes_auto_tasks_only() -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    from supervisor_lib import build_dag
    from supervisor_lib.operators.llm import OpenAIOperator
    from supervisor_lib.operators.routed import RoutedOperator
    from supervisor_lib.spec import WorkflowSpec

    spec = WorkflowSpec(
        dag_id="routing_build",
        budget={"per_day_usd": 3, "team": "data"},
        tasks=[
            {"id": "auto", "type": "llm", "prompt": "p", "tier": "economy", "capabilities": ["vision"]},
            {"id": "pinned", "type": "llm", "prompt": "p", "provider": "openai"},
            {"id": "unknown_model", "type": "llm", "prompt": "p", "model": "gpt-9-experimental"},
            {"id": "mapped", "type": "llm", "prompt": "{{ item }}", "foreach": ["a", "b"], "model": "claude-haiku-4-5"},
        ],
    )
    dag = build_dag(spec)
    auto = dag.get_task("auto")
    assert isinstance(auto, RoutedOperator) and auto.pool == "openai"
    assert auto.call.route.budget == {"per_day_usd": 3, "team": "data", "per_provider_day_usd": {}}
    assert auto.call.route.capabilities == ("vision",) and auto.call.route.team == "data"
    assert type(dag.get_task("pinned")) is OpenAIOperator and type(dag.get_task("unknown_model")) is OpenAIOperator
    mapped = dag.get_task("mapped")
    assert isinstance(mapped, MappedOperator) and mapped.operator_class is RoutedOperator
    assert mapped.partial_kwargs["pool"] == "anthropic"
