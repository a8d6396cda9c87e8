"""A spec's ``notify`` blocks → Airflow callbacks: notifier instances as the DAG's and tasks'
``on_failure_callback``/``on_success_callback``.

Task callbacks run in the task's own process after its last try; DAG callbacks once per run, where Airflow runs them
(the DAG processor; ``dag.test()`` runs them inline). ``on_anomaly`` and ``on_budget`` are not callbacks: the anomaly
scan reads them (:func:`supervisor_lib.analytics.alerts.routes_from_specs`). Each notifier is imported here, so a
DAG that declares none imports none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supervisor_lib.notify.factory import event_message, make_notifier, scrub_secrets

if TYPE_CHECKING:
    from airflow.sdk.bases.notifier import BaseNotifier

    from supervisor_lib.spec import TaskSpec, WorkflowSpec
    from supervisor_lib.spec.models import NotifierSpec, TaskNotify

_EVENTS = (("on_failure", "on_failure_callback", "failed"), ("on_success", "on_success_callback", "succeeded"))


def dag_notify_kwargs(spec: WorkflowSpec) -> dict[str, Any]:
    """The ``DAG(...)`` callbacks of ``spec.notify``, and the ``scrub`` filter the messages use (when the spec or
    any of its tasks notifies)."""
    if spec.notify is None and not any(task.notify for task in spec.tasks):
        return {}
    return {"user_defined_filters": {"scrub": scrub_secrets}, **_callbacks(spec.notify, task_level=False)}


def task_notify_kwargs(task: TaskSpec) -> dict[str, Any]:
    """The operator callbacks of ``task.notify``."""
    return _callbacks(task.notify, task_level=True)


def _callbacks(notify: TaskNotify | None, *, task_level: bool) -> dict[str, Any]:
    if notify is None:
        return {}
    found = {}
    for field, argument, event in _EVENTS:
        declared: tuple[NotifierSpec, ...] = getattr(notify, field)
        if declared:
            message = event_message(event, task_level=task_level)
            found[argument] = [_notifier(item, message) for item in declared]
    return found


def _notifier(item: NotifierSpec, message: dict[str, Any]) -> BaseNotifier:
    return make_notifier(item.notifier, item.kwargs, message)
