"""Parse-time routing checks: a task with ``provider: auto`` that no catalogued model can serve is a spec error.

What parse time can know — capabilities, tier, context window for ``max_tokens``, an explicit provider — is
checked against ``include/catalog.yaml`` (with ``$SUPERVISOR_CATALOG`` merged in; never an Airflow Variable, which
only run time reads). Health and budgets are run-time matters. A task that pins a model the catalogue does not
list is not routed (its provider is read from the model name), so it is not checked here. No Airflow import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from supervisor_lib.spec.validate import Finding, did_you_mean


def is_routed(task: Any, catalog: Any) -> bool:
    """Whether the router chooses this (merged) task's model: provider auto, and no uncatalogued model pinned."""
    if not task.type.calls_model or str(task.provider or "auto") != "auto":
        return False
    return task.model is None or task.model in catalog.models


def route_request(task: Any) -> Any:
    """The parse-time :class:`~supervisor_lib.routing.policy.RouteRequest` of a merged task (prompt size unknown)."""
    from supervisor_lib.routing.policy import RouteRequest

    return RouteRequest(
        task_type=str(task.type),
        capabilities=frozenset(task.capabilities or ()),
        model=task.model,
        tier=task.tier,
        max_tokens=task.max_tokens or 1024,
        sends=2 if task.output_schema else 1,
    )


def route_findings(tasks: Sequence[tuple[int, Any]]) -> list[Finding]:
    """Problems of the routed tasks among ``(index, merged task)`` pairs."""
    from supervisor_lib.routing.catalog import CatalogError, load_catalog

    if not any(t.type.calls_model and str(t.provider or "auto") == "auto" for _, t in tasks):
        return []
    try:
        catalog = load_catalog()
    except CatalogError as exc:
        first = next(i for i, t in tasks if t.type.calls_model and str(t.provider or "auto") == "auto")
        return [Finding(("tasks", first, "provider"), f"provider auto needs the provider catalogue: {exc}")]
    return [finding for i, task in tasks if is_routed(task, catalog) for finding in _task_findings(catalog, i, task)]


def _task_findings(catalog: Any, index: int, task: Any) -> list[Finding]:
    from supervisor_lib.routing.policy import static_plan

    findings = [
        Finding(("tasks", index, "capabilities"),
                f"unknown capability '{name}'{did_you_mean(name, catalog.capabilities)}; the catalogue has "
                f"{', '.join(sorted(catalog.capabilities))}")
        for name in catalog.unknown_capabilities(task.capabilities or ())
    ]  # fmt: skip
    if task.tier is not None and task.tier not in catalog.tiers:
        known = ", ".join(catalog.tiers)
        findings.append(
            Finding(
                ("tasks", index, "tier"),
                f"unknown tier '{task.tier}'{did_you_mean(task.tier, catalog.tiers)}; the catalogue has {known}",
            )
        )
    if findings:
        return findings
    plan = static_plan(catalog, route_request(task))
    if plan.chosen is not None:
        return []
    field = "capabilities" if task.capabilities else ("tier" if task.tier else "type")
    needs = ", ".join(sorted(plan.required)) or "no special capabilities"
    reasons = "; ".join(f"{r.model}: {r.reason}" for r in plan.rejected) or "it lists no models"
    return [Finding(("tasks", index, field),
                    f"provider auto: no model in the catalogue serves a {task.type} task that needs {needs} at tier "
                    f">= {plan.tier} ({reasons})")]  # fmt: skip
