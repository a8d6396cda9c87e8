"""Which model answers a coding task's calls: the task's own provider, or the router's (``provider: auto``) — and,
either way, under the budgets that apply (``docs/routing.md``).

:class:`TaskModels` builds the author's and the reviewer's :class:`~supervisor_lib.coding.chat.Ask` for one task
try; the operators only hand it their settings. Nothing is imported before it is needed, so building a DAG of
coding operators stays cheap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor_lib.coding.chat import Ask, ModelChat, RoutedChat
    from supervisor_lib.providers.calls import CallScope
    from supervisor_lib.routing.calls import RouteOptions
    from supervisor_lib.routing.policy import Candidate
    from supervisor_lib.routing.router import Router

__all__ = ["TaskModels", "default_pool"]


@dataclass
class TaskModels:
    """The models of one coding task try.

    :param route: the routing options of a ``provider: auto`` task (``capabilities``, ``tier``, ``budget``,
        ``team``, ``provider``); ``None``: the task names its provider.
    :param budget: the DAG's budget block of a task that names its provider (a routed one carries it in ``route``).
    """

    task_kind: str
    scope: CallScope
    log: Any
    analytics_conn_id: str | None = None
    route: Mapping[str, Any] | None = None
    budget: Mapping[str, Any] | None = None
    team: str | None = None
    temperature: float | None = None
    budget_usd: float | None = None
    cache: bool = True
    #: the router's first candidate for the author (routed tasks, once :meth:`author` ran)
    planned: Candidate | None = field(default=None, init=False)
    _author: RoutedChat | None = field(default=None, init=False)

    # -- the two models --------------------------------------------------------------------------------------
    def author(self, provider: str, model: str | None, conn_id: str | None, max_tokens: int) -> Ask:
        """The task's own model: its provider's, or a routed one (every call planned, budgeted, failed over)."""
        if self.route is None:
            return self.chat(provider, model, conn_id, max_tokens)
        options = self.route_options(model=model)
        self.planned = self.plan(options, max_tokens)
        self._author = self.routed_chat(options, max_tokens)
        return self._author

    def reviewer(
        self, provider: str, model: str | None, conn_id: str | None, max_tokens: int, author_provider: str
    ) -> tuple[Ask, str]:
        """The second model and its label. ``auto``: the other provider than the author's (as planned, when the
        author is routed). A routed task's reviewer is routed too, among that provider's models when the catalogue
        has any."""
        if provider == "auto":
            author = self.planned.provider if self.planned is not None else author_provider
            provider = "openai" if author == "anthropic" else "anthropic"
        if self.planned is None:
            chat = self.chat(provider, model, conn_id, max_tokens)
            return chat, chat.label
        if not any(entry.provider == provider for entry in self.router.catalog.models.values()):
            self.log.warning("the catalogue has no %s model: the review is routed to any provider", provider)
            provider = "auto"
        return self.routed_chat(self.route_options(provider, model), max_tokens), f"routed reviewer ({provider})"

    def routed(self) -> dict[str, Any] | None:
        """``{provider, model, reasons, failovers, models}`` of a routed author's calls (``None``: not routed)."""
        return self._author.summary() if self._author is not None else None

    # -- building blocks -------------------------------------------------------------------------------------
    def chat(self, provider: str, model: str | None, conn_id: str | None, max_tokens: int) -> ModelChat | RoutedChat:
        """A model the task names, through the call runner and the analytics ledger; when a budget applies
        (``budget``, or a global one), each call first reserves its worst case against it."""
        from supervisor_lib.analytics.ledger import ledger_for
        from supervisor_lib.coding.chat import ModelChat, RoutedChat
        from supervisor_lib.routing.calls import RouteOptions, budget_router

        options = RouteOptions.pinned_to(provider, model, conn_id, self.budget, self.team)
        router = budget_router(options, self.scope, self.analytics_conn_id, self.log)
        store = ledger_for(self.analytics_conn_id)
        if router is not None and not model:  # the budget is checked against the model that will answer
            options = dataclasses.replace(options, model=_connection_model(provider, conn_id, self.scope))
        common: dict[str, Any] = {"scope": self.scope, "store": store, "max_tokens": max_tokens,
                                  "temperature": self.temperature, "budget_usd": self.budget_usd,
                                  "use_cache": self.cache}  # fmt: skip
        if router is not None:
            return RoutedChat(options=options, router=router, **common)
        return ModelChat(provider=provider, model=model, conn_id=conn_id, **common)

    def route_options(self, provider: str | None = None, model: str | None = None) -> RouteOptions:
        """The routing options, restricted to ``provider`` (default ``route``'s own, if any), preferring ``model``."""
        from supervisor_lib.routing.calls import RouteOptions

        route = self.route or {}
        return RouteOptions.from_dict({
            "capabilities": route.get("capabilities"), "tier": route.get("tier"),
            "budget": route.get("budget") or self.budget, "team": route.get("team") or self.team,
            "provider": provider or route.get("provider"), "model": model,
        })  # fmt: skip

    @cached_property
    def router(self) -> Router:
        """The run-time router (catalogue and budgets with their overrides, shared health), one per task try."""
        from supervisor_lib.routing.router import Router

        return Router.for_runtime(self.analytics_conn_id, logger=self.log)

    def routed_chat(self, options: RouteOptions, max_tokens: int) -> RoutedChat:
        """A routed model (a catalogued ``model`` is preferred, as for llm tasks)."""
        from supervisor_lib.analytics.ledger import ledger_for
        from supervisor_lib.coding.chat import RoutedChat

        if options.model not in self.router.catalog.models:  # a template or an uncatalogued model: no preference
            options = dataclasses.replace(options, model=None)
        return RoutedChat(options=options, router=self.router, scope=self.scope,
                          store=ledger_for(self.analytics_conn_id), max_tokens=max_tokens,
                          temperature=self.temperature, budget_usd=self.budget_usd, use_cache=self.cache)  # fmt: skip

    def plan(self, options: RouteOptions, max_tokens: int) -> Candidate:
        """Check before any work that the router can place this task now; log the plan; its first candidate.

        Each call is planned again (health and budgets change); this first plan fails the task early, before a
        workspace is made, and tells an ``auto`` reviewer which provider the author most likely uses. The prompt
        is not built yet, so it counts no input tokens: it never refuses what a call would take.

        :raises NoRouteError: no catalogued model can serve the task (``BudgetExceededError`` when only budgets
            stand in the way, ``RetryableError`` when only open breakers do — the router's own errors).
        """
        from supervisor_lib.routing.failover import failover_steps, run_routed
        from supervisor_lib.routing.policy import RouteRequest

        model = options.model if options.model in self.router.catalog.models else None
        request = RouteRequest(task_type=self.task_kind, capabilities=frozenset(options.capabilities), model=model,
                               tier=options.tier, input_tokens=0, max_tokens=max_tokens,
                               provider=options.provider)  # fmt: skip
        route_scope = options.route_scope(self.scope)
        plan = self.router.plan(request, route_scope)
        if plan.chosen is None:  # the failover loop of an empty plan logs it, records the decision and raises its error
            run_routed(failover_steps(self.router, plan, route_scope), _never_called)
            raise AssertionError("unreachable: a plan without candidates always fails")  # pragma: no cover
        self.log.info("%s: %s", route_scope.describe(), plan.explain())
        return plan.chosen


