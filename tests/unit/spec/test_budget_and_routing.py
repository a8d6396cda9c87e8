"""The spec's ``budget:`` block and the routed-task fields (``tier``, ``capabilities``), checked while parsing."""

from __future__ import annotations

import pytest

from supervisor_lib.routing.budgets import BudgetDeclaration
from supervisor_lib.spec import SpecError, WorkflowSpec, load_spec
from tests.unit.spec.conftest import FIXTURES


def _spec(**fields: object) -> dict[str, object]:
    return {"dag_id": "d", "tasks": [{"id": "a", "type": "code_analysis"}], **fields}


def test_the_budget_block_becomes_a_routing_declaration() -> None:
    spec = load_spec(FIXTURES / "valid" / "all_fields.yaml")
    assert spec.budget is not None
    declared = BudgetDeclaration.from_mapping(spec.budget.declaration(), "all_fields.yaml: budget")
    assert declared == BudgetDeclaration(per_run_usd=5, per_day_usd=20, per_month_usd=300,
                                         per_provider_day_usd={"anthropic": 15, "openai": 10}, team="release-team",
                                         per_team_month_usd=1000)  # fmt: skip
    assert spec.effective("fix").tier == "standard"  # from defaults
    assert spec.effective("audit").capabilities == ("long_context",)


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ({"per_day_usd": -1}, "[budget.per_day_usd] must be at least 0"),
        ({"per_provider_day_usd": {"auto": 1}}, "unknown [key] 'auto' (expected one of: anthropic, openai)"),
        ({"per_provider_day_usd": {"mistral": 1}}, "[budget.per_provider_day_usd.mistral.[key]] unknown [key]"),
        ({"per_week_usd": 1}, "[budget.per_week_usd]"),
    ],
)
def test_bad_budget_blocks_are_located(budget: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as raised:
        WorkflowSpec(**_spec(budget=budget))
    assert message in str(raised.value)


def test_routing_fields_do_not_apply_to_approvals() -> None:
    tasks = [{"id": "ok", "type": "human_approval", "tier": "premium", "capabilities": ["vision"]}]
    with pytest.raises(SpecError) as raised:
        WorkflowSpec(**{"dag_id": "d", "tasks": tasks})
    assert "[tasks[0].tier] 'tier' does not apply to human_approval tasks" in str(raised.value)
    assert "[tasks[0].capabilities] 'capabilities' does not apply" in str(raised.value)


def test_an_unknown_tier_is_located_with_a_suggestion() -> None:
    with pytest.raises(SpecError) as raised:
        WorkflowSpec(**_spec(tasks=[{"id": "a", "type": "code_analysis", "tier": "premum"}]))
    assert "[tasks[0].tier] unknown tier 'premum' (did you mean 'premium'?)" in str(raised.value)


def test_explicit_providers_and_uncatalogued_models_are_not_routed_so_not_checked() -> None:
    impossible = {"id": "a", "type": "llm", "prompt": "p", "max_tokens": 5_000_000}
    WorkflowSpec(**_spec(tasks=[{**impossible, "provider": "openai"}]))
    WorkflowSpec(**_spec(tasks=[{**impossible, "model": "gpt-9-experimental"}]))
    with pytest.raises(SpecError, match="no model in the catalogue serves"):
        WorkflowSpec(**_spec(tasks=[impossible]))
