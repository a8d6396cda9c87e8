"""``load_dags(globals(), specs_dir=...)``: every spec in a folder becomes a DAG of the calling DAG file.

One bad spec never hides the others: the valid specs still become DAGs, and the invalid ones are reported through
Airflow's own import-errors view (UI and ``GET /api/v2/importErrors``) with their ``file:line`` messages. The
report rides on a stand-in DAG whose ``validate()`` raises the spec errors: Airflow records a DAG that fails
validation as an import error of its file while it keeps the file's other DAGs.

When a task starts, Airflow re-parses the DAG file; :func:`airflow.sdk.get_parsing_context` names the DAG it
needs, so only that DAG is built then.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, get_parsing_context

from supervisor_lib.build.dag import build_dag
from supervisor_lib.spec import SpecError, WorkflowSpec, load_specs
from supervisor_lib.spec.model_check import model_warnings

log = logging.getLogger(__name__)


class InvalidSpecsDag(DAG):
    """Carries the errors of a folder's invalid specs into Airflow's import errors; it never becomes a DAG."""

    def __init__(self, dag_id: str, errors: list[SpecError]) -> None:
        super().__init__(dag_id=dag_id, schedule=None, tags=["supervisor-spec-errors"])
        self.spec_errors = errors

    def validate(self) -> None:
        raise SpecError([problem for error in self.spec_errors for problem in error.problems])


def load_dags(
    namespace: MutableMapping[str, Any], specs_dir: str | os.PathLike[str], *, base_dir: str | None = None
) -> dict[str, DAG]:
    """Build a DAG for every spec file in ``specs_dir`` and put each into ``namespace`` (a DAG file's globals).

    :param specs_dir: the folder of ``*.yaml`` / ``*.yml`` specs; relative paths are resolved against
        ``base_dir``, by default the folder above the calling DAG file's folder (the project root).
    :return: the DAGs built, by dag_id.
    """
    folder = _resolve(specs_dir, namespace, base_dir)
    specs, errors = load_specs(folder)
    wanted = get_parsing_context().dag_id
    built: dict[str, DAG] = {}
    for spec in specs:
        if wanted is not None and spec.dag_id != wanted:
            continue
        for message in model_warnings(spec) if wanted is None else ():
            warnings.warn(message, UserWarning, stacklevel=2)  # Airflow shows warnings captured while parsing
        built[spec.dag_id] = namespace[_name(spec)] = build_dag(spec)
    if errors and wanted is None:
        stem = Path(str(namespace.get("__file__", "specs"))).stem
        namespace["__supervisor_invalid_specs__"] = InvalidSpecsDag(f"{stem}__invalid_specs", list(errors.values()))
        for error in errors.values():
            log.error("%s", error)
    return built


def _name(spec: WorkflowSpec) -> str:
    return "dag__" + "".join(c if c.isalnum() else "_" for c in spec.dag_id)


def _resolve(specs_dir: str | os.PathLike[str], namespace: MutableMapping[str, Any], base_dir: str | None) -> Path:
    path = Path(specs_dir)
    if path.is_absolute():
        return path
    if base_dir is not None:
        return Path(base_dir) / path
    caller = namespace.get("__file__")
    root = Path(caller).resolve().parent.parent if caller else Path.cwd()
    return root / path
