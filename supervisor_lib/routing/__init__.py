"""Provider routing: capabilities and cost, circuit breakers, failover and budgets that hold across runs.

See ``docs/routing.md``. The policy modules (``catalog``, ``policy``, ``health``, ``budgets``, ``forecast``) are
pure and import no Airflow; ``state`` keeps the shared state in the analytics store; ``router`` plans a call and
``failover`` walks the plan. Names are exported lazily, so importing a pure module never pulls in Airflow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "Catalog": "supervisor_lib.routing.catalog",
    "CatalogError": "supervisor_lib.routing.catalog",
    "load_catalog": "supervisor_lib.routing.catalog",
    "RouteRequest": "supervisor_lib.routing.policy",
    "RoutePlan": "supervisor_lib.routing.policy",
    "Candidate": "supervisor_lib.routing.policy",
    "BudgetDeclaration": "supervisor_lib.routing.budgets",
    "GlobalBudgets": "supervisor_lib.routing.budgets",
    "BudgetForecast": "supervisor_lib.routing.forecast",
    "RoutingState": "supervisor_lib.routing.state",
    "Router": "supervisor_lib.routing.router",
    "RouteScope": "supervisor_lib.routing.router",
    "load_budgets": "supervisor_lib.routing.router",
    "static_plan": "supervisor_lib.routing.policy",
    "Attempt": "supervisor_lib.routing.failover",
    "Routed": "supervisor_lib.routing.failover",
    "failover_steps": "supervisor_lib.routing.failover",
    "run_routed": "supervisor_lib.routing.failover",
    "arun_routed": "supervisor_lib.routing.failover",
}

__all__ = [
    "Attempt",
    "BudgetDeclaration",
    "BudgetForecast",
    "Candidate",
    "Catalog",
    "CatalogError",
    "GlobalBudgets",
    "RoutePlan",
    "RouteRequest",
    "RouteScope",
    "Routed",
    "Router",
    "RoutingState",
    "arun_routed",
    "failover_steps",
    "load_budgets",
    "load_catalog",
    "run_routed",
    "static_plan",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from supervisor_lib.routing.budgets import BudgetDeclaration, GlobalBudgets
    from supervisor_lib.routing.catalog import Catalog, CatalogError, load_catalog
    from supervisor_lib.routing.failover import Attempt, Routed, arun_routed, failover_steps, run_routed
    from supervisor_lib.routing.forecast import BudgetForecast
    from supervisor_lib.routing.policy import Candidate, RoutePlan, RouteRequest, static_plan
    from supervisor_lib.routing.router import Router, RouteScope, load_budgets
    from supervisor_lib.routing.state import RoutingState


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'supervisor_lib.routing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
