"""The router: reads health and budgets from the store, applies the policy, and exposes budget forecasts.

``Router.plan`` makes the decision (:mod:`~supervisor_lib.routing.policy`) from the shared state
(:mod:`~supervisor_lib.store.routing_state`); :mod:`~supervisor_lib.execution.failover` then walks the plan's
candidates.
A router is cheap to build: the catalogue is parsed once per content, and a decision costs three small queries
(the health window, the breakers, the budgets' usage).

When the store cannot be read, health is taken as unknown (every breaker closed, noted in the plan), but budgets
are never skipped: a call under a budget that cannot be checked fails its try with a retryable error.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from supervisor_lib.exceptions import RetryableError
from supervisor_lib.execution.variables import runtime_catalog, variable_override
from supervisor_lib.routing.budgets import (
    BudgetDeclaration,
    BudgetScope,
    Charge,
    GlobalBudgets,
    Usage,
    charges_for,
    forecasts,
    limits_for,
)
from supervisor_lib.routing.catalog import (
    Catalog,
    CatalogError,
    env_override,
    parse_yaml,
)
from supervisor_lib.routing.forecast import BudgetForecast, Pressure, overall_pressure
from supervisor_lib.routing.health import BreakerRecord, BreakerView, Sample, breaker_keys, breaker_view
from supervisor_lib.routing.policy import HealthLookup, RoutePlan, RouteRequest, decide, pinned_plan
from supervisor_lib.store.routing_state import RoutingState

log = logging.getLogger(__name__)

BUDGETS_ENV = "SUPERVISOR_BUDGETS"
BUDGETS_VARIABLE = "supervisor_budgets"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RouteScope:
    """Where a routed call happens: the task instance try, and whose budgets it spends.

    :param team: the team its spend counts for (default: the budget block's ``team``).
    :param budget: the DAG's own ``budget:`` block; global budgets apply on top.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int = 1
    task_type: str = "llm"
    team: str | None = None
    tags: tuple[str, ...] = ()
    budget: BudgetDeclaration | None = None
    budget_source: str = "the DAG's budget block"

    @property
    def budget_scope(self) -> BudgetScope:
        return BudgetScope(self.dag_id, self.run_id, self.team, self.tags)

    def describe(self) -> str:
        return f"task {self.task_id!r}" + (f" [{self.map_index}]" if self.map_index >= 0 else "")


def load_budgets(*, runtime: bool = False) -> GlobalBudgets:
    """Global budgets: the file ``$SUPERVISOR_BUDGETS`` names, then (``runtime`` only) the Variable
    ``supervisor_budgets``, merged in that order (a limit declared in both: the Variable's)."""
    from supervisor_lib.routing.catalog import merge

    data: dict[str, Any] = {}
    sources = []
    for found in (env_override(BUDGETS_ENV), variable_override(BUDGETS_VARIABLE) if runtime else None):
        if found is not None:
            data = merge(data, parse_yaml(found[1], found[0]))
            sources.append(found[0])
    try:
        return GlobalBudgets.from_mapping(data, " + ".join(sources) or "global budgets")
    except ValueError as exc:
        raise CatalogError(str(exc)) from None


def budgets_in_force(scope: RouteScope, budgets: GlobalBudgets | None = None) -> GlobalBudgets | None:
    """The global budgets (:func:`load_budgets` at run time, unless given) when any limit applies to ``scope``
    — its own budget block or a global one — else ``None``: a call no budget concerns skips the router."""
    found = budgets if budgets is not None else load_budgets(runtime=True)
    limits = limits_for(scope.budget_scope, scope.budget, found, spec_source=scope.budget_source)
    return found if limits else None


@dataclass(frozen=True)
class BudgetState:
    """The budgets in force for a scope, their usage and the pressure they put on routing."""

    charges: tuple[Charge, ...]
    usage: dict[tuple[str, str], Usage]
    forecasts: tuple[BudgetForecast, ...]
    pressure: Pressure


class Router:
    """Plans routed calls (see the module docstring).

    :param state: the shared state; ``None`` plans without health or budgets (parse-time checks, tools).
    :param budgets: global budgets (:func:`load_budgets`); a scope's own budget block applies on top.
    :param clock: the current time (tests pass a fake clock).
    """

    def __init__(
        self,
        state: RoutingState | None,
        catalog: Catalog,
        budgets: GlobalBudgets | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        self.state, self.catalog, self.budgets = state, catalog, budgets or GlobalBudgets()
        self.clock, self.log = clock, logger or log

    @classmethod
    def for_runtime(cls, conn_id: str | None = None, **kwargs: Any) -> Router:
        """The router a running task uses: the analytics store ``conn_id``, the catalogue and global budgets with
        their run-time overrides (Variables included)."""
        from supervisor_lib.store.db import DEFAULT_CONN_ID, get_store

        state = RoutingState(get_store(conn_id or DEFAULT_CONN_ID))
        return cls(state, runtime_catalog(), load_budgets(runtime=True), **kwargs)

    # -- the decision -----------------------------------------------------------------------------------------
    def plan(self, request: RouteRequest, scope: RouteScope) -> RoutePlan:
        """Decide where the call goes; the plan lists every candidate in order and every rejected model."""
        now = self.clock()
        budget = self.budget_state(scope, now)
        if request.pinned:  # the task chose its model: only budgets apply
            return replace(pinned_plan(self.catalog, request, budget.charges, budget.usage), forecasts=budget.forecasts)
        health, notes = self.health(now)
        plan = decide(self.catalog, request, health, budget.charges, budget.usage, budget.pressure)
        return replace(plan, forecasts=budget.forecasts, notes=(*plan.notes, *notes))

    def health(self, now: datetime) -> tuple[HealthLookup, list[str]]:
        """Every breaker's view at ``now``, looked up by (provider, model); notes say when health is unknown."""
        limits = self.catalog.settings.health
        samples: list[Sample] = []
        records: dict[str, BreakerRecord] = {}
        notes: list[str] = []
        if self.state is not None:
            try:
                samples = self.state.samples(now - timedelta(seconds=limits.window_s), limits.max_samples)
                records = self.state.breakers()
            except Exception as exc:  # unknown health must not stop the work: every breaker reads closed
                notes.append(f"health unknown (analytics store: {exc}); every breaker taken as closed")
        grouped: dict[str, list[Sample]] = defaultdict(list)
        for sample in samples:
            grouped[sample.provider].append(sample)
            grouped[f"{sample.provider}/{sample.model}"].append(sample)
        views: dict[str, BreakerView] = {}

        def view(key: str) -> BreakerView:
            if key not in views:
                views[key] = breaker_view(key, grouped.get(key, []), records.get(key), now, limits)
            return views[key]

        def lookup(provider: str, model: str) -> tuple[BreakerView, BreakerView]:
            provider_key, model_key = breaker_keys(provider, model)
            return view(provider_key), view(model_key)

        return lookup, notes

    def budget_state(self, scope: RouteScope, now: datetime) -> BudgetState:
        """The budgets that apply to ``scope`` now, their usage, forecasts and pressure.

        :raises RetryableError: a budget applies but the store cannot be read.
        """
        limits = limits_for(scope.budget_scope, scope.budget, self.budgets, spec_source=scope.budget_source)
        charges = charges_for(limits, scope.budget_scope, now)
        if not charges:
            return BudgetState((), {}, (), Pressure.NORMAL)
        if self.state is None:
            raise RetryableError(f"{scope.describe()}: budgets apply but the router has no store to check them in")
        try:
            usage = self.state.usage(charges, now)
        except Exception as exc:
            raise RetryableError(f"{scope.describe()}: budgets cannot be checked: {exc}") from exc
        found = forecasts(charges, usage, now, self.catalog.settings.forecast.min_elapsed_fraction)
        # per-provider limits only filter that provider's models; they do not make every call economise
        shared = [f for f, c in zip(found, charges, strict=True) if c.limit.subject != "provider"]
        return BudgetState(charges, usage, tuple(found), overall_pressure(shared, self.catalog.settings.forecast))

    def forecast(self, scope: RouteScope) -> list[BudgetForecast]:
        """Spend so far and projected end-of-window spend of every budget that applies to ``scope``."""
        return list(self.budget_state(scope, self.clock()).forecasts)
