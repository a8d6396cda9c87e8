"""The failover loop against a real store and a fake clock: failover, breakers, probes, budgets, fatal errors."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from supervisor_lib.exceptions import BudgetExceededError, NoRouteError, ProviderConfigError, RetryableError
from supervisor_lib.execution.failover import Attempt, arun_routed, failover_steps, run_routed
from supervisor_lib.execution.router import Router, RouteScope
from supervisor_lib.routing.budgets import BudgetDeclaration
from supervisor_lib.routing.policy import RouteRequest
from supervisor_lib.store.routing_state import RoutingState
from tests.unit.routing.conftest import FakeClock, RecordAttempt

REQUEST = RouteRequest(task_type="bug_fix", model="claude-sonnet-4-6", input_tokens=1000, max_tokens=1000)


class FakeProviders:
    """Answers calls like the call runner: each attempt recorded in call_attempts; ``down`` providers fail."""

    def __init__(self, record: RecordAttempt, clock: FakeClock) -> None:
        self.record, self.clock = record, clock
        self.down: set[str] = set()
        self.fatal: set[str] = set()
        self.calls: Counter[str] = Counter()

    def __call__(self, attempt: Attempt) -> dict[str, Any]:
        c = attempt.candidate
        for _ in range(1 if attempt.probe else 3):  # a probe is one HTTP attempt; otherwise three
            self.calls[c.provider] += 1
            self.clock.advance(1)
            if c.provider in self.fatal:
                self.record(c.provider, c.model, ok=False, error_type="ProviderConfigError")
                raise ProviderConfigError(f"{c.provider}: HTTP 401: the API key was rejected")
            if c.provider not in self.down:
                self.record(c.provider, c.model)
                return {"text": "ok", "provider": c.provider, "model": c.model, "cost_usd": 0.001}
            self.record(c.provider, c.model, ok=False)
        raise RetryableError(f"{c.provider} model {c.model!r}: HTTP 529 (overloaded_error); retrying may help")


@pytest.fixture
def providers(record_attempt: RecordAttempt, clock: FakeClock) -> FakeProviders:
    return FakeProviders(record_attempt, clock)


def route(router: Router, providers: FakeProviders, task: str = "fix", **scope: Any):  # type: ignore[no-untyped-def]
    where = RouteScope("nightly", scope.pop("run_id", "run-1"), task, task_type="bug_fix", **scope)
    plan = router.plan(REQUEST, where)
    return run_routed(failover_steps(router, plan, where), providers)


def test_a_failing_primary_fails_over_to_another_provider(router: Router, providers: FakeProviders) -> None:
    providers.down.add("anthropic")
    routed = route(router, providers)
    assert (routed.candidate.provider, routed.result["text"]) == ("openai", "ok")
    summary = routed.summary()
    assert summary["provider"] == "openai" and summary["model"] == "gpt-5-mini"
    assert summary["failovers"][0]["model"] == "claude-sonnet-4-6" and "529" in summary["failovers"][0]["reason"]
    assert providers.calls == {"anthropic": 3, "openai": 1}
    [decision] = RoutingState(router.state.store).decisions("nightly")  # type: ignore[union-attr]
    assert (decision["outcome"], decision["provider"], decision["failovers"]) == ("success", "openai", 1)


def test_open_breaker_sends_nothing_to_the_primary_until_a_probe_closes_it(
    router: Router, providers: FakeProviders, clock: FakeClock
) -> None:
    providers.down.add("anthropic")
    route(router, providers, "t1")  # three failures in a row: the anthropic breaker opens
    for task in ("t2", "t3"):
        clock.advance(10)
        assert route(router, providers, task).candidate.provider == "openai"
    assert providers.calls["anthropic"] == 3  # no traffic while open

    clock.advance(60)  # past the cool-down: half-open, one probe
    providers.down.clear()
    probed = route(router, providers, "t4")
    assert probed.candidate.name == "anthropic/claude-sonnet-4-6" and providers.calls["anthropic"] == 4
    assert router.state.breakers()["anthropic"].reset_at is not None  # type: ignore[union-attr]
    assert route(router, providers, "t5").candidate.provider == "anthropic"  # closed: the primary again


def test_a_failed_probe_opens_the_breaker_again(router: Router, providers: FakeProviders, clock: FakeClock) -> None:
    providers.down.add("anthropic")
    route(router, providers, "t1")
    clock.advance(70)
    assert route(router, providers, "t2").candidate.provider == "openai"  # the probe failed over
    assert providers.calls["anthropic"] == 4  # three attempts, then one probe attempt
    clock.advance(30)
    plan = router.plan(REQUEST, RouteScope("nightly", "run-1", "t3"))
    assert [c.provider for c in plan.candidates] == ["openai", "openai"]
    assert any("probe call failed" in r.reason for r in plan.rejected)


def test_a_fatal_error_does_not_fail_over(router: Router, providers: FakeProviders) -> None:
    providers.fatal.add("anthropic")
    with pytest.raises(ProviderConfigError, match="API key was rejected"):
        route(router, providers)
    assert providers.calls == {"anthropic": 1}
    [decision] = RoutingState(router.state.store).decisions("nightly")  # type: ignore[union-attr]
    assert decision["outcome"] == "failed" and decision["detail"]["tried"][0]["outcome"] == "fatal"


def test_every_provider_down_is_retryable(router: Router, providers: FakeProviders) -> None:
    providers.down.update({"anthropic", "openai"})
    with pytest.raises(RetryableError, match="no provider could take the call now"):
        route(router, providers)
    with pytest.raises(RetryableError) as raised:  # now every breaker is open: nothing is sent
        route(router, providers, "t2")
    assert raised.value.retry_after is not None and 0 < raised.value.retry_after <= 60
    assert sum(providers.calls.values()) == 9


def test_a_budget_that_fits_no_call_sends_nothing(router: Router, providers: FakeProviders) -> None:
    tight = BudgetDeclaration(per_run_usd=0.001)
    with pytest.raises(BudgetExceededError) as raised:
        route(router, providers, budget=tight)
    message = str(raised.value)
    assert (
        "task 'fix': no call was sent" in message and "per-run budget of DAG 'nightly' ($0.001), run 'run-1'" in message
    )
    assert providers.calls == {}


def test_spend_is_settled_and_a_later_call_is_refused(router: Router, providers: FakeProviders) -> None:
    # worst case of sonnet for this request is $0.018; the call costs $0.001; the limit fits one worst case
    budget = BudgetDeclaration(per_day_usd=0.02)
    assert route(router, providers, "t1", budget=budget).candidate.model == "claude-sonnet-4-6"
    assert router.state.spent("dag:nightly:day", "2026-11-05") == 0.001  # type: ignore[union-attr]
    forecast = router.forecast(RouteScope("nightly", "run-1", "t", budget=budget))
    assert forecast[0].spent_usd == 0.001 and forecast[0].projected_usd > 0.001


def test_no_candidate_is_a_clear_fatal_error(router: Router, providers: FakeProviders) -> None:
    scope = RouteScope("nightly", "run-1", "fix")
    plan = router.plan(RouteRequest(capabilities=frozenset({"vision"}), provider="anthropic"), scope)
    with pytest.raises(NoRouteError, match=r"no model in the catalogue .* can serve 'llm' \(needs vision\)"):
        run_routed(failover_steps(router, plan, scope), providers)


def test_the_async_executor_runs_the_same_loop(router: Router, providers: FakeProviders) -> None:
    providers.down.add("anthropic")
    scope = RouteScope("nightly", "run-1", "fix")

    async def call(attempt: Attempt) -> dict[str, Any]:
        return providers(attempt)

    routed = asyncio.run(arun_routed(failover_steps(router, router.plan(REQUEST, scope), scope), call))
    assert routed.candidate.provider == "openai" and len(routed.failovers) == 1


def test_an_unreadable_store_leaves_health_unknown_but_never_skips_budgets(
    router: Router, providers: FakeProviders
) -> None:
    router.state.store.close()  # type: ignore[union-attr]

    class Down:
        def run(self, *args: object, **kwargs: object) -> object:
            raise OSError("store down")

    router.state = RoutingState(Down())  # type: ignore[arg-type]
    scope = RouteScope("nightly", "run-1", "fix")
    plan = router.plan(REQUEST, scope)
    assert plan.chosen is not None and "health unknown" in plan.notes[-1]
    with pytest.raises(RetryableError, match="budgets cannot be checked"):
        router.plan(REQUEST, RouteScope("nightly", "run-1", "fix", budget=BudgetDeclaration(per_day_usd=1)))
