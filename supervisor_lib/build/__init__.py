"""Validated spec → Airflow DAG. ``build_dag`` for one spec, ``load_dags`` for a folder of them."""

from __future__ import annotations

from supervisor_lib.build.dag import build_dag
from supervisor_lib.build.loader import load_dags, raise_spec_errors

__all__ = ["build_dag", "load_dags", "raise_spec_errors"]
