"""How a model call is executed, decided in one place for every path: the operators (sync, on a worker), the
trigger (async, in the triggerer), coding tasks (many calls per try) and routed tasks.

A call is one of three kinds:

* **routed** (``provider: auto``): the router picks the model, reserves its worst case against every budget that
  applies, fails over within the try and settles what was spent (:class:`~supervisor_lib.execution.routed.RoutedCall`);
* **budgeted**: the task's own model, but a budget applies (the DAG's ``budget:`` block or a global one): a
  one-model plan reserves and settles the same way;
* **plain**: no budget applies; the call runner sends it (:class:`~supervisor_lib.execution.runner.CallRunner`).

Every kind keeps the call runner's policy: response cache, per-task ``budget_usd``, attempts with back-off,
output validation and recording. The kind is decided once per :class:`CallExecutor` (one per task try), so a
coding task's calls share one router and one read of the global budgets.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from supervisor_lib.execution.settings import CallSettings

if TYPE_CHECKING:
    from supervisor_lib.execution.router import Router
    from supervisor_lib.execution.runner import CallScope, CallStore
    from supervisor_lib.providers.base import BaseLLMHook, ClientConfig
    from supervisor_lib.providers.types import LLMRequest

Kind = Literal["routed", "budgeted", "plain"]
_UNSET: Any = object()


@dataclass
class CallExecutor:
    """Runs the calls of one task try.

    :param settings: the task's call settings (a call may override some: :meth:`run`'s ``settings``).
    :param scope: the task instance try.
    :param log: the task's (or trigger's) logger: plans and budget checks are logged there.
    """

    settings: CallSettings
    scope: CallScope
    log: Any = None
    #: the ledger every call records in; by default the one ``settings.analytics_conn_id`` names (``None``: none)
    store_override: Any = field(default=_UNSET, repr=False)
    #: hooks by ``(provider, conn_id)``, kept by the caller across its executors (an operator's tries in one process)
    hooks: dict[tuple[str, str | None], Any] = field(default_factory=dict, repr=False)
    _routers: dict[bool, Any] = field(default_factory=dict, init=False, repr=False)
    _store: Any = field(default=_UNSET, init=False, repr=False)

    # -- the decision ----------------------------------------------------------------------------------------
    def kind(self, settings: CallSettings | None = None) -> Kind:
        """Which kind of call ``settings`` make (reads the global budgets once per executor)."""
        settings = settings or self.settings
        if settings.routed:
            return "routed"
        return "budgeted" if self.router(settings) is not None else "plain"

    def router(self, settings: CallSettings, model: str | None = None) -> Router | None:
        """The run-time router of a routed call, the budget router of a budgeted one, ``None`` for a plain one;
        one of each per executor (whether a budget applies depends on the task and its budgets, not the model)."""
        if settings.routed not in self._routers:
            from supervisor_lib.execution.routed import budget_router
            from supervisor_lib.execution.router import Router

            conn_id = settings.analytics_conn_id
            if settings.routed:
                router: Router | None = Router.for_runtime(conn_id, logger=self.log)
            else:
                router = budget_router(settings.options(model), self.scope, conn_id, self.log)
            self._routers[settings.routed] = router
        return self._routers[settings.routed]

    @property
    def store(self) -> CallStore | None:
        """The ledger every call records in (opened once)."""
        if self._store is _UNSET:
            from supervisor_lib.store.ledger import ledger_for

            override = self.store_override
            self._store = ledger_for(self.settings.analytics_conn_id) if override is _UNSET else override
        return self._store

    # -- sync (a worker) -------------------------------------------------------------------------------------
    def run(self, settings: CallSettings | None = None, step: str = "") -> dict[str, Any]:
        """Make one call and return its result (``routed`` added for a routed call)."""
        settings, scope = settings or self.settings, self._scope(step)
        if settings.routed:
            return self._routed(settings, settings.request(None, scope.describe()), scope).run(self.router(settings))
        hook = self._hook(settings)
        request = settings.request(hook.config.default_model, scope.describe())
        if (router := self.router(settings, request.model)) is not None:
            return self._routed(settings, request, scope).run(router)
        client = type(hook).shared_client(hook.config)
        return self._runner(settings, type(hook), hook.config, scope).run(request, client)

    # -- async (the triggerer's event loop: store and Variable work in threads) ----------------------------
    async def arun(self, settings: CallSettings | None = None, step: str = "") -> dict[str, Any]:
        """:meth:`run` on an event loop."""
        settings, scope = settings or self.settings, self._scope(step)
        if settings.routed:
            router = await asyncio.to_thread(self.router, settings)
            call = await asyncio.to_thread(self._routed, settings, settings.request(None, scope.describe()), scope)
            return await call.arun(router)
        hook_class = _hook_class(settings)
        sdk = asyncio.ensure_future(hook_class.aimport_sdk())  # overlaps the connection lookup
        config = await hook_class(conn_id=settings.conn_id).aconfig()
        await sdk
        request = settings.request(config.default_model, scope.describe())
        if (router := await asyncio.to_thread(self.router, settings, request.model)) is not None:
            call = await asyncio.to_thread(self._routed, settings, request, scope)
            return await call.arun(router)
        runner = await asyncio.to_thread(self._runner, settings, hook_class, config, scope)
        return await runner.arun(request, await hook_class.ashared_client(config))

    # -- building blocks -------------------------------------------------------------------------------------
    def _hook(self, settings: CallSettings) -> BaseLLMHook:
        """The hook of ``settings``' connection (its connection is read once per hook)."""
        key = (settings.provider, settings.conn_id)
        if key not in self.hooks:
            self.hooks[key] = _hook_class(settings)(conn_id=settings.conn_id)
        return self.hooks[key]

    def _scope(self, step: str) -> CallScope:
        return dataclasses.replace(self.scope, step=step) if step else self.scope

    def _routed(self, settings: CallSettings, request: LLMRequest, scope: CallScope) -> Any:
        from supervisor_lib.execution.routed import RoutedCall

        options = settings.options(settings.model if settings.routed else request.model)  # a preference, if routed
        return RoutedCall(options, request, scope, self.store, settings.policy, settings.budget_usd, settings.cache)

    def _runner(self, settings: CallSettings, hook_class: type[BaseLLMHook], config: ClientConfig,
                scope: CallScope) -> Any:  # fmt: skip
        from supervisor_lib.execution.runner import CallRunner

        return CallRunner(hook_class, config, scope, self.store, settings.policy, settings.budget_usd, settings.cache)


def _hook_class(settings: CallSettings) -> type[BaseLLMHook]:
    from supervisor_lib.providers.registry import hook_class_for

    return hook_class_for(settings.provider)
