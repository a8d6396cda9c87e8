"""A validated ``WorkflowSpec`` → an Airflow ``DAG``."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param

from supervisor_lib.build.notify import dag_notify_kwargs
from supervisor_lib.build.tasks import build_task
from supervisor_lib.spec import WorkflowSpec, load_spec

#: every spec DAG carries this tag, so the UI can filter them
SPEC_TAG = "supervisor-spec"


def build_dag(spec_or_path: WorkflowSpec | str | os.PathLike[str]) -> DAG:
    """Build the DAG of a spec (or of the spec file at a path; raises ``SpecError`` when it is invalid)."""
    spec = spec_or_path if isinstance(spec_or_path, WorkflowSpec) else load_spec(spec_or_path)
    with DAG(**dag_kwargs(spec)) as dag:
        firsts, results = {}, {}
        for task in spec.effective_tasks:
            firsts[task.id], results[task.id] = build_task(spec, task)
        for upstream, downstream in spec.edges():
            results[upstream] >> firsts[downstream]
    return dag


def dag_kwargs(spec: WorkflowSpec) -> dict[str, Any]:
    """The ``DAG(...)`` arguments of a spec."""
    kwargs: dict[str, Any] = {
        "dag_id": spec.dag_id,
        "description": (spec.description or "").strip().splitlines()[0][:200] if spec.description else None,
        "doc_md": doc_md(spec),
        "schedule": spec.schedule,
        "start_date": pendulum.instance(spec.start_datetime()),
        "catchup": spec.catchup,
        "tags": sorted({*spec.tags, SPEC_TAG}),
        "default_args": {"owner": spec.owner},
        "params": {name: _param(schema) for name, schema in spec.params.items()},
    }
    if spec.max_active_runs is not None:
        kwargs["max_active_runs"] = spec.max_active_runs
    if spec.dagrun_timeout_s is not None:
        kwargs["dagrun_timeout"] = timedelta(seconds=spec.dagrun_timeout_s)
    return {**kwargs, **dag_notify_kwargs(spec)}


def _param(schema: dict[str, Any]) -> Param:
    fields = dict(schema)
    description = fields.pop("description", None)
    if "default" in fields:
        return Param(fields.pop("default"), description=description, **fields)
    return Param(description=description, **fields)


def doc_md(spec: WorkflowSpec) -> str:
    """The DAG's docs: the description, the spec file and its hash (so DAG versioning notices every change)."""
    lines = [spec.description.strip() if spec.description else f"Workflow `{spec.dag_id}`."]
    if spec.source_path:
        lines += ["", f"Spec: `{_display_path(spec.source_path)}`  ", f"Spec sha256: `{spec.spec_hash}`"]
    return "\n".join(lines)


def _display_path(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return Path(path).name