def default_pool(
    task_kind: str, provider: str, route: Mapping[str, Any] | None, model: str | None, max_tokens: int, task_id: str
) -> str | None:
    """The pool a coding task queues in when it names none: its provider's (catalogue ``providers.<name>.pool``);
    a routed task's, that of the model it would choose first (file catalogue, at parse time).

    :raises ValueError: a routed task no catalogued model can serve (an import error at parse time).
    """
    from supervisor_lib.routing.catalog import provider_pool

    if route is None:
        return provider_pool(provider)
    from supervisor_lib.operators.routed import first_choice_pool
    from supervisor_lib.routing.calls import RouteOptions

    options = RouteOptions(tuple(route.get("capabilities") or ()), route.get("tier"), route.get("provider"), model)
    call = {"task_kind": task_kind, "max_tokens": max_tokens, "output_schema": True, "task_id": task_id}
    return first_choice_pool(options, call)


def _connection_model(provider: str, conn_id: str | None, scope: CallScope) -> str:
    """The connection's ``default_model`` (a task that names no model)."""
    from supervisor_lib.providers.registry import hook_class_for

    model = hook_class_for(provider)(conn_id=conn_id).config.default_model
    if not model:
        raise ValueError(f"{scope.describe()}: no model given; set model= or the connection's default_model extra")
    return model


def _never_called(attempt: Any) -> dict[str, Any]:
    raise AssertionError(f"a plan without candidates called {attempt}")  # pragma: no cover
