"""Supervisor's REST-first DAG ``supervisor_task``: one supervised coding task described by the run's ``conf``
(repository, task type, instructions, validation command, provider and model, reviewer, budget, approval).
Trigger it through Airflow's REST API (docs/rest.md); a bad conf is refused with a 400 that names the field."""

from supervisor_lib.build.rest_task import supervisor_task_dag

dag = supervisor_task_dag(dag_file=__file__)
