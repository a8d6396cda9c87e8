"""Process faults on the CeleryExecutor with two workers and two triggerers (``make run EXECUTOR=celery
TRIGGERERS=2``): the process running a model call is SIGKILLed while the provider holds the request.

* A Celery worker dies during a sync call: Airflow notices the task's missing heartbeat and retries it, and the
  retry runs on the other worker.
* A triggerer dies during a deferred call: the other triggerer takes the trigger over and runs the call again in
  the same try.

Either way the call is not lost. The analytics store holds exactly one row per request the provider received: the
lost one is recorded as a failed ``AttemptLost`` attempt, found through its intent
(``supervisor_lib.store.intents``). The budget is charged once, for the answer that came back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from supervisor_lib.store import Store
from supervisor_lib.store.intents import LOST_ERROR
from supervisor_lib.testing import FakeProviderServer
from supervisor_lib.testing.stack import AirflowStack
from tests.conftest import DATABASES, ROOT
from tests.integration.test_celery import _PROBLEM
from tests.support.databases import fresh_database_url
from tests.support.faults import charged, component, held_call_dags, holder, kill_tree, start_held_call
from tests.support.stack import CELERY_ARGS, celery_broker, provider_stack

REDIS_DB = 12
pytestmark = [
    pytest.mark.slow,
    pytest.mark.scaleout,
    pytest.mark.timeout(900),
    pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or ""),
]

DAGS = held_call_dags("kill", "KILL")


@pytest.fixture(scope="module")
def kill_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return fresh_database_url(DATABASES, "supervisor_it_faults_analytics", tmp_path_factory.mktemp("faults_store"))


@pytest.fixture(scope="module")
def stack(fake: FakeProviderServer, kill_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    base = tmp_path_factory.mktemp("faults")
    with celery_broker(REDIS_DB) as broker:
        env = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": fresh_database_url(DATABASES, "supervisor_it_faults", base),
            "AIRFLOW__CELERY__BROKER_URL": broker,
            # a task whose worker died is failed (and retried) once its heartbeat is this many seconds old
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            # a triggerer silent for this long is dead: its triggers go to the other one. Airflow's default (30 s):
            # with 10 s a triggerer busy starting up on this 2-core machine was taken for dead while it ran the
            # call, and the other one ran the same trigger at the same time (see docs/celery.md)
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "30",
        }
        with provider_stack(
            "faults", base, DAGS, databases=DATABASES, fake=fake, analytics_url=kill_store,
            dag_ids=("kill_sync", "kill_deferred"), project_dir=ROOT, env=env, launcher_args=CELERY_ARGS,
        ) as running:  # fmt: skip
            yield running


@pytest.mark.parametrize(("dag_id", "kind"), [("kill_sync", "celery-worker"), ("kill_deferred", "triggerer")])
def test_a_call_survives_the_death_of_the_process_running_it(
    stack: AirflowStack, fake: FakeProviderServer, kill_store: str, dag_id: str, kind: str
) -> None:
    marker = "KILL-SYNC" if dag_id == "kill_sync" else "KILL-DEFERRED"
    run_id, requests = start_held_call(stack, fake, kill_store, dag_id, marker, hold_s=120)
    name, pid = component(stack, holder(fake.port))
    assert name.startswith(kind), f"the {dag_id} call runs in {name}"
    kill_tree(pid)

    assert stack.wait(dag_id, run_id, timeout_s=300) == "success", "".join(stack.output[-40:])
    result = stack.xcom(dag_id, run_id, "call")
    assert result["text"] == "the answer"
    rows = Store.from_url(kill_store).attempts(dag_id=dag_id)
    assert len(rows) == requests() == 2, rows  # one row per request the provider received
    lost, answered = sorted(rows, key=lambda r: r["started_at"])
    assert (lost["status"], lost["error_type"], answered["status"]) == ("error", LOST_ERROR, "success")
    if kind == "celery-worker":  # Airflow retried the task: a new try, on the other worker
        assert (lost["try_number"], answered["try_number"]) == (1, 2)
    else:  # the other triggerer ran the trigger again: the same try, the next attempt
        assert (lost["try_number"], lost["attempt"], answered["try_number"], answered["attempt"]) == (1, 1, 1, 2)
    assert charged(kill_store, dag_id) == pytest.approx(result["cost_usd"]), (
        "the budget is charged once, for the answer"
    )
