"""``RoutedOperator``: one model call whose provider and model the router chooses (``provider: auto``).

The operator is :class:`~supervisor_lib.operators.llm.BaseLLMOperator` with the routing options added; the decision
and the failover loop live in :mod:`supervisor_lib.routing` (see ``docs/routing.md``). At parse time it checks the
file catalogue (never an Airflow Variable) so an impossible task is an import error, and it takes the pool of the
model it would choose first; at run time the router decides with the catalogue's overrides, health and budgets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from supervisor_lib.execution.settings import RouteOptions
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
    provider's connection. Without a ``pool``, the task runs in the pool of the provider it would choose first
    (:func:`~supervisor_lib.routing.pools.default_pool`; a task no catalogued model can serve is an import error).
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
        route = RouteOptions(tuple(capabilities), tier, provider, kwargs.get("model"), dict(budget or {}) or None, team)
        super().__init__(budget=budget, team=team, route=route, **kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        result = super().execute(context)
        self.log.info("routed after %d failover(s)", len(result["routed"]["failovers"]))
        return result
