"""``RoutedOperator``: one model call whose provider and model the router chooses (``provider: auto``).

The operator is :class:`~supervisor_lib.operators.llm.BaseLLMOperator` with the routing options added; the decision
and the failover loop live in :mod:`supervisor_lib.routing` (see ``docs/routing.md``). At parse time it checks the
file catalogue (never an Airflow Variable) so an impossible task is an import error, and it takes the pool of the
model it would choose first; at run time the router decides with the catalogue's overrides, health and budgets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from supervisor_lib.operators.flow import skip_unless
from supervisor_lib.operators.llm import BaseLLMOperator
from supervisor_lib.providers.anthropic import AnthropicHook


class RoutedOperator(BaseLLMOperator):
    """Send one prompt to the model the router picks; fail over within the try; return the result via XCom.

    The result is :class:`BaseLLMOperator`'s plus ``routed``: ``{"provider", "model", "reasons", "failovers"}``
    (who answered, why, and every candidate tried or skipped before). The router's decision is in the task log.

    :param capabilities: needed on top of the task type's (``task_kind``; catalogue ``task_types``), e.g.
        ``["long_context"]``.
    :param tier: the lowest quality tier to accept; default the pinned ``model``'s, else the catalogue's.
    :param provider: choose among this provider's models only; ``None`` or ``"auto"`` for any.
    :param model: try this catalogued model first (a preference: breakers, budgets and failover still apply).
    :param budget: the DAG's spend limits across runs — ``per_run_usd``, ``per_day_usd``, ``per_month_usd``,
        ``per_provider_day_usd``, ``team``, ``per_team_month_usd`` — on top of the global ones.
    :param team: the team this spend counts for (default: the budget's ``team``).

    Every other parameter is :class:`BaseLLMOperator`'s. ``conn_id`` is not used: the catalogue names each
    provider's connection. Without a ``pool``, the task runs in the pool of the provider it would choose first.
    """

    #: only for BaseLLMOperator's defaults; every call uses its candidate's hook and connection
    hook_class = AnthropicHook
    ui_color = "#dfe9f7"

    def __init__(
        self,
        *,
        capabilities: Sequence[str] = (),
        tier: str | None = None,
        provider: str | None = None,
        budget: Mapping[str, Any] | None = None,
        team: str | None = None,
        **kwargs: Any,
    ) -> None:
        from supervisor_lib.routing.calls import RouteOptions

        route = RouteOptions(tuple(capabilities), tier, provider, kwargs.get("model"), dict(budget or {}) or None, team)
        first = first_choice_pool(route, kwargs)
        if kwargs.get("pool") is None:
            kwargs["pool"] = first
        self._route_options = route  # before super().__init__: trigger_kwargs() reads it from there
        super().__init__(budget=budget, team=team, **kwargs)

    def trigger_kwargs(self, *, end_from_trigger: bool) -> dict[str, Any]:
        """:class:`BaseLLMOperator`'s, plus the routing options (the trigger routes when they are present)."""
        return {**super().trigger_kwargs(end_from_trigger=end_from_trigger), "route": self._route_options.to_dict()}

    def execute(self, context: Any) -> dict[str, Any]:
        if self.deferrable:
            return super().execute(context)  # defers; the trigger routes (its kwargs carry the options)
        skip_unless(self.when)
        from supervisor_lib.analytics.ledger import ledger_for
        from supervisor_lib.providers.calls import result_summary
        from supervisor_lib.routing.calls import RoutedCall, routed_request
        from supervisor_lib.routing.router import Router

        request = routed_request(self, f"task {self.task_id!r}")
        call = RoutedCall(self._route_options, request, self.call_scope(context), ledger_for(self.analytics_conn_id),
                          self.attempt_policy, self.budget_usd, self.cache)  # fmt: skip
        result = call.run(Router.for_runtime(self.analytics_conn_id, logger=self.log))
        self.log.info("%s; routed after %d failover(s)", result_summary(result), len(result["routed"]["failovers"]))
        return result


def first_choice_pool(route: Any, kwargs: Mapping[str, Any]) -> str | None:
    """The pool of the model the router would choose first (file catalogue, no health or budgets).

    :param route: the :class:`~supervisor_lib.routing.calls.RouteOptions`.
    :param kwargs: the operator's other arguments (``task_kind``, ``max_tokens``, ``output_schema``, ``task_id``).

    :raises ValueError: no catalogued model can serve the task at all (an import error at parse time).
    """
    from supervisor_lib.routing.catalog import load_catalog
    from supervisor_lib.routing.policy import RouteRequest, static_plan

    catalog = load_catalog()
    model = route.model if route.model in catalog.models else None  # a template or an unknown model: no pin
    request = RouteRequest(
        task_type=str(kwargs.get("task_kind", "llm")), capabilities=frozenset(route.capabilities),
        provider=None if route.provider in (None, "auto") else route.provider, model=model, tier=route.tier,
        max_tokens=int(kwargs.get("max_tokens", 1024)), sends=2 if kwargs.get("output_schema") else 1,
    )  # fmt: skip
    plan = static_plan(catalog, request)
    if plan.chosen is None:
        reasons = "; ".join(f"{r.name}: {r.reason}" for r in plan.rejected) or "the catalogue lists no models"
        raise ValueError(f"RoutedOperator({kwargs.get('task_id')!r}): no model in {catalog.source} can serve it "
                         f"(needs {', '.join(sorted(plan.required)) or 'nothing special'}): {reasons}")  # fmt: skip
    return plan.chosen.pool
