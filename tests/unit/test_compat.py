"""The Airflow workarounds in ``supervisor_lib.compat``: each still needed, and each doing its job.

A test named ``test_upstream_*`` shows the Airflow problem still exists in the installed release. When an upgrade
fixes it, that test fails: delete the workaround it names (and the test), as the module's docstring lists.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import airflow
import pendulum
from airflow.sdk import DAG, BaseOperator

from supervisor_lib import AnthropicOperator, build_dag
from supervisor_lib.compat import CHECKED_AIRFLOW, reads_task_state

ROOT = Path(__file__).resolve().parents[2]


class _PropertyOperator(BaseOperator):
    @property
    def start_from_trigger(self) -> bool:  # type: ignore[override]
        return False


def test_upstream_1_a_mapped_operator_reads_start_from_trigger_from_the_class() -> None:
    with DAG("p", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        mapped = _PropertyOperator.partial(task_id="t").expand(doc=["a", "b"])
    assert isinstance(mapped.start_from_trigger, property), "fixed upstream: StartFromTrigger can be a property"


def test_a_mapped_llm_task_starts_on_a_worker_and_serialises_the_same_every_time() -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = build_dag(ROOT / "include" / "specs" / "release_notes.yaml")
    mapped = dag.get_task("draft_section")
    assert mapped.start_from_trigger is False
    encoded = DagSerialization.to_dict(dag)
    tasks = {t["__var"]["task_id"]: t["__var"] for t in encoded["dag"]["tasks"]}
    assert tasks["draft_section"].get("start_from_trigger", False) is False
    assert tasks["translations"].get("start_from_trigger", False) is False
    # Two parses in two processes (as the DAG processor does) give the same serialised DAG: no new DAG version
    # per parse. The text of a property object would differ by its address.
    probe = (
        "import json, sys; from supervisor_lib import build_dag; "
        "from airflow.serialization.serialized_objects import DagSerialization; "
        "print(json.dumps(DagSerialization.to_dict(build_dag(sys.argv[1])), sort_keys=True, default=str))"
    )
    spec = str(ROOT / "include" / "specs" / "release_notes.yaml")
    runs = [subprocess.run([sys.executable, "-c", probe, spec], capture_output=True, text=True) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout
    assert "property object" not in runs[0].stdout


def test_an_unmapped_task_still_decides_per_instance() -> None:
    with DAG("d", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        free = AnthropicOperator(task_id="a", prompt="hi", deferrable=True, pool="default_pool")
        pooled = AnthropicOperator(task_id="b", prompt="hi", deferrable=True)
    assert (free.start_from_trigger, pooled.start_from_trigger) == (True, False)
    assert AnthropicOperator.start_from_trigger is False


def test_upstream_2_a_start_from_trigger_task_is_deferred_without_a_pool_check() -> None:
    from airflow.models.taskinstance import TaskInstance

    source = inspect.getsource(TaskInstance.defer_task)
    assert "pool" not in source, "fixed upstream: start-from-trigger tasks may keep their provider pool"


def test_reads_task_state_sees_xcom_and_ti_reads_only() -> None:
    assert reads_task_state("{{ ti.xcom_pull('a') }}", None)
    assert reads_task_state({"content": "{{ task_instance.run_id }}"})
    assert not reads_task_state("{{ params.tiles }}", "{{ item }}", None)


def test_upstream_6_dag_test_is_known_only_by_its_supervisor_class() -> None:
    from airflow.sdk.execution_time import supervisor

    assert hasattr(supervisor, "InProcessSupervisorComms"), "renamed upstream: update compat.in_dag_test"


def test_upstream_3_4_5_7_8_were_checked_against_this_airflow() -> None:
    # Problems 3, 4, 5, 7 and 8 need a running Airflow to show; tests/integration/test_shipped_specs.py and
    # test_airflow_e2e.py exercise the workarounds there. An upgrade must re-check them: this test says so.
    assert airflow.__version__ == CHECKED_AIRFLOW, (
        f"Airflow {airflow.__version__} is installed; supervisor_lib/compat.py was checked against "
        f"{CHECKED_AIRFLOW}: re-check problems 3, 4, 5, 7 and 8 there, then update CHECKED_AIRFLOW"
    )


def test_upstream_9_dag_test_gives_dag_callbacks_a_dag_without_a_template_env() -> None:
    from airflow.serialization.definitions.dag import SerializedDAG

    assert not hasattr(SerializedDAG, "get_template_env"), (
        "fixed upstream: run-level notifiers can be tested with dag.test()"
    )
