"""Provider routing policy, pure: the catalogue, the routing decision with its reasons, circuit-breaker maths,
budget limits and forecasts. No Airflow, no SDK, no database: see ``docs/routing.md``.

The parts that act on it live elsewhere: :mod:`supervisor_lib.execution.router` reads health and budgets from the
store and plans a call, :mod:`supervisor_lib.execution.failover` walks the plan, and
:mod:`supervisor_lib.store.routing_state` keeps the shared state. Names are exported lazily.
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
    "static_plan": "supervisor_lib.routing.policy",
    "BudgetDeclaration": "supervisor_lib.routing.budgets",
    "GlobalBudgets": "supervisor_lib.routing.budgets",
    "BudgetForecast": "supervisor_lib.routing.forecast",
}

__all__ = [
    "BudgetDeclaration",
    "BudgetForecast",
    "Candidate",
    "Catalog",
    "CatalogError",
    "GlobalBudgets",
    "RoutePlan",
    "RouteRequest",
    "load_catalog",
    "static_plan",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from supervisor_lib.routing.budgets import BudgetDeclaration, GlobalBudgets
    from supervisor_lib.routing.catalog import Catalog, CatalogError, load_catalog
    from supervisor_lib.routing.forecast import BudgetForecast
    from supervisor_lib.routing.policy import Candidate, RoutePlan, RouteRequest, static_plan


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'supervisor_lib.routing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
