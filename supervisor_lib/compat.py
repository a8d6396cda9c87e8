"""Every workaround for an Airflow bug or limitation, in one place, with the upstream report it works around.

``tests/unit/test_compat.py`` shows each problem still exists in the installed Airflow; once an upgrade fixes one,
its test fails and the workaround can go. An upgrade is then a checklist: run those tests, delete what they say.

Each entry: the problem in Airflow 3.3.2, where it is reported upstream, and what we do about it.

1. A mapped operator reads ``start_from_trigger`` from the operator *class* (``OperatorPartial._expand``): a
   plain ``property`` there is the property object, serialised as the truthy text ``'<property object at 0x…>'``,
   so every mapped task started in the triggerer without its trigger arguments, and the text changed on every
   parse (a new DAG version each time). Upstream: no report found. Here: :class:`start_from_trigger_property`
   reads ``False`` on the class.
2. A start-from-trigger task is deferred without its pool being checked (``DagRun.schedule_tis`` →
   ``TaskInstance.defer_task``), so a pool does not bound concurrent calls. Upstream: apache/airflow#20940 and
   #69187 are the neighbouring pool/deferral reports. Here: :func:`may_start_in_triggerer` keeps such tasks on a
   worker start unless they run in ``default_pool``.
3. The triggerer cannot serve XCom reads while it renders a start-from-trigger task's templates (rendering was
   re-enabled in apache/airflow#55068 without XCom access). Here: templates that read task state render on a
   worker (:func:`reads_task_state`).
4. A DAG param without a default crashes the triggerer when it renders a start-from-trigger task (the task's
   params are validated before the run's conf is merged). Upstream: no report found. Here:
   :func:`has_required_params` keeps such tasks on a worker start.
5. ``TaskSuccessEvent(xcoms=...)`` is stored JSON-encoded twice, so ``xcom_pull`` downstream gets a string.
   Upstream: no report found. Here: :func:`push_trigger_result` pushes the XCom from the trigger.
6. ``dag.test()`` replays only an event's payload into the worker, so an ``end_from_trigger`` task run there never
   gets its result. Airflow has no public flag for "inside dag.test()". Here: :func:`in_dag_test` (the in-process
   supervisor's class name), and the trigger resumes the task through ``execute_complete`` there.
7. A trigger that fails to build in the triggerer (``TypeError`` from its ``__init__``) is failed, but its id stays
   in the triggerer supervisor's set of running triggers for good. SQLite re-uses the ids of deleted rows, so the
   next trigger given that id is taken for one already running and never starts: its task sits in ``deferred``
   until the triggerer restarts (seen: 7 minutes, then a restart). Upstream: no report found. Here:
   ``LLMCallTrigger.__init__`` never raises; missing or unknown arguments become an error event in ``run()``.
8. The scheduler can take the executor's "success" from a worker that just paused a task (deferred, or a
   human-in-the-loop task now awaiting input) for a task killed externally, and mark it ``up_for_retry`` (the
   "stale executor event" family: apache/airflow#66374, #67287, #72716; the general fix, #73546, is not released).
   It happens when the trigger fires within about a second of the worker pausing — an approval answered at once
   (tests), a deferred call the fake provider answers at once — because 3.3.2 treats a task already ``queued``
   again as killed (#67287's fix, #68741, covers only ``scheduled`` there). Seen on approvals (asked again after
   ``retry_delay``, 5 minutes by default) and, rarely, a fatal error retried once. Here: human-approval tasks
   default to :data:`APPROVAL_RETRY_DELAY_S`, so a spurious retry asks again within seconds; fatal errors are not
   protected (the fault tests measure it).
9. ``dag.test()`` hands DAG-level callbacks the scheduler's ``SerializedDAG`` as ``dag`` (``DAG.test`` assigns the
   callbacks to it), which has no ``get_template_env``, so a notifier with templated fields fails there ("Callback
   failed"; the run is unaffected). The DAG processor, which runs these callbacks in a deployment, passes the real
   DAG. Upstream: no report found. Here: nothing to work around in a deployment; run-level notifiers are tested on a
   real Airflow (``tests/integration/test_notify_stack.py``; task-level callbacks run in the task's process and work
   under ``dag.test()``).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

#: the retry delay of a human-approval task that sets none (problem 8)
APPROVAL_RETRY_DELAY_S = 5
#: the Airflow release these workarounds were checked against (tests/unit/test_compat.py)
CHECKED_AIRFLOW = "3.3.2"
DEFAULT_POOL = "default_pool"
_TASK_STATE = re.compile(r"xcom_pull|\bti\b|task_instance")


class StartFromTrigger:
    """The ``start_from_trigger`` attribute of our deferrable operators: ``False`` on the class (problem 1).

    ``MappedOperator`` takes ``getattr(operator_class, "start_from_trigger")``, where a plain ``property`` is the
    property object itself; mapped tasks render their item on a worker, so ``False`` is also the right value. On an
    instance it is what the operator asked for (``task.start_from_trigger = True``) and what
    :func:`may_start_in_triggerer` allows, read when the DAG is serialised (the task's pool and DAG are known then).
    The operator lists its templated values in ``start_templates()``.
    """

    def __get__(self, instance: Any, owner: type | None = None) -> bool:
        if instance is None or not instance.__dict__.get("_start_in_triggerer", False):
            return False
        return may_start_in_triggerer(instance, *instance.start_templates())

    def __set__(self, instance: Any, value: bool) -> None:
        instance.__dict__["_start_in_triggerer"] = bool(value)


def may_start_in_triggerer(task: BaseOperator, *templates: Any) -> bool:
    """Whether a deferrable task can start in the triggerer without hitting problems 2, 3 or 4."""
    return task.pool == DEFAULT_POOL and not reads_task_state(*templates) and not has_required_params(task)


def reads_task_state(*templates: Any) -> bool:
    """Whether a template reads XComs or the task instance (problem 3): such a task renders on a worker."""
    return any(_TASK_STATE.search(json.dumps(value, default=str)) for value in templates if value is not None)


def has_required_params(task: BaseOperator) -> bool:
    """Whether the task's DAG has a param without a default (problem 4)."""
    params = task.dag.params if task.has_dag() else task.params
    get_param = getattr(params, "get_param", None)  # a ParamsDict; a plain dict holds no Param objects
    return get_param is not None and any(not get_param(name).has_value for name in params)


async def push_trigger_result(result: Any, *, dag_id: str, task_id: str, run_id: str, map_index: int) -> None:
    """Push a trigger's result as the task's ``return_value`` before it yields ``TaskSuccessEvent`` (problem 5)."""
    from airflow.sdk.execution_time.xcom import XCom

    await XCom.aset("return_value", result, dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index)


def in_dag_test() -> bool:
    """True inside ``dag.test()``, whose in-process supervisor runs triggers inline (problem 6)."""
    from airflow.sdk.execution_time import task_runner

    return type(getattr(task_runner, "SUPERVISOR_COMMS", None)).__name__ == "InProcessSupervisorComms"
