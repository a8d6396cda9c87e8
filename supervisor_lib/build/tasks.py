"""One small factory per spec task kind: a validated (effective) ``TaskSpec`` → Airflow operator(s).

Each factory returns the operator that produces the task's result; its ``task_id`` is the spec task's id, so
``ti.xcom_pull(task_ids='<spec id>')`` works in later templates. A ``foreach`` task becomes a mapped operator (over
a literal list, or over the output of a ``<id>__items`` task that renders the expression).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator

from supervisor_lib.spec import TaskSpec, TaskType, WorkflowSpec

#: Jinja prelude that makes ``{{ item }}`` the mapped task's item (``task`` is the unmapped task when rendering).
ITEM_PRELUDE = "{% set item = task.item %}"

Factory = Callable[[WorkflowSpec, TaskSpec, dict[str, Any]], BaseOperator]


def airflow_kwargs(spec: WorkflowSpec, task: TaskSpec) -> dict[str, Any]:
    """The BaseOperator arguments every spec task shares."""
    kwargs: dict[str, Any] = {"task_id": task.id, "owner": spec.owner, "retries": task.retries}
    if task.retry_delay_s is not None:
        kwargs["retry_delay"] = timedelta(seconds=task.retry_delay_s)
    elif task.type is TaskType.HUMAN_APPROVAL:  # a spurious Airflow retry asks again at once (compat.py, 8)
        from supervisor_lib.compat import APPROVAL_RETRY_DELAY_S

        kwargs["retry_delay"] = timedelta(seconds=APPROVAL_RETRY_DELAY_S)
    if task.timeout_s is not None and task.type is not TaskType.HUMAN_APPROVAL:
        kwargs["execution_timeout"] = timedelta(seconds=task.timeout_s)
    if task.pool:
        kwargs["pool"] = task.pool
    if task.trigger_rule:
        kwargs["trigger_rule"] = str(task.trigger_rule)
    if task.description:
        kwargs["doc_md"] = task.description
    if task.notify is not None:
        from supervisor_lib.build.notify import task_notify_kwargs

        kwargs.update(task_notify_kwargs(task))
    return kwargs


def _templated(text: str | None, mapped: bool) -> str | None:
    return f"{ITEM_PRELUDE}{text}" if text is not None and mapped and "item" in text else text


def resolve_provider(task: TaskSpec) -> str:
    """The provider (``anthropic``, ``openai``, a plugin's) of a task that is not routed; ``auto`` with an
    uncatalogued model is read from the model name (a catalogued model, or none, is routed: see
    :func:`route_kwargs`)."""
    from supervisor_lib.model_facts import provider_of

    provider = str(task.provider or "auto")
    if provider != "auto":
        return provider
    return provider_of(task.model) or "anthropic"


def llm_task(spec: WorkflowSpec, task: TaskSpec, common: dict[str, Any]) -> BaseOperator:
    from supervisor_lib.operators.llm import operator_for

    mapped = task.foreach is not None
    call: dict[str, Any] = dict(
        prompt=_templated(task.prompt, mapped), system=_templated(task.system, mapped), model=task.model,
        max_tokens=task.max_tokens or 1024, temperature=task.temperature, output_schema=task.output_schema,
        budget_usd=task.budget_usd, deferrable=task.deferrable, cache=task.cache is not False, when=task.when,
        task_kind=str(task.type),
    )  # fmt: skip
    route = route_kwargs(spec, task)
    operator: type[BaseOperator]
    if route is not None:
        from supervisor_lib.operators.routed import RoutedOperator

        operator, kwargs = RoutedOperator, {**call, **route}
    else:
        operator = operator_for(resolve_provider(task))
        kwargs = {**call, **budget_kwargs(spec)}  # the task's own model, under the DAG's budgets
    # the scheduler reads a mapped task's pool from its partial arguments
    if mapped and "pool" not in common and (pool := _pool(operator, task, route)) is not None:
        common = {**common, "pool": pool}
    return _make(operator, common, mapped, **kwargs)


def _pool(operator: Any, task: TaskSpec, route: dict[str, Any] | None) -> str | None:
    """The pool the operator's ``__init__`` would pick (a mapped operator never runs it at parse time)."""
    from supervisor_lib.execution.settings import CallSettings, RouteOptions

    options = None
    if route is not None:
        options = RouteOptions(route["capabilities"], route["tier"], None, task.model, route["budget"], route["team"])
    settings = CallSettings(provider=operator.hook_class.provider, max_tokens=task.max_tokens or 1024,
                            output_schema=task.output_schema, task_type=str(task.type), route=options)  # fmt: skip
    return settings.pool(task.id)


def route_kwargs(spec: WorkflowSpec, task: TaskSpec) -> dict[str, Any] | None:
    """The ``RoutedOperator`` options of a routed task (``provider: auto`` and no uncatalogued model pinned)."""
    from supervisor_lib.routing.catalog import load_catalog
    from supervisor_lib.spec.routing_check import is_routed

    if str(task.provider or "auto") != "auto" or not is_routed(task, load_catalog()):  # the cheap test first
        return None
    budget = spec.budget.declaration() if spec.budget else None
    return {"capabilities": tuple(task.capabilities or ()), "tier": task.tier, "budget": budget,
            "team": spec.budget.team if spec.budget else None}  # fmt: skip


def budget_kwargs(spec: WorkflowSpec) -> dict[str, Any]:
    """``budget`` and ``team`` of a task that is not routed: the spec's ``budget:`` block still holds for its calls."""
    if spec.budget is None:
        return {}
    return {"budget": spec.budget.declaration(), "team": spec.budget.team}


def approval_task(spec: WorkflowSpec, task: TaskSpec, common: dict[str, Any]) -> BaseOperator:
    from supervisor_lib.operators.approval import SpecApprovalOperator, SpecChoiceOperator

    kwargs: dict[str, Any] = {"subject": task.subject or f"Approve {task.id} in {spec.dag_id}?", "body": task.body,
                              "when": task.when}  # fmt: skip
    if task.timeout_s is not None:
        kwargs["response_timeout"] = timedelta(seconds=task.timeout_s)
    options = list(task.options or ("Approve", "Reject"))
    if options == ["Approve", "Reject"]:
        return _make(SpecApprovalOperator, common, False, **kwargs)
    return _make(SpecChoiceOperator, common, False, options=options, **kwargs)


FACTORIES: dict[TaskType, Factory] = {TaskType.LLM: llm_task, TaskType.HUMAN_APPROVAL: approval_task}


def build_task(spec: WorkflowSpec, task: TaskSpec) -> tuple[BaseOperator, BaseOperator]:
    """Build a spec task; return (first operator, result operator) — the same one unless foreach needs two."""
    common = airflow_kwargs(spec, task)
    factory = factory_for(task)
    if task.foreach is None:
        op = factory(spec, task, common)
        return op, op
    if isinstance(task.foreach, str):
        from supervisor_lib.operators.flow import ForeachItemsOperator

        items = ForeachItemsOperator(
            task_id=f"{task.id}__items", items=task.foreach, when=task.when, owner=spec.owner,
            retries=task.retries, doc_md=f"Renders the `foreach` list of `{task.id}`.",
        )  # fmt: skip
        common = {**common, "_expand": {"item": items.output}}
        task = task.model_copy(update={"when": None})  # evaluated once, by the items task
        mapped = factory(spec, task, common)
        items >> mapped
        return items, mapped
    common = {**common, "_expand": {"item": list(task.foreach)}}
    op = factory(spec, task, common)
    return op, op


def factory_for(task: TaskSpec) -> Factory:
    """The factory of a task's type: built in (every built-in type has one: tests/unit/build/test_build.py checks),
    or its plugin's builder (imported now; ``PluginError`` names the package when it cannot be)."""
    if isinstance(task.type, TaskType):
        return FACTORIES[task.type]
    from supervisor_lib import extensions

    plugin = task.type.plugin
    builder = extensions.import_object(plugin.builder, plugin, "builder")
    if not callable(builder):
        raise extensions.PluginError(f"the builder {plugin.builder!r} of plugin task type {plugin.name!r} is not "
                                     "callable")  # fmt: skip
    return builder


def _make(operator: type[BaseOperator], common: dict[str, Any], mapped: bool, **kwargs: Any) -> BaseOperator:
    """Instantiate, or map when the common arguments carry ``_expand`` (a foreach task)."""
    expand = common.get("_expand")
    base = {k: v for k, v in common.items() if k != "_expand"}
    if expand is None:
        return operator(**base, **kwargs)
    # Mapped tasks render in the worker, which knows the item; they defer from there (not from the triggerer).
    if "deferrable" in kwargs:
        kwargs["start_in_triggerer"] = False
    return operator.partial(**base, **kwargs).expand(**expand)  # type: ignore[return-value]


# The supervised coding types, and approvals that show their results (registered once FACTORIES exists).
from supervisor_lib.build.coding_tasks import CODING_FACTORIES  # noqa: E402

FACTORIES.update(CODING_FACTORIES)
