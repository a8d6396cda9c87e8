"""Airflow import errors for invalid task specs in include/specs/ (a file of its own, with no DAG, so a broken
spec never marks the valid spec DAGs of dags/supervisor_specs.py stale)."""

from supervisor_lib import raise_spec_errors

raise_spec_errors(globals(), specs_dir="include/specs")
