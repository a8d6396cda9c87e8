"""Which Airflow pool a model-calling task queues in when it names none: the one decision, for every operator
and for the builder (a mapped task's pool must be known when the DAG is built).

A task that names its provider queues in that provider's pool (catalogue ``providers.<name>.pool``); a routed
task in the pool of the model the router would choose first from the file catalogue (never the Variable: this
runs while DAGs are parsed). Pure: no Airflow, no store.
"""

from __future__ import annotations

from collections.abc import Sequence

from supervisor_lib.routing.catalog import load_catalog
from supervisor_lib.routing.policy import RouteRequest, static_plan


def default_pool(
    provider: str,
    *,
    routed: bool = False,
    task_kind: str = "llm",
    capabilities: Sequence[str] = (),
    tier: str | None = None,
    route_provider: str | None = None,
    model: str | None = None,
    max_tokens: int = 1024,
    structured: bool = False,
    task_id: str = "",
) -> str | None:
    """The pool, or ``None`` when the catalogue lists no pool for it (then Airflow's ``default_pool``).

    :raises ValueError: a routed task that no catalogued model can serve (an import error at parse time).
    """
    catalog = load_catalog()
    if not routed:
        entry = catalog.providers.get(provider)
        return entry.pool if entry is not None else None
    request = RouteRequest(
        task_type=task_kind, capabilities=frozenset(capabilities), tier=tier, max_tokens=max_tokens,
        provider=None if route_provider in (None, "auto") else route_provider,
        model=model if model in catalog.models else None,  # a template or an unknown model: no preference
        sends=2 if structured else 1,
    )  # fmt: skip
    plan = static_plan(catalog, request)
    if plan.chosen is None:
        reasons = "; ".join(f"{r.name}: {r.reason}" for r in plan.rejected) or "the catalogue lists no models"
        raise ValueError(f"task {task_id!r}: no model in {catalog.source} can serve it "
                         f"(needs {', '.join(sorted(plan.required)) or 'nothing special'}): {reasons}")  # fmt: skip
    return plan.chosen.pool
