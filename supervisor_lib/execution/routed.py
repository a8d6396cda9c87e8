"""Routed model calls: the failover loop around the call runner, for the operator (sync) and the trigger (async).

Each candidate is called through :class:`~supervisor_lib.execution.runner.CallRunner` with its own hook and
connection (the catalogue's ``conn_id``), so a routed call keeps every policy of a plain one — response cache,
per-task ``budget_usd``, attempts with back-off and ``retry-after``, output validation, recording. A probe call
makes one HTTP attempt. What the call actually spent (every send, corrective ones included) settles its budget
reservation. The XCom result is the call runner's, plus ``routed``: ``{provider, model, reasons, failovers}``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from supervisor_lib.exceptions import SupervisorError
from supervisor_lib.execution.failover import Attempt, Routed, arun_routed, failover_steps, run_routed
from supervisor_lib.execution.router import Router
from supervisor_lib.execution.runner import CallRunner, CallScope, CallStore
from supervisor_lib.execution.settings import RouteOptions
from supervisor_lib.providers.base import ClientConfig
from supervisor_lib.providers.policy import AttemptPolicy
from supervisor_lib.providers.registry import hook_class_for
from supervisor_lib.providers.types import LLMRequest

log = logging.getLogger(__name__)

Logger = logging.Logger | logging.LoggerAdapter[Any]


class SpendTracker:
    """A :class:`CallStore` in front of the real one that also adds up what the call's sends cost."""

    def __init__(self, inner: CallStore | None) -> None:
        self.inner, self.spent_usd = inner, 0.0

    def record_attempt(self, row: dict[str, Any]) -> None:
        self.spent_usd += float(row.get("cost_usd") or 0.0)
        if self.inner is not None:
            self.inner.record_attempt(row)

    def intend(self, row: dict[str, Any]) -> Any:
        return self.inner.intend(row) if self.inner is not None else None

    def adopt_lost(self, scope: CallScope) -> int:
        return self.inner.adopt_lost(scope) if self.inner is not None else 0

    def cached_response(self, key: str) -> dict[str, Any] | None:
        return self.inner.cached_response(key) if self.inner is not None else None

    def cache_response(self, key: str, scope: CallScope, result: dict[str, Any]) -> None:
        if self.inner is not None:
            self.inner.cache_response(key, scope, result)

    def task_spend_usd(self, scope: CallScope) -> float:
        return self.inner.task_spend_usd(scope) if self.inner is not None else 0.0


@dataclass
class RoutedCall:
    """One routed call: the request (its model filled in per candidate) and the call runner's settings.

    :param store: the analytics ledger the call runner records in; ``None`` records nothing.
    """

    options: RouteOptions
    request: LLMRequest
    scope: CallScope
    store: CallStore | None
    policy: AttemptPolicy = field(default_factory=AttemptPolicy)
    budget_usd: float | None = None
    use_cache: bool = True
    #: attempts made so far across the models tried: each model's attempts are numbered after the last one's, so
    #: every attempt of the try has its own call id (and its own analytics row)
    _attempts: int = field(default=0, init=False, repr=False)

    def run(self, router: Router) -> dict[str, Any]:
        """Plan and call synchronously (the worker path)."""
        scope = self.options.route_scope(self.scope)
        plan = router.plan(self.options.route_request(self.scope.task_type, self.request), scope)
        return self._result(run_routed(failover_steps(router, plan, scope), self._call))

    async def arun(self, router: Router) -> dict[str, Any]:
        """Plan and call on an event loop (the trigger path); store work runs in threads."""
        scope = self.options.route_scope(self.scope)
        request = self.options.route_request(self.scope.task_type, self.request)
        plan = await asyncio.to_thread(router.plan, request, scope)
        return self._result(await arun_routed(failover_steps(router, plan, scope), self._acall))

    def _result(self, routed: Routed) -> dict[str, Any]:
        """The call runner's result, plus ``routed`` (who answered, why, the failovers) unless the call was pinned."""
        result = {key: value for key, value in routed.result.items() if key != "spent_usd"}
        return result if self.options.pinned else {**result, "routed": routed.summary()}

    def _runner(self, attempt: Attempt, config: ClientConfig) -> tuple[CallRunner, SpendTracker, LLMRequest]:
        tracker = SpendTracker(self.store)
        policy = dataclasses.replace(self.policy, max_attempts=1) if attempt.probe else self.policy
        runner = CallRunner(hook_class_for(attempt.candidate.provider), config, self.scope, tracker, policy,
                            self.budget_usd, self.use_cache, attempts_lost=self._attempts)  # fmt: skip
        return runner, tracker, dataclasses.replace(self.request, model=attempt.candidate.model)

    def _call(self, attempt: Attempt) -> dict[str, Any]:
        hook = hook_class_for(attempt.candidate.provider)(conn_id=attempt.candidate.conn_id or self.options.conn_id)
        runner, tracker, request = self._runner(attempt, hook.config)
        try:
            return {**runner.run(request, type(hook).shared_client(hook.config)), "spent_usd": tracker.spent_usd}
        except SupervisorError as err:
            err.spent_usd = tracker.spent_usd  # type: ignore[attr-defined]  # what settles the reservation
            raise
        finally:
            self._attempts = max(self._attempts, runner.last_attempt)

    async def _acall(self, attempt: Attempt) -> dict[str, Any]:
        hook_class = hook_class_for(attempt.candidate.provider)
        sdk = asyncio.ensure_future(hook_class.aimport_sdk())  # overlaps the connection lookup
        config = await hook_class(conn_id=attempt.candidate.conn_id or self.options.conn_id).aconfig()
        await sdk
        runner, tracker, request = self._runner(attempt, config)
        try:
            client = await hook_class.ashared_client(config)
            return {**await runner.arun(request, client), "spent_usd": tracker.spent_usd}
        except SupervisorError as err:
            err.spent_usd = tracker.spent_usd  # type: ignore[attr-defined]
            raise
        finally:
            self._attempts = max(self._attempts, runner.last_attempt)


def budget_router(
    options: RouteOptions, scope: CallScope, analytics_conn_id: str | None, logger: Any = None
) -> Router | None:
    """The router that checks a pinned call's budgets, or ``None`` when no budget applies to it (then the call
    goes straight to the call runner, as if there were no router). Reads the global budgets (run time only)."""
    from supervisor_lib.execution.router import budgets_in_force
    from supervisor_lib.execution.variables import runtime_catalog
    from supervisor_lib.store.db import DEFAULT_CONN_ID, get_store
    from supervisor_lib.store.routing_state import RoutingState

    budgets = budgets_in_force(options.route_scope(scope))
    if budgets is None:
        return None
    state = RoutingState(get_store(analytics_conn_id or DEFAULT_CONN_ID))
    return Router(state, runtime_catalog(), budgets, logger=logger)
