"""Which model answers a coding task's calls: the task's own provider, or the router's (``provider: auto``) — and,
either way, under the budgets that apply (``docs/routing.md``).

:class:`TaskModels` builds the author's and the reviewer's :class:`~supervisor_lib.coding.chat.Chat` for one task
try, on one :class:`~supervisor_lib.execution.calls.CallExecutor` (which decides how each call runs); the
operators only hand it their settings. Nothing is imported before it is needed, so building a DAG of coding
operators stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor_lib.coding.chat import Chat
    from supervisor_lib.execution.calls import CallExecutor
    from supervisor_lib.execution.runner import CallScope
    from supervisor_lib.execution.settings import CallSettings, RouteOptions
    from supervisor_lib.routing.policy import Candidate

__all__ = ["TaskModels", "route_options", "task_pool"]


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
    _author: Chat | None = field(default=None, init=False)
    _executor: CallExecutor | None = field(default=None, init=False)

    # -- the two models --------------------------------------------------------------------------------------
    def author(self, provider: str, model: str | None, conn_id: str | None, max_tokens: int) -> Chat:
        """The task's own model: its provider's, or a routed one (every call planned, budgeted, failed over)."""
        if self.route is None:
            return self.chat(self.settings(provider, model, conn_id, max_tokens))
        settings = self.settings(provider, model, None, max_tokens, route_options(self.route, self, model=model))
        self.planned = self.plan(settings)
        self._author = self.chat(settings)
        return self._author

    def reviewer(
        self, provider: str, model: str | None, conn_id: str | None, max_tokens: int, author_provider: str
    ) -> tuple[Chat, str]:
        """The second model and its label. ``auto``: the other provider than the author's (as planned, when the
        author is routed). A routed task's reviewer is routed too, among that provider's models when the catalogue
        has any."""
        if provider == "auto":
            author = self.planned.provider if self.planned is not None else author_provider
            provider = "openai" if author == "anthropic" else "anthropic"
        if self.planned is None:
            chat = self.chat(self.settings(provider, model, conn_id, max_tokens))
            return chat, chat.label
        router = self.executor.router(self._author.settings) if self._author is not None else None
        if router is not None and not any(entry.provider == provider for entry in router.catalog.models.values()):
            self.log.warning("the catalogue has no %s model: the review is routed to any provider", provider)
            provider = "auto"
        options = route_options(self.route or {}, self, provider=provider, model=model)
        return self.chat(self.settings(provider, model, None, max_tokens, options)), f"routed reviewer ({provider})"

    def routed(self) -> dict[str, Any] | None:
        """``{provider, model, reasons, failovers, models}`` of a routed author's calls (``None``: not routed)."""
        return self._author.summary() if self._author is not None else None

    # -- building blocks -------------------------------------------------------------------------------------
    def settings(self, provider: str, model: str | None, conn_id: str | None, max_tokens: int,
                 route: RouteOptions | None = None) -> CallSettings:  # fmt: skip
        """One model's call settings (a routed one when ``route`` is given)."""
        from supervisor_lib.execution.settings import CallSettings

        return CallSettings(
            provider=provider if provider != "auto" else "anthropic", conn_id=conn_id, model=model,
            max_tokens=max_tokens, temperature=self.temperature, budget_usd=self.budget_usd, cache=self.cache,
            task_type=self.task_kind, analytics_conn_id=self.analytics_conn_id, budget=self.budget, team=self.team,
            route=route,
        )  # fmt: skip

    @property
    def executor(self) -> CallExecutor:
        """One executor per task try: the author and the reviewer share its router and its read of the budgets."""
        if self._executor is None:
            from supervisor_lib.execution.calls import CallExecutor
            from supervisor_lib.execution.settings import CallSettings

            base = CallSettings(provider="anthropic", analytics_conn_id=self.analytics_conn_id, budget=self.budget,
                                team=self.team, task_type=self.task_kind)  # fmt: skip
            self._executor = CallExecutor(base, self.scope, self.log)
        return self._executor

    def chat(self, settings: CallSettings) -> Chat:
        from supervisor_lib.coding.chat import Chat

        return Chat(self.executor, settings)

    def plan(self, settings: CallSettings) -> Candidate:
        """Check before any work that the router can place this task now; log the plan; its first candidate.

        Each call is planned again (health and budgets change); this first plan fails the task early, before a
        workspace is made, and tells an ``auto`` reviewer which provider the author most likely uses. The prompt
        is not built yet, so it counts no input tokens: it never refuses what a call would take.

        :raises NoRouteError: no catalogued model can serve the task (``BudgetExceededError`` when only budgets
            stand in the way, ``RetryableError`` when only open breakers do — the router's own errors).
        """
        from supervisor_lib.execution.failover import failover_steps, run_routed
        from supervisor_lib.routing.policy import RouteRequest

        router = self.executor.router(settings)
        assert router is not None and settings.route is not None  # a routed task always has a router
        options = settings.route
        model = options.model if options.model in router.catalog.models else None
        request = RouteRequest(task_type=self.task_kind, capabilities=frozenset(options.capabilities), model=model,
                               tier=options.tier, input_tokens=0, max_tokens=settings.max_tokens,
                               provider=options.provider)  # fmt: skip
        route_scope = options.route_scope(self.scope)
        plan = router.plan(request, route_scope)
        if plan.chosen is None:  # the failover loop of an empty plan logs it, records the decision and raises its error
            run_routed(failover_steps(router, plan, route_scope), _never_called)
            raise AssertionError("unreachable: a plan without candidates always fails")  # pragma: no cover
        self.log.info("%s: %s", route_scope.describe(), plan.explain())
        return plan.chosen


def route_options(route: Mapping[str, Any], models: TaskModels | None = None, *, provider: str | None = None,
                  model: str | None = None) -> RouteOptions:  # fmt: skip
    """A routed task's options (``capabilities``, ``tier``, ``budget``, ``team``, ``provider``), restricted to
    ``provider`` (default ``route``'s own), preferring ``model`` when the catalogue has it."""
    from supervisor_lib.execution.settings import RouteOptions

    budget = route.get("budget") or (models.budget if models else None)
    team = route.get("team") or (models.team if models else None)
    return RouteOptions(tuple(route.get("capabilities") or ()), route.get("tier"), provider or route.get("provider"),
                        model, budget, team)  # fmt: skip


def task_pool(task_kind: str, provider: str, route: Mapping[str, Any] | None, model: str | None, max_tokens: int,
              task_id: str) -> str | None:  # fmt: skip
    """The pool a coding task queues in when it names none: that of its author's calls
    (:meth:`~supervisor_lib.execution.settings.CallSettings.pool`).

    :raises ValueError: a routed task no catalogued model can serve (an import error at parse time).
    """
    from supervisor_lib.execution.settings import CallSettings

    options = route_options(route, model=model) if route is not None else None
    settings = CallSettings(provider=provider, max_tokens=max_tokens, output_schema={}, task_type=task_kind,
                            route=options)  # fmt: skip
    return settings.pool(task_id)


def _never_called(attempt: Any) -> dict[str, Any]:
    raise AssertionError(f"a plan without candidates called {attempt}")  # pragma: no cover
