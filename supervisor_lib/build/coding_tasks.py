"""Factories for the supervised coding task types, registered into :data:`supervisor_lib.build.tasks.FACTORIES`.

* read-only types (``pr_review``, ``issue_summary``, ``code_analysis``, ``security_audit``, ``documentation``)
  → :class:`~supervisor_lib.operators.coding.ReportOperator`;
* write types (``bug_fix``, ``feature``, ``refactor``, ``testing``, ``documentation`` with ``write: true``)
  → :class:`~supervisor_lib.operators.coding.CodingTaskOperator`;
* ``human_approval`` → the spec approval operators, which show the results of the coding tasks they follow
  when the spec gives no ``body``.

A ``pr_review`` with no refs and no patch file reviews the patches of the write tasks it depends on. A task that
runs an experiment is mapped over its arms (:func:`experiment_kwargs`). Nothing heavy is imported here: the
operators import their machinery when they run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supervisor_lib.spec import TaskType

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

    from supervisor_lib.build.tasks import Factory
    from supervisor_lib.spec import ReviewerSpec, TaskSpec, WorkflowSpec

__all__ = ["CODING_FACTORIES", "approval_task", "coding_task", "documentation_task", "experiment_kwargs", "report_task"]

#: spec types that run as a coding operator (their results can be shown to an approver)
_CODING_TYPES = frozenset(TaskType) - {TaskType.LLM, TaskType.HUMAN_APPROVAL}


def _shared(spec: WorkflowSpec, task: TaskSpec, mapped: bool) -> dict[str, Any]:
    """The operator arguments both coding operators take from the spec."""
    from supervisor_lib.build import tasks as base

    route = base.route_kwargs(spec, task)  # provider auto: the router picks the model when the task runs
    return {
        "task_kind": str(task.type),
        "repo": spec.repo,
        "instructions": base._templated(task.instructions, mapped),
        "paths": list(task.paths) if task.paths is not None else None,
        "provider": "auto" if route is not None else base.resolve_provider(task),
        "route": route,
        "model": task.model,
        "max_tokens": task.max_tokens,
        "temperature": task.temperature,
        "system": base._templated(task.system, mapped),
        "budget_usd": task.budget_usd,
        "cache": task.cache is not False,
        "when": task.when,
        "spec_file": spec.source_path,
        **(base.budget_kwargs(spec) if route is None else {}),  # a routed task carries them in `route`
    }


#: the operator arguments an experiment arm may change (what ``_shared`` derives from the arm's settings)
ARM_KEYS = ("provider", "route", "model", "max_tokens", "temperature", "system", "budget", "team")


def experiment_kwargs(spec: WorkflowSpec, task: TaskSpec, common: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """``(common, kwargs)`` of a task that runs an experiment: mapped over its arms (one map index per arm, named
    after it in Airflow's UI; with ``foreach``, every item runs in every arm), each arm the operator arguments it
    changes. The same task unchanged when it runs none.

    Mapping rather than one task per arm: the task keeps its id, so downstream tasks and ``xcom_pull`` see every
    arm's result as they see a ``foreach`` task's, and the arms share one set of inputs by construction.
    """
    from supervisor_lib.spec.models import arm_task

    experiment = spec.experiment_of(task)
    if experiment is None:
        return common, {}
    templated = task.foreach is not None
    base = _shared(spec, task, templated)
    arms = []
    for index, arm in enumerate(experiment.arms):
        changed = _shared(spec, arm_task(task, arm), templated)
        settings = {key: changed.get(key) for key in ARM_KEYS if changed.get(key) != base.get(key)}
        if arm.max_iterations is not None:
            settings["max_iterations"] = arm.max_iterations
        arms.append({"name": arm.name, "index": index, "settings": settings})
    label = "{{ task.arm.name }}" + (": {{ task.item }}" if templated else "")
    expand = {**common.get("_expand", {}), "arm": arms}
    return {**common, "_expand": expand, "map_index_template": label}, {"experiment": experiment.name}


def _pooled(common: dict[str, Any], shared: dict[str, Any], task: TaskSpec, default_max_tokens: int) -> dict[str, Any]:
    """``common`` with the pool of a mapped task (the scheduler reads it from the partial arguments, not from the
    operator's ``__init__``, which picks the same default for a task that is not mapped). The arms of an experiment
    share the task's own pool."""
    if "_expand" not in common or "pool" in common:
        return common
    from supervisor_lib.coding.models import task_pool

    max_tokens = shared["max_tokens"] or default_max_tokens
    pool = task_pool(shared["task_kind"], shared["provider"], shared["route"], shared["model"], max_tokens, task.id)
    return {**common, "pool": pool} if pool is not None else common


def _upstreams(spec: WorkflowSpec, task: TaskSpec, *, writes_only: bool) -> list[str]:
    upstream = [spec.effective(dep) for dep in task.depends_on]
    return [dep.id for dep in upstream if (dep.writes if writes_only else dep.type in _CODING_TYPES)]


def report_task(spec: WorkflowSpec, task: TaskSpec, common: dict[str, Any]) -> BaseOperator:
    """A read-only task: one structured report."""
    from supervisor_lib.build import tasks as base
    from supervisor_lib.operators.coding import ReportOperator

    mapped = task.foreach is not None
    reviews = task.type is TaskType.PR_REVIEW and not (task.base_ref or task.head_ref or task.patch_file)
    shared = _shared(spec, task, mapped)
    common, experiment = experiment_kwargs(spec, task, common)
    return base._make(
        ReportOperator, _pooled(common, shared, task, ReportOperator.default_max_tokens), mapped, **shared,
        **experiment,
        base_ref=task.base_ref, head_ref=task.head_ref, patch_file=task.patch_file,
        issue=base._templated(task.issue, mapped), issue_file=task.issue_file,
        review_upstreams=_upstreams(spec, task, writes_only=True) if reviews else [],
    )  # fmt: skip


def _reviewer_provider(reviewer: ReviewerSpec | None, task: TaskSpec, author: str) -> str | None:
    """The reviewer's provider: as given; for ``auto``, the model's owner, else the other provider than the author's
    (``auto`` when the author is routed: the operator picks the other provider than the router's choice)."""
    from supervisor_lib.build import tasks as base

    if reviewer is None:
        return None
    if str(reviewer.provider) != "auto":
        return str(reviewer.provider)
    if reviewer.model:
        return base.resolve_provider(task.model_copy(update={"provider": None, "model": reviewer.model}))
    if author == "auto":
        return "auto"
    return "openai" if author == "anthropic" else "anthropic"


def coding_task(spec: WorkflowSpec, task: TaskSpec, common: dict[str, Any]) -> BaseOperator:
    """A write task: edit, validate and (optionally) review in an isolated workspace."""
    from supervisor_lib.build import tasks as base
    from supervisor_lib.operators.coding import CodingTaskOperator

    mapped = task.foreach is not None
    shared = _shared(spec, task, mapped)
    check = task.validation
    common, experiment = experiment_kwargs(spec, task, common)
    return base._make(
        CodingTaskOperator, _pooled(common, shared, task, CodingTaskOperator.default_max_tokens), mapped, **shared,
        **experiment,
        validate_command=check.command if check else None, validate_timeout=check.timeout if check else 300.0,
        max_iterations=task.max_iterations or 3, keep_workspace=str(task.keep_workspace or "on_failure"),
        reviewer_provider=_reviewer_provider(task.reviewer, task, shared["provider"]),
        reviewer_model=task.reviewer.model if task.reviewer else None,
        build_on=_upstreams(spec, task, writes_only=True),
    )  # fmt: skip


def documentation_task(spec: WorkflowSpec, task: TaskSpec, common: dict[str, Any]) -> BaseOperator:
    """``documentation``: a write task with ``write: true``, else a report."""
    return coding_task(spec, task, common) if task.writes else report_task(spec, task, common)


def approval_task(spec: WorkflowSpec, task: TaskSpec, common: dict[str, Any]) -> BaseOperator:
    """``human_approval``; without a ``body`` it shows the results of the coding tasks it depends on."""
    from supervisor_lib.build import tasks as base

    if task.body is None and (results := _upstreams(spec, task, writes_only=False)):
        common = {**common, "results_from": results}
    return base.approval_task(spec, task, common)


CODING_FACTORIES: dict[TaskType, Factory] = {
    TaskType.PR_REVIEW: report_task,
    TaskType.ISSUE_SUMMARY: report_task,
    TaskType.CODE_ANALYSIS: report_task,
    TaskType.SECURITY_AUDIT: report_task,
    TaskType.DOCUMENTATION: documentation_task,
    TaskType.BUG_FIX: coding_task,
    TaskType.FEATURE: coding_task,
    TaskType.REFACTOR: coding_task,
    TaskType.TESTING: coding_task,
    TaskType.HUMAN_APPROVAL: approval_task,
}
