"""The routing policy: capabilities, context, tier, health, budget, then cost; deterministic, with reasons."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from supervisor_lib.routing.budgets import BudgetDeclaration, BudgetScope, GlobalBudgets, Usage, charges_for, limits_for
from supervisor_lib.routing.catalog import Catalog, CatalogError
from supervisor_lib.routing.forecast import Pressure
from supervisor_lib.routing.health import (
    BreakerRecord,
    BreakerState,
    BreakerView,
    HealthThresholds,
    Sample,
    breaker_view,
)
from supervisor_lib.routing.policy import RouteRequest, decide, pinned_plan
from tests.unit.routing.conftest import CATALOG, T0, make_catalog


def healthy(provider: str, model: str) -> tuple[BreakerView, BreakerView]:
    return tuple(breaker_view(k, [], None, T0, HealthThresholds()) for k in (provider, f"{provider}/{model}"))  # type: ignore[return-value]


def failing(*keys: str, probe_taken: bool = False, now: datetime = T0):  # type: ignore[no-untyped-def]
    """A health lookup in which ``keys`` had three failures ending at ``now``."""
    failures = [Sample("x", "y", now - timedelta(seconds=i + 1), 1.0, False) for i in range(3)]
    record = BreakerRecord("k", probe_owner="w", probe_expires_at=now + timedelta(hours=1)) if probe_taken else None

    def lookup(provider: str, model: str) -> tuple[BreakerView, BreakerView]:
        def one(key: str) -> BreakerView:
            bad = key in keys
            return breaker_view(key, failures if bad else [], record if bad else None, now, HealthThresholds())

        return one(provider), one(f"{provider}/{model}")

    return lookup


def order(plan) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.model for c in plan.candidates]


def test_cheapest_model_of_the_requested_tier_first_then_higher_tiers(catalog: Catalog) -> None:
    plan = decide(catalog, RouteRequest(task_type="bug_fix", input_tokens=1000, max_tokens=1000), healthy)
    assert order(plan) == ["gpt-5-mini", "claude-sonnet-4-6", "gpt-5"]
    assert plan.tier == "standard" and plan.required == {"code_edit", "structured_output"}
    rejected = {r.model: (r.rule, r.reason) for r in plan.rejected}
    assert rejected == {
        "claude-haiku-4-5": ("tier", "tier economy is below standard"),
        "gpt-4o-mini": ("capabilities", "lacks code_edit"),
    }
    assert plan.candidates[0].pool == "openai" and plan.candidates[0].conn_id == "openai_default"
    assert plan.candidates[0].estimate_usd == pytest.approx((1000 * 0.25 + 1000 * 2.0) / 1e6)


def test_long_context_never_goes_to_a_model_without_it(catalog: Catalog) -> None:
    plan = decide(catalog, RouteRequest(task_type="pr_review", tier="economy"), healthy)
    assert "gpt-4o-mini" not in order(plan)
    assert ("capabilities", "lacks long_context") in {(r.rule, r.reason) for r in plan.rejected}
    assert order(plan)[0] == "claude-haiku-4-5"


def test_extra_capabilities_context_window_and_provider(catalog: Catalog) -> None:
    assert order(decide(catalog, RouteRequest(capabilities=frozenset({"vision"})), healthy)) == ["gpt-5"]
    big = decide(catalog, RouteRequest(input_tokens=250_000, tier="economy"), healthy)
    assert "claude-haiku-4-5" not in order(big) and any(r.rule == "context" for r in big.rejected)
    only = decide(catalog, RouteRequest(task_type="bug_fix", provider="anthropic"), healthy)
    assert order(only) == ["claude-sonnet-4-6"]


def test_a_pinned_model_goes_first_and_sets_the_tier(catalog: Catalog) -> None:
    plan = decide(catalog, RouteRequest(model="claude-haiku-4-5"), healthy)
    assert order(plan)[:2] == ["claude-haiku-4-5", "gpt-4o-mini"] and plan.tier == "economy"
    unknown = decide(catalog, RouteRequest(model="gpt-9"), healthy)
    assert "not in the catalogue" in unknown.notes[0] and order(unknown)[0] == "gpt-5-mini"


def test_an_open_breaker_rejects_with_its_reason_and_when_it_half_opens(catalog: Catalog) -> None:
    plan = decide(catalog, RouteRequest(task_type="bug_fix"), failing("openai"))
    assert order(plan) == ["claude-sonnet-4-6"]
    rejection = next(r for r in plan.rejected if r.model == "gpt-5-mini")
    assert rejection.rule == "health" and "breaker openai: open until" in rejection.reason
    assert rejection.retry_at == T0 + timedelta(seconds=60)  # the last failure ended at T0


def test_half_open_lets_the_probe_through_in_its_usual_place(catalog: Catalog) -> None:
    later = T0 + timedelta(seconds=120)
    plan = decide(catalog, RouteRequest(task_type="bug_fix"), failing("openai/gpt-5-mini", now=T0))
    assert "gpt-5-mini" not in order(plan)
    probing = decide(catalog, RouteRequest(task_type="bug_fix"), partial(_at, later))
    assert probing.candidates[0].model == "gpt-5-mini"
    assert probing.candidates[0].health is BreakerState.HALF_OPEN
    assert probing.candidates[0].probe_keys == ("openai/gpt-5-mini",)
    taken = decide(catalog, RouteRequest(task_type="bug_fix"), failing("openai/gpt-5-mini", probe_taken=True))
    assert "gpt-5-mini" not in order(taken)


def _at(now: datetime, provider: str, model: str) -> tuple[BreakerView, BreakerView]:
    failures = [Sample(provider, model, T0 - timedelta(seconds=i + 1), 1.0, False) for i in range(3)]
    model_key = f"{provider}/{model}"
    bad = model_key == "openai/gpt-5-mini"
    return (
        breaker_view(provider, [], None, now, HealthThresholds()),
        breaker_view(model_key, failures if bad else [], None, now, HealthThresholds()),
    )


def test_degraded_ranks_after_healthy_even_when_cheaper(catalog: Catalog) -> None:
    mixed = [Sample("openai", "gpt-5-mini", T0 - timedelta(seconds=i), 1.0, i % 3 != 0) for i in range(12)]

    def lookup(provider: str, model: str) -> tuple[BreakerView, BreakerView]:
        samples = mixed if model == "gpt-5-mini" else []
        key = f"{provider}/{model}"
        return healthy(provider, model)[0], breaker_view(key, samples, None, T0, HealthThresholds())

    plan = decide(catalog, RouteRequest(task_type="bug_fix"), lookup)
    assert order(plan) == ["claude-sonnet-4-6", "gpt-5", "gpt-5-mini"]
    assert plan.candidates[-1].health is BreakerState.DEGRADED


def test_a_model_whose_worst_case_does_not_fit_a_budget_is_rejected(catalog: Catalog) -> None:
    scope = BudgetScope("d", "r")
    charges = charges_for(limits_for(scope, BudgetDeclaration(per_run_usd=0.01), GlobalBudgets()), scope, T0)
    usage = {("run:d:run", "r"): Usage(spent_usd=0.006)}
    request = RouteRequest(task_type="bug_fix", input_tokens=1000, max_tokens=1000)
    plan = decide(catalog, request, healthy, charges, usage)
    assert order(plan) == ["gpt-5-mini"]  # $0.00225 fits the $0.004 left; sonnet's $0.018 does not
    sonnet = next(r for r in plan.rejected if r.model == "claude-sonnet-4-6")
    assert (
        sonnet.rule == "budget"
        and "per-run budget of DAG 'd' ($0.01), run 'r': spent $0.006 so far, $0.00 reserved" in sonnet.reason
    )


def test_budget_pressure_allows_one_tier_lower_then_anything_cheapest_first(catalog: Catalog) -> None:
    request = RouteRequest(task_type="llm", tier="premium", model="gpt-5")
    assert order(decide(catalog, request, healthy)) == ["gpt-5"]
    cheaper = decide(catalog, request, healthy, pressure=Pressure.PREFER_CHEAPER)
    assert order(cheaper) == ["gpt-5-mini", "gpt-5", "claude-sonnet-4-6"]  # cost alone: the pin no longer wins
    assert "(budget pressure: one tier lower allowed, cheapest first)" in cheaper.explain().splitlines()[0]
    cheapest = decide(catalog, request, healthy, pressure=Pressure.CHEAPEST)
    assert order(cheapest) == ["gpt-4o-mini", "gpt-5-mini", "claude-haiku-4-5", "gpt-5", "claude-sonnet-4-6"]


def test_the_decision_does_not_depend_on_catalogue_order() -> None:
    models = list(CATALOG["models"].items())
    random.Random(7).shuffle(models)
    shuffled = make_catalog(models=dict(models))
    request = RouteRequest(task_type="llm", tier="economy")
    assert order(decide(shuffled, request, healthy)) == order(decide(make_catalog(), request, healthy))


def test_no_candidate_is_a_plan_with_reasons_and_an_unknown_tier_is_an_error(catalog: Catalog) -> None:
    plan = decide(catalog, RouteRequest(capabilities=frozenset({"teleport"})), healthy)
    assert plan.chosen is None and all("lacks teleport" in r.reason for r in plan.rejected)
    with pytest.raises(CatalogError, match="unknown tier 'gold'"):
        decide(catalog, RouteRequest(tier="gold"), healthy)


def test_explain_lists_candidates_and_rejections(catalog: Catalog) -> None:
    text = decide(catalog, RouteRequest(task_type="bug_fix"), healthy).explain()
    assert text.splitlines()[0] == "route for 'bug_fix': needs code_edit, structured_output; tier >= standard"
    assert "  1. openai/gpt-5-mini: standard tier, healthy, worst case $" in text and "<- chosen" in text
    assert "  rejected openai/gpt-4o-mini: [capabilities] lacks code_edit" in text


def test_a_model_without_a_price_is_never_routed_to() -> None:
    models = {**CATALOG["models"], "gpt-9-preview": {"provider": "openai", "tier": "standard", "context_window": 9,
                                                     "capabilities": []}}  # fmt: skip
    plan = decide(make_catalog(models=models), RouteRequest(max_tokens=1), healthy)
    assert ("gpt-9-preview", "price") in {(r.model, r.rule) for r in plan.rejected}


def test_now_is_timezone_aware() -> None:
    assert T0.tzinfo is UTC


def test_a_pinned_request_is_its_own_model_checked_against_the_budgets_only(catalog: Catalog) -> None:
    scope = BudgetScope("d", "r")
    charges = charges_for(limits_for(scope, BudgetDeclaration(per_run_usd=0.01), GlobalBudgets()), scope, T0)
    # gpt-4o is not in the catalogue: that does not matter, the task chose it; its price is in models.yaml
    request = RouteRequest(provider="openai", model="gpt-4o", input_tokens=1000, max_tokens=500, pinned=True)
    plan = pinned_plan(catalog, request, charges, {})
    [only] = plan.candidates
    assert (only.provider, only.model, only.probe_keys) == ("openai", "gpt-4o", ())
    assert only.estimate_usd == pytest.approx((1000 * 2.5 + 500 * 10.0) / 1e6)
    assert plan.explain().startswith("budget check for openai/gpt-4o (named by the task, not routed)")

    spent = {("run:d:run", "r"): Usage(spent_usd=0.0099)}
    refused = pinned_plan(catalog, request, charges, spent)
    assert refused.candidates == () and refused.rejected[0].rule == "budget"
    assert "per-run budget of DAG 'd' ($0.01), run 'r': spent $0.0099 so far" in refused.rejected[0].reason

    unknown = pinned_plan(catalog, RouteRequest(provider="openai", model="my-own-model", pinned=True), charges, {})
    assert unknown.candidates == () and unknown.rejected[0].rule == "price"
