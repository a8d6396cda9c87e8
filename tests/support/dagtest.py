"""Run a DAG file with ``dag.test()`` from a temporary DAGs folder (the DAG must come from a file)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any


def run_dag_file(folder: Path, name: str, source: str, dag_id: str, **test_kwargs: Any) -> Any:
    """Write ``source`` as ``folder/name``, parse it like the DAG processor and ``dag.test()`` the DAG."""
    from airflow.dag_processing.dagbag import BundleDagBag

    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(source))
    bag = BundleDagBag(dag_folder=str(folder / name), bundle_path=str(folder), bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id].test(**test_kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    """``{task_id or task_id[map_index]: state}`` of a finished run."""
    states = {}
    for ti in dag_run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        states[key] = str(ti.state)
    return states


def xcom(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
    """The return value a task pushed in ``dag_run``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(
                dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, map_index=map_index, key="return_value"
            )
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)
