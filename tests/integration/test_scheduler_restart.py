"""The scheduler dies in the middle of a run (SIGKILL of it and every process it started, LocalExecutor workers
and task processes included) and ``make run``'s launcher starts it again.

* A sync call was in flight in a task the dead scheduler's executor ran: the task is lost with it. The new scheduler
  finds the task's heartbeat missing, fails the try and retries it; the retry answers. The lost request is one
  ``AttemptLost`` row (found through its intent), so the store still holds one row per request, and the budget is
  charged once.
* A deferred call was in flight in the triggerer, which the scheduler's death does not touch: the call completes,
  the new scheduler resumes the task, and the provider saw one request.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from supervisor_lib.store import Store
from supervisor_lib.store.intents import LOST_ERROR
from supervisor_lib.testing import FakeProviderServer
from supervisor_lib.testing.stack import AirflowStack
from tests.conftest import DATABASES, ROOT
from tests.support.databases import fresh_database_url
from tests.support.faults import held_call_dags, kill_tree, start_held_call
from tests.support.stack import provider_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAGS = held_call_dags("restart", "RESTART")


@pytest.fixture(scope="module")
def restart_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return fresh_database_url(DATABASES, "supervisor_it_restart_analytics", tmp_path_factory.mktemp("restart_store"))


@pytest.fixture(scope="module")
def stack(fake: FakeProviderServer, restart_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    env = {
        # a task whose process died is failed (and retried) once its heartbeat is this many seconds old
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        # the new scheduler takes over the dead one's tasks once that one's heartbeat is 10 s old, checking every
        # 5 s (Airflow's defaults: 30 s and every 300 s, so a restart can take minutes to pick a lost task up)
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
    }
    with provider_stack(
        "restart", tmp_path_factory.mktemp("restart"), DAGS, databases=DATABASES, fake=fake,
        analytics_url=restart_store, dag_ids=("restart_sync", "restart_deferred"), project_dir=ROOT, env=env,
    ) as running:  # fmt: skip
        yield running


def _scheduler_pid(stack: AirflowStack) -> int:
    return int((stack.home / "pids" / "scheduler.pid").read_text())


def _restarted(stack: AirflowStack, before: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while (pid := _scheduler_pid(stack)) == before:
        assert time.monotonic() < deadline, "the launcher did not start the scheduler again"
        time.sleep(0.5)
    return pid


@pytest.mark.parametrize("dag_id", ["restart_sync", "restart_deferred"])
def test_a_run_survives_a_scheduler_restart_mid_call(
    stack: AirflowStack, fake: FakeProviderServer, restart_store: str, dag_id: str
) -> None:
    marker = "RESTART-SYNC" if dag_id == "restart_sync" else "RESTART-DEFERRED"
    sync = dag_id == "restart_sync"
    # the sync call is held until its process is gone; the deferred one long enough to outlive the restart
    run_id, requests = start_held_call(stack, fake, restart_store, dag_id, marker, hold_s=120 if sync else 20)
    before = _scheduler_pid(stack)
    kill_tree(before)
    _restarted(stack, before)

    assert stack.wait(dag_id, run_id, timeout_s=300) == "success", "".join(stack.output[-40:])
    assert stack.xcom(dag_id, run_id, "call")["text"] == "the answer"
    rows = Store.from_url(restart_store).attempts(dag_id=dag_id)
    assert len(rows) == requests(), rows  # one row per request the provider received
    if sync:  # the task died with the scheduler's executor: a lost attempt, then the retry's answer
        lost, answered = sorted(rows, key=lambda r: r["started_at"])
        assert (lost["status"], lost["error_type"], lost["try_number"]) == ("error", LOST_ERROR, 1)
        assert (answered["status"], answered["try_number"]) == ("success", 2)
    else:  # the triggerer kept the call: one request, answered
        assert [(r["status"], r["try_number"]) for r in rows] == [("success", 1)]
    assert any("the Airflow scheduler exited" in line and "restarting it" in line for line in stack.output)
